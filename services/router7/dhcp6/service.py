"""router7-dhcp6: the DHCPv6 prefix delegation client on the uplink.

Wires the state machine (client.py) to the uplink socket (transport.py), the DUID
and lease files, and the peers it notifies (netconfigd, radvd).
"""

from __future__ import annotations

import logging

from router7.dhcp6 import lease as leasefile
from router7.dhcp6.client import SOL_MAX_RT, ClientConfig, Dhcp6Machine, Transmit
from router7.dhcp6.duid import duid_path, iaid_from_mac, load_or_create
from router7.dhcp6.lease import Lease
from router7.dhcp6.metrics import MetricsListener
from router7.dhcp6.transport import UplinkTransport
from router7.runtime.netlink import CarrierEdge
from router7.runtime.service import EXIT_DONT_RESTART, Service
from router7.runtime.uplink import PerUplink

log = logging.getLogger(__name__)

ROUTER_SOL_MAX_RT = 120


class Dhcp6Client(PerUplink, Service, MetricsListener):
    """Obtain and keep an IPv6 prefix delegation (and DNS servers) on the uplink."""

    name = "dhcp6"
    description = "DHCPv6 prefix delegation client on the uplink"
    uses_lan = False

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--pd-only",
            action="store_true",
            help="ask only for a delegated prefix (IA_PD), no uplink address (IA_NA)",
        )
        parser.add_argument(
            "--rapid-commit",
            action="store_true",
            help="offer Rapid Commit: accept a Reply to the Solicit (two-message exchange)",
        )
        parser.add_argument(
            "--sol-max-rt",
            type=float,
            # RFC 8415's SOL_MAX_RT (3600 s) would leave a router offline for up to an hour
            # after an ISP outage; connectivity comes first, and one Solicit in two minutes
            # costs the BNG nothing. A server's SOL_MAX_RT option still overrides it.
            default=ROUTER_SOL_MAX_RT,
            help="longest pause in seconds between Solicits while no server answers "
            f"(RFC 8415 says {SOL_MAX_RT})",
        )

    def start(self):
        uplink = self.args.uplink
        link = self.net.link(uplink)
        if link is None or not link.mac:
            raise RuntimeError(f"interface {uplink} does not exist")
        mac = bytes.fromhex(link.mac.replace(":", ""))
        duid = load_or_create(duid_path(self.perm), mac)
        self.lease_file = leasefile.lease_path(self.perm, self.args.uplink)
        stored = leasefile.load(self.lease_file)
        self.transport = UplinkTransport(self.reactor, uplink, self._datagram)
        self.transport.open()
        config = ClientConfig(
            duid=duid,
            iaid_na=iaid_from_mac(mac),
            pd_only=self.args.pd_only,
            rapid_commit=self.args.rapid_commit,
            sol_max_rt=self.args.sol_max_rt,
        )
        self.client = Dhcp6Machine(config, self.reactor, self, lease=stored)
        self.client.start()
        self.uplink_carrier = CarrierEdge(self.net, uplink)

    def net_changed(self, changes) -> None:
        if self.uplink_carrier.returned():
            log.info("%s has carrier again", self.args.uplink)
            self.client.link_up()

    def _datagram(self, data: bytes, source: str) -> None:
        try:
            self.client.datagram_received(data, source)
        except Exception:  # a bug must not kill the lease keeper; the packet is lost
            log.exception("handling a datagram from %s failed", source)

    # --- the core's edge (metrics.MetricsListener counts the events) ----------------

    def send(self, tx: Transmit) -> bool:
        ok = self.transport.send(tx.payload, tx.unicast)
        if ok:
            self.count_sent(tx)
        return ok

    def lease_changed(self, lease: Lease) -> None:
        super().lease_changed(lease)
        leasefile.save(self.lease_file, lease)
        self.notify("netconfigd")
        self.notify("radvd")

    def release(self) -> None:
        log.info("SIGUSR2: releasing the lease and exiting")
        client = getattr(self, "client", None)
        if client is None:
            self.shutdown(EXIT_DONT_RESTART)
            return
        client.release(self._released)

    def _released(self) -> None:
        leasefile.remove(self.lease_file)
        self.notify("netconfigd")
        self.notify("radvd")
        self.shutdown(EXIT_DONT_RESTART)

    def stop(self):
        if getattr(self, "client", None):
            self.client.stop()
        if getattr(self, "transport", None):
            return self.transport.close()
        return None


main = Dhcp6Client.main
