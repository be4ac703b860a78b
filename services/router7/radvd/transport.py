"""The raw ICMPv6 socket on lan0: Router Solicitations in, Router Advertisements out.

Twisted has no raw-socket transport, so this is a small IReadDescriptor around
a socket: the kernel filters everything but RSs (ICMP6_FILTER), tells us each
packet's hop limit (RFC 4861 requires 255), and the socket only sees lan0
(SO_BINDTODEVICE). Each RA carries its source (lan0's link-local address) and
outgoing interface in IPV6_PKTINFO, so a changed link-local needs no new socket.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

log = logging.getLogger(__name__)

ICMP6_FILTER = 1  # <linux/icmpv6.h>; Python's socket module lacks it
_ALL_ROUTERS = socket.inet_pton(socket.AF_INET6, "ff02::2")
_CMSG_SPACE = 256


def _rs_only_filter() -> bytes:
    """An ICMP6_FILTER blocking every ICMPv6 type except Router Solicitation (133)."""
    words = [0xFFFFFFFF] * 8  # a set bit blocks the type
    words[133 >> 5] &= ~(1 << (133 & 31))
    return struct.pack("=8I", *words)


@implementer(IReadDescriptor)
class IcmpTransport:
    """Receives RSs on ``ifname`` and sends RAs from it."""

    def __init__(
        self,
        reactor,
        ifname: str,
        ifindex: int,
        on_packet: Callable[[bytes, str, int | None], None],
    ):
        self.reactor = reactor
        self.ifname = ifname
        self.ifindex = ifindex
        self.on_packet = on_packet
        self.sock: socket.socket | None = None

    def open(self) -> None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            s.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, _rs_only_filter())
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            # Hosts solicit ff02::2; a router with forwarding on has joined it already,
            # but lan0 may be configured otherwise (and is, in tests).
            mreq = _ALL_ROUTERS + struct.pack("@I", self.ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.reactor.addReader(self)

    def close(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None

    def send(
        self, payload: bytes, destination: ipaddress.IPv6Address, source: ipaddress.IPv6Address
    ) -> None:
        """Send one ICMPv6 message; raises OSError (e.g. ENETDOWN) to the caller."""
        if self.sock is None:
            raise OSError(errno.EBADF, "transport closed")
        pktinfo = source.packed + struct.pack("@I", self.ifindex)
        self.sock.sendmsg(
            [payload],
            [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
            0,
            (str(destination), 0, 0, self.ifindex),
        )

    # --- IReadDescriptor ------------------------------------------------------

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def doRead(self) -> None:
        while self.sock is not None:
            try:
                data, ancdata, _flags, address = self.sock.recvmsg(65535, _CMSG_SPACE)
            except BlockingIOError:
                return
            except OSError as e:
                log.warning("receive on %s failed: %s", self.ifname, e)
                return
            hop_limit = None
            for level, kind, value in ancdata:
                if (
                    level == socket.IPPROTO_IPV6
                    and kind == socket.IPV6_HOPLIMIT
                    and len(value) >= 4
                ):
                    hop_limit = struct.unpack("@i", value[:4])[0]
            self.on_packet(data, address[0], hop_limit)

    def connectionLost(self, reason) -> None:
        self.close()

    def logPrefix(self) -> str:
        return f"radvd-{self.ifname}"
