"""DHCPv4 messages on the wire: decode what the server sends, encode what we send.

A small codec of its own rather than scapy's BOOTP/DHCP layers: the client needs
about ten options, and this module is also imported, through the lease file reader,
by dnsd, netconfigd and statusd. Importing scapy costs each of those processes about
32 MiB and 0.15 s of start-up (bench/memory.py); this costs nothing measurable. The
tests still check what it writes and reads against scapy. Every decoded value is
checked here and anything that does not add up raises MalformedPacket, which the
caller counts and drops.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from ipaddress import IPv4Address

CLIENT_PORT = 68
SERVER_PORT = 67
MAGIC = b"\x63\x82\x53\x63"
BROADCAST = IPv4Address("255.255.255.255")
UNSPECIFIED = IPv4Address("0.0.0.0")
BROADCAST_MAC = b"\xff" * 6
# Options we ask for: mask, router, DNS, domain, MTU, broadcast, lease time,
# server id, T1, T2.
PARAMETER_REQUEST_LIST = [1, 3, 6, 15, 26, 28, 51, 54, 58, 59]
# RFC 1542 §3.2: some relays and servers drop BOOTP messages shorter than 300 bytes.
MIN_BOOTP_LEN = 300

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_TYPES = {
    DISCOVER: "discover",
    OFFER: "offer",
    REQUEST: "request",
    DECLINE: "decline",
    ACK: "ack",
    NAK: "nak",
    RELEASE: "release",
    INFORM: "inform",
}


class MalformedPacket(ValueError):
    """A packet addressed to the DHCP client port that cannot be a valid DHCP message."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason  # a short label, used as a metric label value
        super().__init__(f"{reason}: {detail}" if detail else reason)


class NotForUs(ValueError):
    """An IPv4 packet that is not UDP to port 68 (a filter miss, not an error)."""


@dataclass(frozen=True)
class Message:
    """The parts of a server's DHCP reply the client uses."""

    msg_type: int
    xid: int
    chaddr: bytes  # 6 bytes
    yiaddr: IPv4Address
    server_id: IPv4Address | None = None
    lease_time: int | None = None
    renewal_time: int | None = None  # T1, option 58
    rebinding_time: int | None = None  # T2, option 59
    subnet_mask: IPv4Address | None = None
    routers: tuple[IPv4Address, ...] = ()
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    broadcast: IPv4Address | None = None
    mtu: int | None = None
    message: str | None = None  # option 56, e.g. a NAK's reason
    raw: bytes = field(default=b"", repr=False)  # the BOOTP payload as received
    src_mac: bytes | None = None  # Ethernet source (relay or server), from the socket
    src_ip: IPv4Address | None = None

    @property
    def type_name(self) -> str:
        return MESSAGE_TYPES.get(self.msg_type, str(self.msg_type))


# --- decoding ----------------------------------------------------------------


def udp_payload(packet: bytes) -> tuple[bytes, IPv4Address]:
    """The UDP payload of an IPv4 datagram to port 68, and its source address.

    Raises NotForUs for other traffic and MalformedPacket for broken headers.
    UDP checksums are not verified: on veth and other offloading links a packet
    socket sees CHECKSUM_PARTIAL packets whose checksum field is incomplete.
    """
    if len(packet) < 28:
        raise MalformedPacket("truncated", f"{len(packet)} bytes")
    version, ihl = packet[0] >> 4, packet[0] & 0x0F
    if version != 4 or ihl < 5:
        raise MalformedPacket("ip", "not an IPv4 header")
    ip_len, frag, proto = struct.unpack_from("!2xH2xH1xB", packet)
    if proto != 17:
        raise NotForUs("not UDP")
    if frag & 0x3FFF:  # MF flag or a fragment offset
        raise MalformedPacket("fragment")
    hdr = ihl * 4
    total = min(len(packet), ip_len)
    if total < hdr + 8:
        raise MalformedPacket("truncated", "no UDP header")
    dport, udp_len = struct.unpack_from("!2xHH", packet, hdr)
    if dport != CLIENT_PORT:
        raise NotForUs(f"UDP port {dport}")
    end = hdr + udp_len
    if udp_len < 8 or end > total:
        raise MalformedPacket("truncated", f"UDP length {udp_len}")
    return packet[hdr + 8 : end], IPv4Address(packet[12:16])


