"""Router Advertisement encoding and Router Solicitation decoding (RFC 4861 §4.1, §4.2).

The kernel fills in the ICMPv6 checksum of a raw ICMPv6 socket (and verifies it on
receipt), so we send the bare ICMPv6 message with a zero checksum and never see the
IPv6 header. The RA is five kinds of fixed-layout blocks, packed here with struct:
scapy, which the tests use to parse them back, would cost radvd about 32 MiB and
0.15 s of start-up (bench/memory.py).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from .plan import RouterAdvert

ALL_NODES = ipaddress.IPv6Address("ff02::1")
ICMPV6_RS = 133
ICMPV6_RA = 134
_OPT_SLLA = 1


class MalformedPacket(ValueError):
    """A packet that RFC 4861 says to discard silently; the reason names the check."""


_OPT_PREFIX, _OPT_MTU, _OPT_RDNSS, _OPT_DNSSL = 3, 5, 25, 31


def _option(kind: int, body: bytes) -> bytes:
    """A ND option: type, length in units of 8 bytes, body zero-padded to fit."""
    body += b"\x00" * (-(len(body) + 2) % 8)
    return bytes([kind, (len(body) + 2) // 8]) + body


def _dns_name(name: str) -> bytes:
    labels = [label.encode("ascii") for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def encode_ra(advert: RouterAdvert) -> bytes:
    """The ICMPv6 payload for a raw ICMPv6 socket (checksum left to the kernel).

    M=0, O=0, medium preference, reachable time and retransmit timer unspecified.
    """
    out = [
        struct.pack(
            "!BBHBBHII", ICMPV6_RA, 0, 0, advert.hop_limit, 0, advert.router_lifetime, 0, 0
        ),
        _option(_OPT_SLLA, bytes.fromhex(advert.source_mac.replace(":", ""))),
        _option(_OPT_MTU, struct.pack("!HI", 0, advert.mtu)),
    ]
    for p in advert.prefixes:
        flags = (0x80 if p.on_link else 0) | (0x40 if p.autonomous else 0)
        out.append(
            _option(
                _OPT_PREFIX,
                struct.pack("!BBIII", p.prefix.prefixlen, flags, p.valid, p.preferred, 0)
                + p.prefix.network_address.packed,
            )
        )
    if advert.rdnss:
        addrs = b"".join(ipaddress.IPv6Address(a).packed for a in advert.rdnss)
        out.append(_option(_OPT_RDNSS, struct.pack("!HI", 0, advert.rdnss_lifetime) + addrs))
    if advert.dnssl:
        names = b"".join(_dns_name(n) for n in advert.dnssl)
        out.append(_option(_OPT_DNSSL, struct.pack("!HI", 0, advert.dnssl_lifetime) + names))
    return b"".join(out)


def ra_packet(advert: RouterAdvert, source, destination=ALL_NODES):
    """The full IPv6 packet as scapy sees it on the wire (for tests and captures only:
    scapy is imported here, not by the daemon)."""
    from scapy.layers.inet6 import ICMPv6ND_RA, IPv6

    ra = ICMPv6ND_RA(encode_ra(advert))
    del ra.cksum  # back to scapy's default: computed under the IPv6 layer
    return IPv6(src=str(source), dst=str(destination), hlim=255) / ra


@dataclass(frozen=True)
class RouterSolicitation:
    source: ipaddress.IPv6Address
    source_mac: str | None  # from the Source Link-Layer Address option


def decode_rs(data: bytes, source: str, hop_limit: int | None) -> RouterSolicitation:
    """Validate a received RS (RFC 4861 §6.1.1) or raise MalformedPacket.

    ``data`` is the ICMPv6 message (the kernel has checked its checksum), ``source``
    the IPv6 source address and ``hop_limit`` the IPv6 hop limit from the ancillary data.
    """
    if hop_limit != 255:
        raise MalformedPacket(f"hop limit {hop_limit}, not 255")
    if len(data) < 8:
        raise MalformedPacket("shorter than 8 bytes")
    if data[0] != ICMPV6_RS:
        raise MalformedPacket(f"ICMPv6 type {data[0]}, not a router solicitation")
    if data[1] != 0:
        raise MalformedPacket(f"ICMPv6 code {data[1]}")
    try:
        src = ipaddress.IPv6Address(source.split("%", 1)[0])
    except ValueError:
        raise MalformedPacket(f"bad source address {source!r}") from None
    # Walk the option TLVs ourselves: §6.1.1 requires every option length to be
    # non-zero, a check scapy's dissector does not make (it would loop or guess).
    options = data[8:]
    offset, has_slla = 0, False
    while offset < len(options):
        if len(options) - offset < 2:
            raise MalformedPacket("truncated option header")
        kind, length = options[offset], options[offset + 1] * 8
        if length == 0:
            raise MalformedPacket("option with length 0")
        if offset + length > len(options):
            raise MalformedPacket("option runs past the end")
        has_slla |= kind == _OPT_SLLA
        offset += length
    if src.is_unspecified and has_slla:
        raise MalformedPacket("source link-layer address from the unspecified address")
    return RouterSolicitation(src, _first_slla(options))


def _first_slla(options: bytes) -> str | None:
    """The first Source Link-Layer Address option's MAC (options already validated)."""
    offset = 0
    while offset < len(options):
        kind, length = options[offset], options[offset + 1] * 8
        if kind == _OPT_SLLA:
            return ":".join(f"{b:02x}" for b in options[offset + 2 : offset + 8])
        offset += length
    return None
