"""The kernel's links, addresses and routes, kept current by rtnetlink events.

Every service used to ask netlink on its own and some polled (dnsd re-read the
addresses every 30 s, radvd the default route every 5 s). Here one rtnetlink
socket subscribes to link, address and route changes (as odhcpd's netlink.c
does) and the reactor reads it like any other socket: ``NetlinkMonitor`` adds
the socket's fd with ``reactor.addReader``. No thread: the events arrive in
the reactor's own order, and handlers need no locks.

``NetState`` is the socket-free core: it takes raw netlink bytes (a dump or an
event), updates its view and returns what changed; ``rtnl`` decodes the bytes.
The unit tests feed it messages built with pyroute2's message classes.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from router7.runtime import rtnl
from router7.runtime.rtnl import (
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_LINK,
)

log = logging.getLogger(__name__)

GROUPS = (
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
)
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000  # the driver reports carrier (linux/if.h)
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str | None = None
    mtu: int | None = None
    flags: int = 0
    carrier: int | None = None

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def has_carrier(self) -> bool:
        return bool(self.flags & IFF_LOWER_UP)


@dataclass(frozen=True)
class Address:
    index: int
    ifname: str
    interface: IPInterface
    flags: int = 0

    @property
    def ip(self):
        return self.interface.ip

    @property
    def usable(self) -> bool:
        """Bindable: not waiting for (or failed) duplicate address detection."""
        return not self.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)


@dataclass(frozen=True)
class Route:
    dst: IPNetwork
    oifs: tuple[int, ...]  # the outgoing interface, or each multipath hop's
    gateway: str | None = None
    table: int = RT_TABLE_MAIN
    type: int = RTN_UNICAST
    protocol: int = 0
    priority: int = 0


@dataclass(frozen=True)
class Change:
    """One event: ``kind`` is link, address or route; ``new`` False for a removal."""

    kind: str
    new: bool
    item: Link | Address | Route


class NetState:
    """The view of links, addresses and routes; ``feed`` applies netlink messages."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.links: dict[int, Link] = {}
        self._addresses: dict[tuple[int, IPInterface], Address] = {}
        self._routes: dict[tuple, Route] = {}

    # --- input ---------------------------------------------------------------

    def feed(self, data: bytes) -> list[Change]:
        """Apply every message in ``data`` (one recv's worth); returns the changes."""
        changes = []
        for msg in rtnl.parse(data):
            change = self.apply(msg)
            if change is not None:
                changes.append(change)
        return changes

    def apply(self, msg) -> Change | None:
        event = msg.get("event")
        handler = _HANDLERS.get(event)
        return handler(self, msg, event.startswith("RTM_NEW")) if handler else None

    def _link(self, msg, new: bool) -> Change | None:
        if msg["family"] != socket.AF_UNSPEC:
            # AF_BRIDGE: a bridge port's state; its RTM_DELLINK only leaves the bridge.
            return None
        index = msg["index"]
        if not new:
            old = self.links.pop(index, None)
            self._forget_routes(index)
            for key in [k for k in self._addresses if k[0] == index]:
                del self._addresses[key]
            return Change("link", False, old) if old else None
        old = self.links.get(index)
        link = Link(
            index=index,
            name=msg.get_attr("IFLA_IFNAME") or (old.name if old else str(index)),
            mac=msg.get_attr("IFLA_ADDRESS"),
            mtu=msg.get_attr("IFLA_MTU"),
            flags=msg["flags"],
            carrier=msg.get_attr("IFLA_CARRIER"),
        )
        self.links[index] = link
        if not link.up:
            # IPv4 routes of a downed link vanish without an RTM_DELROUTE.
            self._forget_routes(index)
        if old is not None and old.name != link.name:
            self._rename(index, link.name)
        return None if link == old else Change("link", True, link)

    def _address(self, msg, new: bool) -> Change | None:
        text = msg.get_attr("IFA_ADDRESS")
        if text is None:
            return None
        if msg["family"] == socket.AF_INET and msg.get_attr("IFA_LOCAL"):
            text = msg.get_attr("IFA_LOCAL")  # IFA_ADDRESS is the peer's on point-to-point links
        index = msg["index"]
        interface = ipaddress.ip_interface(f"{text}/{msg['prefixlen']}")
        link = self.links.get(index)
        flags = msg.get_attr("IFA_FLAGS")
        address = Address(
            index=index,
            ifname=link.name if link else (msg.get_attr("IFA_LABEL") or str(index)),
            interface=interface,
            flags=msg["flags"] if flags is None else flags,
        )
        key = (index, interface)
        if not new:
            return Change("address", False, self._addresses.pop(key, address))
        old = self._addresses.get(key)
        self._addresses[key] = address
        return None if old == address else Change("address", True, address)

    def _route(self, msg, new: bool) -> Change | None:
        family = msg["family"]
        if family not in (socket.AF_INET, socket.AF_INET6):
            return None
        dst = msg.get_attr("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
        oif = msg.get_attr("RTA_OIF")
        hops = tuple(h["oif"] for h in msg.get_attr("RTA_MULTIPATH") or ())
        route = Route(
            dst=ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False),
            oifs=((oif,) if oif is not None else ()) + hops,
            gateway=msg.get_attr("RTA_GATEWAY"),
            table=msg.get_attr("RTA_TABLE") or msg["table"],
            type=msg["type"],
            protocol=msg["proto"],
            priority=msg.get_attr("RTA_PRIORITY") or 0,
        )
        key = (route.table, route.dst, route.priority, msg["tos"], route.type, route.oifs)
        if not new:
            old = self._routes.pop(key, None)
            return Change("route", False, old) if old else None
        old = self._routes.get(key)
        self._routes[key] = route
        return None if old == route else Change("route", True, route)

    def _forget_routes(self, index: int) -> None:
        for key in [k for k, r in self._routes.items() if index in r.oifs]:
            del self._routes[key]

    def _rename(self, index: int, name: str) -> None:
        for key, a in self._addresses.items():
            if a.index == index:
                self._addresses[key] = Address(a.index, name, a.interface, a.flags)

    # --- queries -------------------------------------------------------------

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links.values() if link.name == name), None)

    def addresses(self, ifname: str | None = None) -> list[Address]:
        return [a for a in self._addresses.values() if ifname is None or a.ifname == ifname]

    def ipv4(self, ifname: str) -> ipaddress.IPv4Interface | None:
        """The first usable IPv4 address of ``ifname`` with its prefix."""
        for a in self.addresses(ifname):
            if a.interface.version == 4 and a.usable:
                return a.interface
        return None

    def link_local(self, ifname: str) -> ipaddress.IPv6Address | None:
        """A usable (DAD passed) IPv6 link-local address of ``ifname``."""
        for a in self.addresses(ifname):
            if a.interface.version == 6 and a.ip.is_link_local and a.usable:
                return a.ip
        return None

    @property
    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def default_routes(self, version: int, ifname: str) -> list[Route]:
        """Unicast default routes of the main table out of ``ifname``."""
        link = self.link(ifname)
        if link is None:
            return []
        return [
            r
            for r in self._routes.values()
            if r.dst.version == version
            and r.dst.prefixlen == 0
            and r.table == RT_TABLE_MAIN
            and r.type == RTN_UNICAST  # unreachable/blackhole defaults route nothing
            and link.index in r.oifs
        ]


