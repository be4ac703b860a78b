"""RFC 2131 message handling: a request in, a reply and where to send it out. No sockets.

Policy beyond router7 (reference §4, §17): RELEASE frees the address, DECLINE
keeps it out of the pool for ``decline_time``, INFORM is answered, a NAK is
broadcast (router7 sent it to 0.0.0.0), the netmask is lan0's real one.
"""

from __future__ import annotations

import logging
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from router7.dhcp4d import quirks, wire
from router7.dhcp4d.config import Config
from router7.dhcp4d.leases import LeaseTable, sanitize_hostname
from router7.dhcp4d.pressure import NewClientGate
from router7.dhcp4d.wire import ACK, DECLINE, DISCOVER, INFORM, NAK, OFFER, RELEASE, REQUEST

log = logging.getLogger(__name__)

_ZERO = IPv4Address(0)
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
# Options we offer when asked (or all of them, in this order, when the client has
# no parameter request list): mask, router, DNS, domain, broadcast, search.
_DEFAULT_OPTIONS = (1, 3, 6, 15, 28, 119)


@dataclass(frozen=True)
class Destination:
    """Where a reply goes: through the UDP socket, or (``mac`` set) the packet socket."""

    ip: IPv4Address
    port: int = wire.CLIENT_PORT
    mac: bytes | None = None


def destination(req: wire.Request, reply: wire.Reply) -> Destination:
    """RFC 2131 4.1, "constructing and sending DHCP messages"."""
    if req.giaddr != _ZERO:
        return Destination(req.giaddr, wire.SERVER_PORT)  # via the relay agent
    if reply.msg_type == NAK:
        return Destination(_LIMITED_BROADCAST, mac=b"\xff" * 6)
    if req.ciaddr != _ZERO:
        return Destination(req.ciaddr)  # the client has an address and answers ARP
    if req.broadcast or reply.yiaddr == _ZERO:
        return Destination(_LIMITED_BROADCAST, mac=b"\xff" * 6)
    # No address yet, so no ARP: address the frame to chaddr ourselves.
    return Destination(reply.yiaddr, mac=req.chaddr)


def search_list(domain: str) -> bytes:
    """Option 119 (RFC 3397): the domain as DNS wire-format labels, uncompressed."""
    out = b"".join(bytes([len(label)]) + label.encode() for label in domain.split("."))
    return out + b"\x00"


def is_discover(data: bytes) -> bool:
    """A cheap look for DHCPDISCOVER: option 53 right after the magic cookie.

    Every client we know puts option 53 first; one that does not is simply never
    shed below.
    """
    return data[236:243] == wire.MAGIC + b"\x35\x01\x01"


def triage(batch: list[bytes], discover_budget: int) -> tuple[list[bytes], int]:
    """Order a backlog: exchanges already under way first, then at most
    ``discover_budget`` new ones; returns (what to handle, how many were shed).

    Under overload (a flood of DISCOVERs, many clients at once) answering every
    DISCOVER only produces OFFERs whose REQUESTs then drown in the queue; a shed
    DISCOVER is simply retransmitted by its client a few seconds later.
    """
    discovers = [d for d in batch if is_discover(d)]
    if len(discovers) <= discover_budget:
        return batch, 0
    others = [d for d in batch if not is_discover(d)]
    return others + discovers[:discover_budget], len(discovers) - discover_budget


@dataclass
class Stats:
    received: Counter
    sent: Counter
    dropped: Counter  # malformed or unanswerable, by reason
    ignored: Counter  # valid but not for us (other server chosen, foreign relay)
    pool_exhausted: int = 0


