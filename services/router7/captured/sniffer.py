"""AF_PACKET capture sockets, read by the Twisted reactor.

One socket per interface, bound with ETH_P_ALL so that frames the router sends
(PACKET_OUTGOING) are seen as well as received ones, with the kernel filter of
filter.py attached before binding: a packet socket created with protocol 0
receives nothing, so no unfiltered frame is ever queued on it.

Interfaces come and go (netconfigd renames them at boot, a USB NIC is
replugged): a missing interface is retried, and a socket whose interface index
no longer matches the name is reopened.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from router7.captured import filter as bpf
from router7.captured.ring import Packet

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@ll")  # struct timespec: two C longs (64-bit time_t platforms)
BUFFER = 65536  # larger than any frame the filter passes; longer ones are truncated
RCVBUF = 1 << 20  # room for a burst (a switch full of DHCP clients rebooting)
BATCH = 64  # packets per doRead before yielding to the reactor


def open_socket(ifname: str) -> socket.socket:
    """A non-blocking, filtered packet socket on ``ifname`` (raises OSError)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        bpf.attach(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((ifname, ETH_P_ALL))  # Python converts the protocol to network order
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@implementer(IReadDescriptor)
class InterfaceSniffer:
    """Captures on one interface while open; reports packets to ``on_packet``."""

    def __init__(self, reactor, ifname: str, on_packet: Callable[[Packet], object]):
        self.reactor = reactor
        self.ifname = ifname
        self.on_packet = on_packet
        self.sock: socket.socket | None = None
        self.ifindex: int | None = None
        self.errors: Counter[str] = Counter()
        self._buf = bytearray(BUFFER)
        self._view = memoryview(self._buf)
        self._warned = False

    @property
    def capturing(self) -> bool:
        return self.sock is not None

    def ensure(self) -> None:
        """Open the socket if it is closed, reopen it if its interface was replaced."""
        if self.sock is not None:
            try:
                current = socket.if_nametoindex(self.ifname)
            except OSError:
                current = None
            if current == self.ifindex:
                return
            log.info("%s changed (index %s -> %s): reopening", self.ifname, self.ifindex, current)
            self.close()
        try:
            sock = open_socket(self.ifname)
            self.ifindex = socket.if_nametoindex(self.ifname)
        except OSError as e:
            if not self._warned:  # once per outage, not at every link event
                log.warning("cannot capture on %s yet: %s", self.ifname, e)
                self._warned = True
            return
        self._warned = False
        self.sock = sock
        self.reactor.addReader(self)
        log.info("capturing on %s (index %d)", self.ifname, self.ifindex)

    def close(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None

    # IReadDescriptor
    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return f"captured-{self.ifname}"

    def connectionLost(self, reason) -> None:
        self.close()

    def doRead(self) -> None:
        for _ in range(BATCH):
            if self.sock is None:
                return
            try:
                # MSG_TRUNC: the return value is the frame's real length even
                # when it did not fit the buffer.
                n, ancdata, _flags, addr = self.sock.recvmsg_into(
                    [self._buf], socket.CMSG_SPACE(_TIMESPEC.size), socket.MSG_TRUNC
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                # ENETDOWN when the link goes down (the socket resumes when it
                # comes back up); anything else: the check below decides.
                self.errors[errno.errorcode.get(e.errno, str(e.errno))] += 1
                log.debug("%s: receive error %s", self.ifname, e)
                self.ensure()
                return
            ts = time.time_ns()
            for level, kind, data in ancdata:
                ours = level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS
                if ours and len(data) >= _TIMESPEC.size:
                    sec, nsec = _TIMESPEC.unpack_from(data)
                    ts = sec * 1_000_000_000 + nsec
            caplen = min(n, BUFFER)
            pkttype = addr[2] if len(addr) > 2 else 0
            self.on_packet(Packet(ts, self.ifname, bytes(self._view[:caplen]), n, pkttype))


class Sniffers:
    """All interfaces' sniffers; ``ensure`` after link events (missing or replaced interfaces)."""

    def __init__(self, reactor, interfaces, on_packet: Callable[[Packet], object]):
        self.reactor = reactor
        self.sniffers = [InterfaceSniffer(reactor, i, on_packet) for i in interfaces]

    def start(self) -> None:
        self.ensure()

    def ensure(self) -> None:
        for s in self.sniffers:
            s.ensure()

    def stop(self) -> None:
        for s in self.sniffers:
            s.close()
