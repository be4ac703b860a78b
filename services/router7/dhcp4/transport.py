"""The uplink packet socket, attached to the Twisted reactor.

fiber7 answers DISCOVER/REQUEST by unicast to the offered address, which is
not configured yet, so a UDP socket would never see the reply. An AF_PACKET
SOCK_DGRAM socket for ethertype IPv4 sees every IPv4 packet of the interface
(the kernel strips and adds the Ethernet header); a classic BPF program keeps
only UDP to port 68 so the daemon does not wake up for all uplink traffic.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import socket
import struct
from collections.abc import Callable

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4


def _bpf(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


# Hand-written because nothing in the venv compiles BPF without tcpdump; offsets are
# from the IPv4 header (SOCK_DGRAM sockets filter after the link header).
#   ldb [9]; jeq #17 (UDP) else drop; ldh [6]; jset #0x1fff (later fragment) drop;
#   ldxb 4*([0]&0xf); ldh [x+2]; jeq #68 else drop; accept; drop
UDP_DPORT_68 = b"".join(
    [
        _bpf(0x30, 0, 0, 9),
        _bpf(0x15, 0, 6, 17),
        _bpf(0x28, 0, 0, 6),
        _bpf(0x45, 4, 0, 0x1FFF),
        _bpf(0xB1, 0, 0, 0),
        _bpf(0x48, 0, 0, 2),
        _bpf(0x15, 0, 1, 68),
        _bpf(0x06, 0, 0, 0xFFFF),
        _bpf(0x06, 0, 0, 0),
    ]
)


def attach_filter(sock: socket.socket, program: bytes) -> None:
    buf = ctypes.create_string_buffer(program)
    # struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


@implementer(IReadDescriptor)
class PacketTransport:
    """Receive IPv4 packets to UDP 68 on ``ifname``; send IPv4 packets to a MAC."""

    def __init__(self, ifname: str, reactor, on_packet: Callable[[bytes, bytes], None]):
        self.ifname = ifname
        self.reactor = reactor
        self.on_packet = on_packet  # (IPv4 packet, Ethernet source MAC)
        self.sock: socket.socket | None = None
        self.mac: bytes | None = None

    def open(self) -> None:
        # Protocol 0 receives nothing: attach the filter before binding to
        # ETH_P_IP, so no unfiltered packet is queued in between.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        try:
            attach_filter(sock, UDP_DPORT_68)
            sock.bind((self.ifname, ETH_P_IP))
            sock.setblocking(False)
            self.mac = sock.getsockname()[4][:6]
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.reactor.addReader(self)

    def close(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None

    def send(self, packet: bytes, dst_mac: bytes) -> None:
        """Send an IPv4 packet; raises OSError (e.g. ENETDOWN) for the caller to count."""
        if self.sock is None:
            raise OSError(errno.EBADF, "socket closed")
        self.sock.sendto(packet, (self.ifname, ETH_P_IP, 0, 0, dst_mac))

    # --- IReadDescriptor -------------------------------------------------------

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return f"dhcp4({self.ifname})"

    def connectionLost(self, reason) -> None:
        log.warning("packet socket on %s lost: %s", self.ifname, reason)

    def doRead(self) -> None:
        for _ in range(64):  # bounded, so a flood cannot starve the timers
            try:
                data, addr = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as e:
                # e.g. ENETDOWN while the link flaps; the socket stays usable.
                log.debug("recv on %s: %s", self.ifname, e)
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            self.on_packet(data, addr[4][:6])
