"""DHCPv4 for netbooting: decode requests, answer PXE clients only.

The laptop sits on a cable to the router's LAN port, but that segment may hold
other hosts (a switch, a second laptop): router7-recover must never hand them an
address. Only a client that says it is netbooting gets an answer: vendor class
(option 60) starting with "PXEClient", or iPXE's user class (option 77).

Decoding is our own (about 40 lines of struct): it never raises anything but
Malformed, whatever the bytes (tests/unit/test_recover_dhcp.py fuzzes it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from router7.dhcp4.wire import MalformedPacket
from router7.dhcp4.wire import options as read_options

MAGIC = b"\x63\x82\x53\x63"
SERVER_PORT, CLIENT_PORT = 67, 68
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
BOOTREQUEST, BOOTREPLY = 1, 2
OPT_END = 255
OPT_NETMASK, OPT_REQUESTED, OPT_LEASE, OPT_TYPE, OPT_SERVER_ID = 1, 50, 51, 53, 54
OPT_VENDOR_CLASS, OPT_TFTP_SERVER, OPT_BOOTFILE, OPT_USER_CLASS = 60, 66, 67, 77
OPT_OVERLOAD = 52
LEASE_SECONDS = 3600
_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes


class Malformed(ValueError):
    """Not a DHCP request we read; the reason is logged."""


@dataclass
class Request:
    msg_type: int
    xid: int
    chaddr: bytes  # 6 bytes
    flags: int = 0
    options: dict[int, bytes] = field(default_factory=dict)

    @property
    def mac(self) -> str:
        return ":".join(f"{b:02x}" for b in self.chaddr)

    @property
    def requested(self) -> IPv4Address | None:
        return _addr(self.options.get(OPT_REQUESTED))

    @property
    def server_id(self) -> IPv4Address | None:
        return _addr(self.options.get(OPT_SERVER_ID))

    @property
    def is_ipxe(self) -> bool:
        return b"iPXE" in self.options.get(OPT_USER_CLASS, b"")

    @property
    def is_pxe(self) -> bool:
        """A netbooting client: a PXE ROM's vendor class or iPXE's user class."""
        return self.options.get(OPT_VENDOR_CLASS, b"").startswith(b"PXEClient") or self.is_ipxe


def _addr(raw: bytes | None) -> IPv4Address | None:
    return IPv4Address(raw) if raw is not None and len(raw) == 4 else None


def parse_options(data: bytes) -> dict[int, bytes]:
    """Options as code -> value, read as router7's DHCP client and server read them."""
    try:
        return read_options(data)
    except MalformedPacket as e:
        raise Malformed(str(e)) from None


def decode(data: bytes) -> Request:
    """A BOOTREQUEST with DHCP options from Ethernet; Malformed otherwise."""
    if len(data) < _HEADER.size + 4 or data[_HEADER.size : _HEADER.size + 4] != MAGIC:
        raise Malformed("not DHCP")
    op, htype, hlen, _hops, xid, _secs, flags, *_addrs, chaddr, _sname, _file = _HEADER.unpack(
        data[: _HEADER.size]
    )
    if op != BOOTREQUEST:
        raise Malformed("not a request")
    if htype != 1 or hlen != 6:
        raise Malformed("not Ethernet")
    options = parse_options(data[_HEADER.size + 4 :])
    msg_type = options.get(OPT_TYPE, b"")
    if len(msg_type) != 1 or not DISCOVER <= msg_type[0] <= INFORM:
        raise Malformed("no DHCP message type")
    return Request(msg_type[0], xid, chaddr[:6], flags, options)


@dataclass(frozen=True)
class Offer:
    """What the laptop hands a netbooting router."""

    server: IPv4Address
    client: IPv4Address
    netmask: IPv4Address
    ipxe_bootfile: str  # for iPXE (a TFTP name or URL)
    pxe_bootfile: str  # for plain PXE ROMs (PXELINUX)


def answer(req: Request, offer: Offer) -> bytes | None:
    """The reply to `req`, or None: non-PXE clients, other servers' clients,
    and anything but DISCOVER and REQUEST get no answer at all (no NAKs)."""
    if not req.is_pxe:
        return None
    if req.msg_type == DISCOVER:
        msg_type = OFFER
    elif req.msg_type == REQUEST:
        if req.server_id not in (None, offer.server):
            return None  # the client took another server's offer
        if req.requested not in (None, offer.client):
            return None
        msg_type = ACK
    else:
        return None
    bootfile = offer.ipxe_bootfile if req.is_ipxe else offer.pxe_bootfile
    return encode_reply(req, msg_type, offer, bootfile)


def _opt(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def encode_reply(req: Request, msg_type: int, offer: Offer, bootfile: str) -> bytes:
    name = bootfile.encode()
    if len(name) > 127:
        raise ValueError(f"boot file name too long for BOOTP: {bootfile!r}")
    header = _HEADER.pack(
        BOOTREPLY, 1, 6, 0, req.xid, 0, req.flags,
        b"\0" * 4, offer.client.packed, offer.server.packed, b"\0" * 4,
        req.chaddr.ljust(16, b"\0"), b"", name,
    )  # fmt: skip
    options = b"".join(
        [
            _opt(OPT_TYPE, bytes([msg_type])),
            _opt(OPT_SERVER_ID, offer.server.packed),
            _opt(OPT_LEASE, struct.pack("!I", LEASE_SECONDS)),
            _opt(OPT_NETMASK, offer.netmask.packed),
            _opt(OPT_TFTP_SERVER, str(offer.server).encode()),
            _opt(OPT_BOOTFILE, name),
        ]
    )
    return header + MAGIC + options + bytes([OPT_END])


def decode_reply(data: bytes) -> tuple[int, IPv4Address, str, dict[int, bytes]]:
    """(message type, yiaddr, boot file, options) of a BOOTREPLY: for tests."""
    if len(data) < _HEADER.size + 4 or data[_HEADER.size : _HEADER.size + 4] != MAGIC:
        raise Malformed("not DHCP")
    fields = _HEADER.unpack(data[: _HEADER.size])
    if fields[0] != BOOTREPLY:
        raise Malformed("not a reply")
    options = parse_options(data[_HEADER.size + 4 :])
    return options[OPT_TYPE][0], IPv4Address(fields[8]), fields[13].rstrip(b"\0").decode(), options


def encode_request(
    msg_type: int, xid: int, mac: bytes, options: dict[int, bytes] | None = None
) -> bytes:
    """A client request (tests and the fuzzer's seeds)."""
    header = _HEADER.pack(
        BOOTREQUEST, 1, 6, 0, xid, 0, 0x8000, *(b"\0" * 4,) * 4, mac.ljust(16, b"\0"), b"", b""
    )
    opts = _opt(OPT_TYPE, bytes([msg_type]))
    for code, value in (options or {}).items():
        opts += _opt(code, value)
    return header + MAGIC + opts + bytes([OPT_END])
