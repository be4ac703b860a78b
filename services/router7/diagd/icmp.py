"""ICMP/ICMPv6 echo ("ping") on the reactor, without a ping binary.

Debian's router image has no iputils-ping, and spawning a process per check is
heavier than one datagram anyway. We prefer the kernel's unprivileged ping socket
(SOCK_DGRAM + IPPROTO_ICMP: the kernel picks the identifier, fills in checksums
and delivers only our replies) and fall back to a raw socket when
net.ipv4.ping_group_range does not include us; root (which diagd runs as) may
always open raw sockets.

The echo messages are eight bytes of header and our payload, so they are packed
here with struct rather than with scapy, whose import would cost diagd about
32 MiB and 0.15 s of start-up (bench/memory.py).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct

from twisted.internet import defer
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from router7.diagd.tree import CheckFailed

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
PAYLOAD = b"router7-diagd"


def open_socket(version: int) -> tuple[socket.socket, bool]:
    """(socket, raw) for ICMP of ``version``: a ping socket if allowed, else raw."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    proto = socket.IPPROTO_ICMP if version == 4 else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
            raise
    return socket.socket(family, socket.SOCK_RAW, proto), True


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def encode_request(version: int, ident: int, seq: int) -> bytes:
    message = struct.pack("!BBHHH", ECHO_REQUEST[version], 0, 0, ident, seq) + PAYLOAD
    if version == 6:
        return message  # the kernel computes ICMPv6 checksums (it needs the pseudo-header)
    return message[:2] + checksum(message).to_bytes(2, "big") + message[4:]


def decode_reply(version: int, data: bytes, raw: bool) -> tuple[int, int] | None:
    """(id, seq) of an echo reply, or None for anything else (never raises)."""
    if version == 4 and raw and data:  # raw IPv4 sockets deliver the IP header too
        data = data[(data[0] & 0x0F) * 4 :]
    if len(data) < 8 or data[0] != ECHO_REPLY[version]:
        return None
    ident, seq = struct.unpack_from("!HH", data, 4)
    return ident, seq


@implementer(IReadDescriptor)
class _Echo:
    def __init__(self, reactor, address: str, ifname: str | None, timeout: float):
        ip = ipaddress.ip_address(address.split("%")[0])
        self.version = ip.version
        self.reactor = reactor
        self.address = address
        self.sock, self.raw = open_socket(self.version)
        self.sock.setblocking(False)
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.seq = 1
        self.deferred = defer.Deferred(lambda d: self._close())
        if self.version == 6:
            scope = socket.if_nametoindex(ifname) if ifname and ip.is_link_local else 0
            self.dest = (str(ip), 0, 0, scope)
        else:
            self.dest = (str(ip), 0)
        self.timeout = timeout

    def start(self) -> defer.Deferred:
        packet = encode_request(self.version, self.ident, self.seq)
        self.sent_at = self.reactor.seconds()
        try:
            self.sock.sendto(packet, self.dest)
        except OSError as e:
            self._close()
            return defer.fail(CheckFailed(f"cannot ping {self.address}: {e.strerror}"))
        self.reactor.addReader(self)
        self.timer = self.reactor.callLater(self.timeout, self._timed_out)
        return self.deferred

    def _timed_out(self) -> None:
        self._close()
        self.deferred.errback(
            CheckFailed(f"no echo reply from {self.address} within {self.timeout:g}s")
        )

    def _close(self) -> None:
        if getattr(self, "timer", None) is not None and self.timer.active():
            self.timer.cancel()
        self.reactor.removeReader(self)
        if self.sock.fileno() != -1:
            self.sock.close()

    # IReadDescriptor
    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return "diagd-ping"

    def connectionLost(self, reason) -> None:
        pass

    def doRead(self) -> None:
        while True:
            try:
                data, src = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            except OSError:
                return
            reply = decode_reply(self.version, data, self.raw)
            if reply is None:
                continue
            ident, seq = reply
            # A ping socket's kernel already matched the identifier; raw sockets see all.
            if seq != self.seq or (self.raw and ident != self.ident):
                continue
            if self.raw and src[0].split("%")[0] != self.dest[0]:
                continue
            rtt = self.reactor.seconds() - self.sent_at
            self._close()
            self.deferred.callback(rtt)
            return


def ping(reactor, address: str, ifname: str | None = None, timeout: float = 1.0):
    """Deferred[float]: round-trip seconds of one echo to ``address``; CheckFailed if none."""
    try:
        return _Echo(reactor, address, ifname, timeout).start()
    except OSError as e:
        return defer.fail(CheckFailed(f"cannot ping {address}: {e.strerror or e}"))
