"""DHCPv4 messages on the wire: decode what the server sends, encode what we send.

scapy's BOOTP/DHCP layers do the (de)serialisation. scapy is lenient (it keeps
what it cannot parse as raw bytes), so every decoded value is checked here and
anything that does not add up raises MalformedPacket, which the caller counts
and drops.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP

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
    try:
        ip = IP(packet)
    except Exception as e:  # scapy raises a zoo of types on garbage
        raise MalformedPacket("ip", repr(e)) from None
    if ip.version != 4 or ip.ihl is None or ip.ihl < 5:
        raise MalformedPacket("ip", "not an IPv4 header")
    if ip.proto != 17:
        raise NotForUs("not UDP")
    if ip.frag or ip.flags.MF:
        raise MalformedPacket("fragment")
    hdr = ip.ihl * 4
    total = min(len(packet), ip.len or 0)
    if total < hdr + 8:
        raise MalformedPacket("truncated", "no UDP header")
    udp = UDP(packet[hdr : hdr + 8])
    if udp.dport != CLIENT_PORT:
        raise NotForUs(f"UDP port {udp.dport}")
    end = hdr + udp.len
    if udp.len < 8 or end > total:
        raise MalformedPacket("truncated", f"UDP length {udp.len}")
    return packet[hdr + 8 : end], IPv4Address(ip.src)


def _ip(value) -> IPv4Address:
    return IPv4Address(value)


def _uint32(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32:
        raise ValueError(f"not a 32-bit integer: {value!r}")
    return value


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        raise ValueError(f"not text: {value!r}")
    return value.rstrip("\x00")


def decode(payload: bytes, src_mac: bytes | None = None, src_ip=None) -> Message:
    """Decode a BOOTP/DHCP reply (the UDP payload). Raises MalformedPacket."""
    if len(payload) < 240:
        raise MalformedPacket("truncated", f"{len(payload)} bytes of BOOTP")
    if payload[236:240] != MAGIC:
        raise MalformedPacket("not_dhcp", "no DHCP magic cookie")
    try:
        bootp = BOOTP(payload)
    except Exception as e:
        raise MalformedPacket("bootp", repr(e)) from None
    if bootp.op != 2:
        raise MalformedPacket("not_reply", f"op {bootp.op}")
    if bootp.htype != 1 or bootp.hlen != 6:
        raise MalformedPacket("bootp", f"htype {bootp.htype} hlen {bootp.hlen}")
    dhcp = bootp.getlayer(DHCP)
    if dhcp is None:
        raise MalformedPacket("options", "no DHCP options")
    opts: dict[str, tuple] = {}
    for opt in dhcp.options:
        if opt in ("end", "pad"):
            continue
        if not isinstance(opt, tuple) or not opt:
            # scapy keeps options it could not parse (bad length, truncation) as bytes
            raise MalformedPacket("options", f"unparsable option data {opt!r:.40}")
        opts.setdefault(opt[0], opt[1:])  # RFC 3396 concatenation is not needed here

    def one(name, convert):
        if name not in opts:
            return None
        values = opts[name]
        if len(values) != 1:
            raise MalformedPacket("options", f"{name}: expected one value")
        try:
            return convert(values[0])
        except (ValueError, TypeError) as e:
            raise MalformedPacket("options", f"{name}: {e}") from None

    def many(name):
        try:
            return tuple(_ip(v) for v in opts.get(name, ()))
        except (ValueError, TypeError) as e:
            raise MalformedPacket("options", f"{name}: {e}") from None

    msg_type = one("message-type", _uint32)
    if msg_type not in MESSAGE_TYPES:
        raise MalformedPacket("options", f"message type {msg_type!r}")
    mtu = one("interface-mtu", _uint32)
    try:
        return Message(
            msg_type=msg_type,
            xid=_uint32(bootp.xid),
            chaddr=bytes(bootp.chaddr)[:6],
            yiaddr=_ip(bootp.yiaddr),
            server_id=one("server_id", _ip),
            lease_time=one("lease_time", _uint32),
            renewal_time=one("renewal_time", _uint32),
            rebinding_time=one("rebinding_time", _uint32),
            subnet_mask=one("subnet_mask", _ip),
            routers=many("router"),
            dns=many("name_server"),
            domain=one("domain", _text),
            broadcast=one("broadcast_address", _ip),
            mtu=mtu,
            message=one("error_message", _text),
            raw=bytes(payload),
            src_mac=src_mac,
            src_ip=src_ip,
        )
    except (ValueError, TypeError) as e:
        raise MalformedPacket("bootp", str(e)) from None


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
    options: list = [("message-type", msg_type)]
    if requested_ip is not None:
        options.append(("requested_addr", str(requested_ip)))
    if server_id is not None:
        options.append(("server_id", str(server_id)))
    options.append(("client_id", ident.client_id))
    if msg_type != RELEASE:
        if ident.hostname:
            options.append(("hostname", ident.hostname.encode()))
        options.append(("param_req_list", PARAMETER_REQUEST_LIST))
        options.append(("max_dhcp_size", 1500))
    options.append("end")
    bootp = BOOTP(
        op=1,
        htype=1,
        hlen=6,
        xid=xid,
        secs=min(max(int(secs), 0), 0xFFFF),
        flags=0,  # unicast replies are fine: we read from a packet socket
        ciaddr=str(ciaddr),
        chaddr=ident.mac,
    ) / DHCP(options=options)
    data = bytes(bootp)
    return data + b"\x00" * max(0, MIN_BOOTP_LEN - len(data))


def wrap_ipv4(payload: bytes, src: IPv4Address, dst: IPv4Address) -> bytes:
    """Put a client message into IPv4/UDP 68→67 (the kernel adds the Ethernet header)."""
    return bytes(
        IP(src=str(src), dst=str(dst), ttl=64, id=0)
        / UDP(sport=CLIENT_PORT, dport=SERVER_PORT)
        / payload
    )


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
