"""router7-dhcp4: the daemon that wires the client core to the uplink and the files."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from router7.dhcp4 import metrics, wire
from router7.dhcp4.client import Dhcp4Core, Listener, State, Transmit
from router7.dhcp4.lease import Lease, LeaseStore
from router7.dhcp4.transport import PacketTransport
from router7.netconfigd.config import read_interfaces
from router7.runtime.netlink import CarrierEdge
from router7.runtime.service import EXIT_DONT_RESTART, Service
from router7.runtime.statefile import StateFileError
from router7.runtime.uplink import PerUplink

log = logging.getLogger(__name__)


def spoofed_mac(perm: Path, ifname: str) -> bytes | None:
    """``spoof_hardware_addr`` of ``ifname`` in interfaces.json (read through its owner,
    netconfigd), used before netconfigd has applied it (router7 issue #25)."""
    try:
        configured = read_interfaces(perm).by_name(ifname)
    except StateFileError as e:
        log.warning("ignoring spoofed MAC: %s", e)
        return None
    if configured is None or not configured.spoof_hardware_addr:
        return None
    return wire.parse_mac(configured.spoof_hardware_addr)


class Dhcp4Client(PerUplink, Service, Listener):
    """DHCPv4 client on the uplink: keeps an IPv4 lease and hands it to netconfigd."""

    name = "dhcp4"
    description = __doc__
    uses_lan = False

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--hostname",
            default=socket.gethostname(),
            help="hostname sent in option 12 (empty: none)",
        )

    def start(self) -> None:
        self.store = LeaseStore(self.perm, self.args.uplink)
        self.core: Dhcp4Core | None = None
        self.transport = self.make_transport()
        self.transport.open()  # a missing uplink fails start(): the supervisor retries
        mac = spoofed_mac(self.perm, self.args.uplink) or self.transport.mac
        ident = wire.Identity(mac=mac, hostname=self.args.hostname or None)
        log.info("on %s as %s, hostname %r", self.args.uplink, wire.format_mac(mac), ident.hostname)
        self.core = Dhcp4Core(ident, self.reactor, self)
        metrics.STATE.state(State.INIT.value)
        stored = self.store.load()
        if stored is not None:
            self._export(stored)
        self.core.start(stored)
        self.uplink_carrier = CarrierEdge(self.net, self.args.uplink)

    def make_transport(self) -> PacketTransport:
        return PacketTransport(self.args.uplink, self.reactor, self._packet)

    def net_changed(self, changes) -> None:
        if self.uplink_carrier.returned():
            log.info("%s has carrier again", self.args.uplink)
            self.core.link_up()

    def stop(self) -> None:
        if getattr(self, "core", None) is not None:
            self.core.stop()
        if getattr(self, "transport", None) is not None:
            self.transport.close()

    def reload(self) -> None:
        log.debug("SIGUSR1: nothing to re-read")

    def release(self) -> None:
        """SIGUSR2: RELEASE the lease, forget it, and leave supervision (exit 125)."""
        if getattr(self, "core", None) is not None:
            tx = self.core.release()
            if tx is not None:
                log.info("released %s to %s", tx.src, tx.dst)
        LeaseStore(self.perm, self.args.uplink).remove()
        self.shutdown(EXIT_DONT_RESTART)

    # --- edges of the core -------------------------------------------------------

    def _packet(self, packet: bytes, src_mac: bytes) -> None:
        try:
            msg = wire.decode_ipv4(packet, src_mac)
        except wire.NotForUs:
            metrics.PACKETS_DROPPED.labels("not_dhcp").inc()
            return
        except wire.MalformedPacket as e:
            log.debug("malformed packet from %s: %s", wire.format_mac(src_mac), e)
            metrics.PACKETS_DROPPED.labels(e.reason).inc()
            return
        metrics.PACKETS_RECEIVED.labels(msg.type_name).inc()
        if self.core is not None:
            self.core.receive(msg)

    def send(self, tx: Transmit) -> None:
        try:
            self.transport.send(wire.wrap_ipv4(tx.payload, tx.src, tx.dst), tx.dst_mac)
        except OSError as e:
            # Retransmission timers cover it (link down, interface renamed...).
            log.warning("sending %s: %s", wire.MESSAGE_TYPES[tx.msg_type], e)
            metrics.SEND_ERRORS.inc()
            return
        log.debug("sent %s to %s", wire.MESSAGE_TYPES[tx.msg_type], tx.dst)
        metrics.PACKETS_SENT.labels(wire.MESSAGE_TYPES[tx.msg_type]).inc()

    def lease_changed(self, lease: Lease, ack: bytes) -> None:
        try:
            self.store.save(lease, ack)
        except OSError as e:
            log.error("writing %s: %s", self.store.lease_path, e)
        metrics.LEASES.inc()
        self._export(lease)
        self.notify("netconfigd")
        self.notify("failoverd")

    def lease_expired(self, lease: Lease) -> None:
        metrics.LEASE_EXPIRIES.inc()

    def state_changed(self, state: State) -> None:
        metrics.STATE.state(state.value)

    def dropped(self, reason: str, msg: wire.Message) -> None:
        metrics.PACKETS_DROPPED.labels(reason).inc()

    @staticmethod
    def _export(lease: Lease) -> None:
        # A lease from a file without times (hand-written) leaves the gauges alone.
        if lease.expires_at is not None:
            metrics.LEASE_EXPIRY.set(lease.expires_at.timestamp())
        if lease.renew_at is not None:
            metrics.LEASE_RENEW.set(lease.renew_at.timestamp())


main = Dhcp4Client.main