_HANDLERS: dict[str, Callable] = {
    "RTM_NEWLINK": NetState._link,
    "RTM_DELLINK": NetState._link,
    "RTM_NEWADDR": NetState._address,
    "RTM_DELADDR": NetState._address,
    "RTM_NEWROUTE": NetState._route,
    "RTM_DELROUTE": NetState._route,
}


# --- the socket edge -----------------------------------------------------------


class CarrierEdge:
    """Notices one link's carrier coming back (a cable plugged in again) in a NetState.

    The DHCP clients confirm their lease at that moment (RFC 2131 section 3.7,
    RFC 8415 section 18.2.12) instead of at their next retransmission, which may
    be minutes away. A link that is absent or down counts as having no carrier.
    """

    def __init__(self, net: NetState, ifname: str):
        self.net = net
        self.ifname = ifname
        self.had_carrier = self._carrier()

    def _carrier(self) -> bool:
        link = self.net.link(self.ifname)
        return link is not None and link.up and link.has_carrier

    def returned(self) -> bool:
        """True once for each return of the carrier since the last call."""
        now = self._carrier()
        back = now and not self.had_carrier
        self.had_carrier = now
        return back


def dump(state: NetState) -> list[Change]:
    """Read every link, address and route into ``state`` (blocking; quick local syscalls)."""
    changes = []
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
    ) as s:
        s.bind((0, 0))
        for seq, msg_type in enumerate((RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE), start=1):
            s.send(rtnl.dump_request(msg_type, seq))
            while True:
                data = s.recv(1 << 20)
                changes += state.feed(data)
                if _done(data):
                    break
    return changes


def _done(data: bytes) -> bool:
    """Whether the last message in ``data`` ends a dump (NLMSG_DONE or an error)."""
    offset, last = 0, None
    while offset + 16 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], sys.byteorder)  # host order
        last = int.from_bytes(data[offset + 4 : offset + 6], sys.byteorder)
        if length < 16:
            break
        offset += (length + 3) & ~3
    return last in (NLMSG_DONE, NLMSG_ERROR)


class NetlinkMonitor:
    """Keeps ``state`` current from rtnetlink events, read by the reactor (IReadDescriptor).

    ``on_change`` gets the list of changes of each read, so a burst (an interface
    with ten addresses going down) is handled once.
    """

    def __init__(self, reactor, state: NetState, on_change: Callable[[list[Change]], None]):
        self.reactor = reactor
        self.state = state
        self.on_change = on_change
        self.sock: socket.socket | None = None

    def start(self) -> None:
        # Subscribe before dumping: an event racing the dump is then applied after it.
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )  # fmt: skip
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, GROUPS))
        dump(self.state)
        self.reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return "netlink"

    def doRead(self) -> None:
        changes: list[Change] = []
        while self.sock is not None:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno != errno.ENOBUFS:
                    log.error("netlink: %s", e)
                    break
                # The kernel dropped events (our buffer overran): start over from a dump.
                log.warning("netlink: events lost, re-reading everything")
                self.state.reset()
                changes += dump(self.state)
                continue
            changes += self.state.feed(data)
        if changes:
            self.on_change(changes)

    def connectionLost(self, reason=None) -> None:
        self.stop()

    def stop(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None