# Option codes (RFC 2132) the client reads, and how many bytes one value takes.
OPT_PAD, OPT_END = 0, 255
OPT_SUBNET_MASK, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN = 1, 3, 6, 12, 15
OPT_MTU, OPT_BROADCAST, OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_OVERLOAD = 26, 28, 50, 51, 52
OPT_MESSAGE_TYPE, OPT_SERVER_ID, OPT_PARAMETERS, OPT_MESSAGE, OPT_MAX_SIZE = 53, 54, 55, 56, 57
OPT_T1, OPT_T2, OPT_CLIENT_ID = 58, 59, 61


def options(data: bytes, strict: bool = True) -> dict[int, bytes]:
    """The options region as {code: value}; the first of repeated codes wins.

    The one reader of DHCPv4 options: this client, the LAN server (dhcp4d) and
    router7-recover's PXE server. An option that runs past the packet raises
    MalformedPacket, or with ``strict=False`` (the server's leniency towards odd
    clients) ends the list, the options before it counting. RFC 3396 concatenation
    and option overload (sname/file) are needed by none of them: nobody they talk to
    sends long options.
    """
    found: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == OPT_END:
            break
        if code == OPT_PAD:
            i += 1
            continue
        if i + 2 > len(data) or i + 2 + data[i + 1] > len(data):
            if not strict:
                break
            raise MalformedPacket("options", f"option {code} runs past the packet")
        found.setdefault(code, bytes(data[i + 2 : i + 2 + data[i + 1]]))
        i += 2 + data[i + 1]
    return found


def decode(payload: bytes, src_mac: bytes | None = None, src_ip=None) -> Message:
    """Decode a BOOTP/DHCP reply (the UDP payload). Raises MalformedPacket."""
    if len(payload) < 240:
        raise MalformedPacket("truncated", f"{len(payload)} bytes of BOOTP")
    if payload[236:240] != MAGIC:
        raise MalformedPacket("not_dhcp", "no DHCP magic cookie")
    op, htype, hlen = payload[0], payload[1], payload[2]
    if op != 2:
        raise MalformedPacket("not_reply", f"op {op}")
    if htype != 1 or hlen != 6:
        raise MalformedPacket("bootp", f"htype {htype} hlen {hlen}")
    opts = options(payload[240:])

    def fixed(code: int, name: str, size: int) -> bytes | None:
        value = opts.get(code)
        if value is not None and len(value) != size:
            raise MalformedPacket("options", f"{name}: {len(value)} bytes, want {size}")
        return value

    def address(code: int, name: str) -> IPv4Address | None:
        value = fixed(code, name, 4)
        return None if value is None else IPv4Address(value)

    def number(code: int, name: str, size: int = 4) -> int | None:
        value = fixed(code, name, size)
        return None if value is None else int.from_bytes(value, "big")

    def addresses(code: int, name: str) -> tuple[IPv4Address, ...]:
        value = opts.get(code, b"")
        if len(value) % 4:
            raise MalformedPacket("options", f"{name}: {len(value)} bytes, not addresses")
        return tuple(IPv4Address(value[i : i + 4]) for i in range(0, len(value), 4))

    def text(code: int) -> str | None:
        value = opts.get(code)
        return None if value is None else value.decode("ascii", "replace").rstrip("\x00")

    msg_type = number(OPT_MESSAGE_TYPE, "message-type", 1)
    if msg_type not in MESSAGE_TYPES:
        raise MalformedPacket("options", f"message type {msg_type!r}")
    xid = int.from_bytes(payload[4:8], "big")
    return Message(
        msg_type=msg_type,
        xid=xid,
        chaddr=bytes(payload[28:34]),
        yiaddr=IPv4Address(payload[16:20]),
        server_id=address(OPT_SERVER_ID, "server_id"),
        lease_time=number(OPT_LEASE_TIME, "lease_time"),
        renewal_time=number(OPT_T1, "renewal_time"),
        rebinding_time=number(OPT_T2, "rebinding_time"),
        subnet_mask=address(OPT_SUBNET_MASK, "subnet_mask"),
        routers=addresses(OPT_ROUTER, "router"),
        dns=addresses(OPT_DNS, "name_server"),
        domain=text(OPT_DOMAIN),
        broadcast=address(OPT_BROADCAST, "broadcast_address"),
        mtu=number(OPT_MTU, "interface-mtu", 2),
        message=text(OPT_MESSAGE),
        raw=bytes(payload),
        src_mac=src_mac,
        src_ip=src_ip,
    )


