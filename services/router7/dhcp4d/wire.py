"""DHCPv4 on the wire: decode requests, encode replies, with struct.

Decoding never raises anything but Malformed: a LAN host can send any bytes to
port 67, and one bad packet must not take the server down. The server reads seven
options of a fixed header; scapy did this until bench/memory.py showed that
importing it cost router7-dhcp4d 32 MiB and 0.15 s of start-up. The tests check
this codec against scapy.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address

# DHCP message types (RFC 2132 9.6): one definition, shared with the client.
from router7.dhcp4.wire import (  # noqa: F401 - re-exported for the server modules
    ACK,
    DECLINE,
    DISCOVER,
    INFORM,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    options,
    udp_ipv4,
)
from router7.dhcp4.wire import MESSAGE_TYPES as TYPE_NAMES

MAGIC = b"\x63\x82\x53\x63"
BROADCAST_FLAG = 0x8000
SERVER_PORT, CLIENT_PORT = 67, 68
_ZERO = IPv4Address(0)


class Malformed(ValueError):
    """Not a DHCPv4 request we can answer; ``reason`` labels the drop counter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Request:
    msg_type: int
    xid: int
    chaddr: bytes  # 6 bytes
    flags: int = 0
    ciaddr: IPv4Address = _ZERO
    giaddr: IPv4Address = _ZERO
    requested_addr: IPv4Address | None = None  # option 50
    server_id: IPv4Address | None = None  # option 54
    hostname: bytes | None = None  # option 12, raw
    param_req_list: list[int] = field(default_factory=list)  # option 55
    vendor_class: bytes | None = None  # option 60
    client_id: bytes | None = None  # option 61

    @property
    def mac(self) -> str:
        return ":".join(f"{b:02x}" for b in self.chaddr)

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.msg_type, str(self.msg_type))


@dataclass
class Reply:
    msg_type: int
    xid: int
    chaddr: bytes
    flags: int = 0
    ciaddr: IPv4Address = _ZERO
    yiaddr: IPv4Address = _ZERO
    giaddr: IPv4Address = _ZERO
    options: list[tuple[int, bytes]] = field(default_factory=list)  # after option 53

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.msg_type, str(self.msg_type))

    def option(self, code: int) -> bytes | None:
        return next((v for c, v in self.options if c == code), None)


def decode(data: bytes) -> Request:
    """Parse a BOOTREQUEST carrying DHCP options; raise Malformed otherwise."""
    if len(data) < 240 or data[236:240] != MAGIC:
        raise Malformed("not_dhcp")
    op, htype, hlen = data[0], data[1], data[2]
    if op != 1:
        raise Malformed("not_request")
    if htype != 1 or hlen != 6:
        raise Malformed("not_ethernet")
    opts = options(data[240:], strict=False)
    msg_type = opts.get(53)
    if msg_type is None or len(msg_type) != 1 or not DISCOVER <= msg_type[0] <= INFORM:
        raise Malformed("no_message_type")

    def addr(code: int) -> IPv4Address | None:
        v = opts.get(code)
        if v is None:
            return None
        if len(v) != 4:
            raise Malformed("bad_option")
        return IPv4Address(v)

    xid, flags = struct.unpack_from("!I2xH", data, 4)
    return Request(
        msg_type=msg_type[0],
        xid=xid,
        chaddr=bytes(data[28:34]),
        flags=flags,
        ciaddr=IPv4Address(data[12:16]),
        giaddr=IPv4Address(data[24:28]),
        requested_addr=addr(50),
        server_id=addr(54),
        hostname=opts.get(12),
        param_req_list=list(opts.get(55, b"")),
        vendor_class=opts.get(60),
        client_id=opts.get(61),
    )


_BOOTP_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


def encode(reply: Reply, server: IPv4Address) -> bytes:
    """The BOOTREPLY payload (UDP data), padded to the 300-byte BOOTP minimum.

    Built with struct rather than scapy: scapy takes about 1 ms to build a reply,
    which alone would cap the server near 300 DORA exchanges per second, and a
    reply is a fixed header plus options whose values we produced ourselves. The
    unit tests decode these bytes with scapy.
    """
    header = _BOOTP_HEADER.pack(
        2,  # op: BOOTREPLY
        1,  # htype: Ethernet
        len(reply.chaddr),
        0,  # hops
        reply.xid & 0xFFFFFFFF,
        0,  # secs
        reply.flags & 0xFFFF,
        reply.ciaddr.packed,
        reply.yiaddr.packed,
        bytes(4),  # siaddr: no next server (no PXE)
        reply.giaddr.packed,
        reply.chaddr[:16],
        b"",  # sname
        b"",  # file
    )
    options = [MAGIC, bytes([53, 1, reply.msg_type])]
    for code, value in reply.options:
        options.append(bytes([code, len(value)]) + value)
    options.append(b"\xff")
    data = header + b"".join(options)
    return data + bytes(max(0, 300 - len(data)))


def ip_packet(payload: bytes, src: IPv4Address, dst: IPv4Address) -> bytes:
    """IPv4/UDP 67->68 around ``payload``, for the packet socket (no Ethernet header)."""
    return udp_ipv4(payload, src, dst, SERVER_PORT, CLIENT_PORT, ip_id=1)