class Dhcp4Server:
    def __init__(
        self,
        clock,
        table: LeaseTable,
        config: Config,
        on_change: Callable[[], None] = lambda: None,
    ):
        self.clock = clock  # IReactorTime: seconds()
        self.table = table
        self.config = config
        self.on_change = on_change
        self.stats = Stats(Counter(), Counter(), Counter(), Counter())
        self.gate = NewClientGate()

    @property
    def pool(self):
        return self.table.pool

    @property
    def server_ip(self) -> IPv4Address:
        return self.table.pool.server

    # --- entry points ---------------------------------------------------------

    def handle_bytes(self, data: bytes) -> tuple[wire.Reply, Destination] | None:
        try:
            req = wire.decode(data)
        except wire.Malformed as e:
            self.stats.dropped[e.reason] += 1
            return None
        return self.handle(req)

    def handle(self, req: wire.Request) -> tuple[wire.Reply, Destination] | None:
        self.stats.received[req.type_name] += 1
        if req.giaddr != _ZERO and req.giaddr not in self.pool.network:
            self.stats.ignored["foreign_relay"] += 1
            return None
        handler = {
            DISCOVER: self._discover,
            REQUEST: self._request,
            RELEASE: self._release,
            DECLINE: self._decline,
            INFORM: self._inform,
        }.get(req.msg_type)
        if handler is None:
            self.stats.dropped["unexpected_type"] += 1
            return None
        reply = handler(req, self.clock.seconds())
        if reply is None:
            return None
        self.stats.sent[reply.type_name] += 1
        return reply, destination(req, reply)

    # --- message types --------------------------------------------------------

    def _new_client_refused(self, req: wire.Request, now: float) -> bool:
        """A client without a lease (or an offer) while the pool is low, beyond the rate."""
        table = self.table
        if table.lease_of(req.mac) is not None or req.mac in table.statics:
            return False
        if table.has_offer(req.mac, now):
            return False  # admitted at its DISCOVER
        if self.gate.admit(now, table.free(now), self.pool.size):
            return False
        self.stats.ignored["new_client_rate"] += 1
        return True

    def _discover(self, req: wire.Request, now: float) -> wire.Reply | None:
        if self._new_client_refused(req, now):
            return None
        addr = self.table.choose(req.mac, req.requested_addr, now)
        if addr is None:
            self.stats.pool_exhausted += 1
            log.warning("pool full: no address for %s", req.mac)
            return None
        self.table.hold(addr, req.mac, now)
        return self._reply(req, OFFER, yiaddr=addr, lease_time=self._lease_time(req))

    def _request(self, req: wire.Request, now: float) -> wire.Reply | None:
        if req.server_id is not None and req.server_id != self.server_ip:
            self.table.forget_offer(req.mac)  # the client chose another server
            self.stats.ignored["other_server"] += 1
            return None
        # SELECTING and INIT-REBOOT name the address in option 50; RENEWING and
        # REBINDING in ciaddr.
        addr = req.requested_addr or (req.ciaddr if req.ciaddr != _ZERO else None)
        if addr is None:
            self.stats.dropped["no_address"] += 1
            return None
        if self._new_client_refused(req, now):
            return None
        if not self.table.can_lease(addr, req.mac, now):
            log.info("NAK %s for %s", addr, req.mac)
            return self._reply(req, NAK)
        lease_time = self._lease_time(req)
        vendor = (req.vendor_class or b"").decode("utf-8", "replace")[:64]
        lease = self.table.commit(
            addr, req.mac, now, lease_time, sanitize_hostname(req.hostname), vendor
        )
        log.info("ACK %s to %s (%s)", addr, req.mac, lease.hostname or "no hostname")
        self.on_change()
        return self._reply(req, ACK, yiaddr=addr, lease_time=lease_time)

    def _release(self, req: wire.Request, now: float) -> None:
        if req.server_id is not None and req.server_id != self.server_ip:
            self.stats.ignored["other_server"] += 1
        elif self.table.release(req.ciaddr, req.mac, now):
            log.info("RELEASE %s by %s", req.ciaddr, req.mac)
            self.on_change()
        else:
            self.stats.ignored["unknown_lease"] += 1

    def _decline(self, req: wire.Request, now: float) -> None:
        addr = req.requested_addr
        if req.server_id is not None and req.server_id != self.server_ip:
            self.stats.ignored["other_server"] += 1
        elif addr is not None and self.table.decline(addr, req.mac, now):
            log.warning("DECLINE %s by %s: address in use elsewhere", addr, req.mac)
            self.on_change()
        else:
            self.stats.ignored["unknown_lease"] += 1

    def _inform(self, req: wire.Request, now: float) -> wire.Reply:
        # RFC 2131 3.4: configuration only; no yiaddr and no lease time.
        return self._reply(req, ACK)

    # --- building replies -------------------------------------------------------

    def _lease_time(self, req: wire.Request) -> int:
        return quirks.lease_time(req.mac, self.config.lease_time)

    def _reply(
        self,
        req: wire.Request,
        msg_type: int,
        yiaddr: IPv4Address = _ZERO,
        lease_time: int | None = None,
    ) -> wire.Reply:
        options = [(54, self.server_ip.packed)]
        flags = req.flags
        if msg_type == NAK:
            if req.giaddr != _ZERO:
                flags |= wire.BROADCAST_FLAG  # RFC 2131 4.3.2: the relay broadcasts it
        else:
            if lease_time is not None:
                options += [
                    (51, struct.pack("!I", lease_time)),
                    (58, struct.pack("!I", lease_time // 2)),
                    (59, struct.pack("!I", lease_time * 7 // 8)),
                ]
            options += self._config_options(req.param_req_list)
        return wire.Reply(
            msg_type=msg_type,
            xid=req.xid,
            chaddr=req.chaddr,
            flags=flags,
            ciaddr=req.ciaddr if msg_type in (ACK,) else _ZERO,
            yiaddr=yiaddr,
            giaddr=req.giaddr,
            options=options,
        )

    def _config_options(self, prl: list[int]) -> list[tuple[int, bytes]]:
        server = self.server_ip.packed
        values = {
            1: self.pool.netmask.packed,
            3: server,
            6: server,
            15: self.config.domain.encode(),
            28: self.pool.broadcast.packed,
            119: search_list(self.config.domain),
        }
        order = [c for c in dict.fromkeys(prl) if c in values] if prl else _DEFAULT_OPTIONS
        return [(c, values[c]) for c in order]