def decode_ipv4(packet: bytes, src_mac: bytes | None = None) -> Message:
    """Decode an IPv4 datagram as read from the packet socket."""
    payload, src_ip = udp_payload(packet)
    return decode(payload, src_mac, src_ip)


# --- encoding ----------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Who we are on the wire: the (possibly spoofed) MAC and our hostname."""

    mac: bytes
    hostname: str | None

    @property
    def client_id(self) -> bytes:
        return b"\x01" + self.mac  # htype 1 (Ethernet) + MAC, as router7 sends


def encode(
    msg_type: int,
    xid: int,
    ident: Identity,
    *,
    secs: int = 0,
    ciaddr: IPv4Address = UNSPECIFIED,
    requested_ip: IPv4Address | None = None,
    server_id: IPv4Address | None = None,
) -> bytes:
    """A client message as BOOTP payload bytes (what the stored ACK file also holds)."""
    opts = [(OPT_MESSAGE_TYPE, bytes([msg_type]))]
    if requested_ip is not None:
        opts.append((OPT_REQUESTED_IP, requested_ip.packed))
    if server_id is not None:
        opts.append((OPT_SERVER_ID, server_id.packed))
    opts.append((OPT_CLIENT_ID, ident.client_id))
    if msg_type != RELEASE:
        if ident.hostname:
            opts.append((OPT_HOSTNAME, ident.hostname.encode()[:255]))
        opts.append((OPT_PARAMETERS, bytes(PARAMETER_REQUEST_LIST)))
        opts.append((OPT_MAX_SIZE, (1500).to_bytes(2, "big")))
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s192x",
        1,  # BOOTREQUEST
        1,  # htype Ethernet
        6,  # hlen
        0,  # hops
        xid,
        min(max(int(secs), 0), 0xFFFF),
        0,  # flags: unicast replies are fine, we read from a packet socket
        ciaddr.packed,
        UNSPECIFIED.packed,
        UNSPECIFIED.packed,
        UNSPECIFIED.packed,
        ident.mac,
    )
    data = header + MAGIC + b"".join(bytes([c, len(v)]) + v for c, v in opts) + bytes([OPT_END])
    return data + b"\x00" * max(0, MIN_BOOTP_LEN - len(data))


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_ipv4(payload: bytes, src, dst, sport: int, dport: int, ip_id: int = 0) -> bytes:
    """IPv4/UDP around ``payload``, checksums filled in (the kernel adds Ethernet)."""
    src, dst = IPv4Address(src), IPv4Address(dst)
    udp_len = 8 + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp_sum = _checksum(pseudo + udp) or 0xFFFF  # 0 would mean "no checksum"
    udp = udp[:6] + udp_sum.to_bytes(2, "big") + udp[8:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id, 0, 64, 17, 0, src.packed, dst.packed
    )
    ip = ip[:10] + _checksum(ip).to_bytes(2, "big") + ip[12:]
    return ip + udp


def wrap_ipv4(payload: bytes, src: IPv4Address, dst: IPv4Address) -> bytes:
    """Put a client message into IPv4/UDP 68→67 (the kernel adds the Ethernet header)."""
    return udp_ipv4(payload, src, dst, CLIENT_PORT, SERVER_PORT)


def parse_mac(text: str) -> bytes:
    b = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(b) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return b


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def mask_prefixlen(mask: IPv4Address) -> int:
    """Prefix length of a netmask; raises ValueError for non-contiguous masks."""
    return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
