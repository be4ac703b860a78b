"""Tell a service when its link's carrier comes back (a cable plugged in again).

The DHCP clients use it to confirm their lease at once (RFC 2131 §3.7, RFC 8415
§18.2.12) instead of at their next retransmission, which may be minutes away.

``CarrierTracker`` is the socket-free core: it takes raw rtnetlink bytes and says
whether the link went from no carrier to carrier. ``CarrierWatch`` reads a netlink
socket subscribed to link events in the reactor (no thread).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

log = logging.getLogger(__name__)

IFF_LOWER_UP = 0x10000  # the driver reports carrier (linux/if.h)


class CarrierTracker:
    """Follows the carrier of the link named `ifname` through RTM_NEWLINK messages."""

    def __init__(self, ifname: str):
        self.ifname = ifname
        self.carrier: bool | None = None  # unknown until the first message about the link
        self._marshal = MarshalRtnl()

    def feed(self, data: bytes) -> bool:
        """Apply the messages in `data`; True if the carrier came back among them."""
        came_back = False
        for msg in self._marshal.parse(data):
            if msg.get("event") != "RTM_NEWLINK" or msg.get_attr("IFLA_IFNAME") != self.ifname:
                continue
            carrier = bool(msg["flags"] & IFF_LOWER_UP)
            came_back |= carrier and self.carrier is False
            self.carrier = carrier
        return came_back


class CarrierWatch:
    """Calls `on_up()` in the reactor each time `ifname` regains carrier."""

    def __init__(self, reactor, ifname: str, on_up: Callable[[], None]):
        self.reactor = reactor
        self.tracker = CarrierTracker(ifname)
        self.on_up = on_up
        self.sock: socket.socket | None = None

    def start(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )  # fmt: skip
        self.sock.bind((0, RTMGRP_LINK))
        try:  # the starting state: a link that is down now counts as "no carrier"
            with open(f"/sys/class/net/{self.tracker.ifname}/carrier") as f:
                self.tracker.carrier = f.read().strip() == "1"
        except OSError:  # down links refuse the read (EINVAL); missing ones do not exist
            self.tracker.carrier = False
        self.reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return "carrier"

    def doRead(self) -> None:
        came_back = False
        while self.sock is not None:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as e:  # ENOBUFS: events lost; the next one tells the state
                log.warning("netlink: %s", e)
                break
            came_back |= self.tracker.feed(data)
        if came_back:
            log.info("%s has carrier again", self.tracker.ifname)
            self.on_up()

    def connectionLost(self, reason=None) -> None:
        self.stop()

    def stop(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None
