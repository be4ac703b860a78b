"""Router Advertisement encoding and Router Solicitation decoding (RFC 4861 §4.1, §4.2).

scapy builds and dissects the ICMPv6 messages. The kernel fills in the ICMPv6
checksum of a raw ICMPv6 socket (and verifies it on receipt), so we send the
bare ICMPv6 message with a zero checksum and never see the IPv6 header.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDNSSL,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)

from .plan import RouterAdvert

ALL_NODES = ipaddress.IPv6Address("ff02::1")
ICMPV6_RS = 133
ICMPV6_RA = 134
_OPT_SLLA = 1


class MalformedPacket(ValueError):
    """A packet that RFC 4861 says to discard silently; the reason names the check."""


def build_ra(advert: RouterAdvert, cksum: int | None = 0) -> ICMPv6ND_RA:
    """The RA as a scapy packet; ``cksum=None`` lets scapy compute it under an IPv6 layer."""
    ra = ICMPv6ND_RA(
        cksum=cksum,
        chlim=advert.hop_limit,
        M=0,
        O=0,
        prf=0,  # medium
        routerlifetime=advert.router_lifetime,
        reachabletime=0,
        retranstimer=0,
    )
    ra /= ICMPv6NDOptSrcLLAddr(lladdr=advert.source_mac)
    ra /= ICMPv6NDOptMTU(mtu=advert.mtu)
    for p in advert.prefixes:
        ra /= ICMPv6NDOptPrefixInfo(
            prefixlen=p.prefix.prefixlen,
            L=int(p.on_link),
            A=int(p.autonomous),
            validlifetime=p.valid,
            preferredlifetime=p.preferred,
            prefix=str(p.prefix.network_address),
        )
    if advert.rdnss:
        ra /= ICMPv6NDOptRDNSS(lifetime=advert.rdnss_lifetime, dns=[str(a) for a in advert.rdnss])
    if advert.dnssl:
        ra /= ICMPv6NDOptDNSSL(lifetime=advert.dnssl_lifetime, searchlist=list(advert.dnssl))
    return ra


def encode_ra(advert: RouterAdvert) -> bytes:
    """The ICMPv6 payload for a raw ICMPv6 socket (checksum left to the kernel)."""
    return bytes(build_ra(advert))


def ra_packet(advert: RouterAdvert, source, destination=ALL_NODES) -> IPv6:
    """The full IPv6 packet as it appears on the wire (for tests and captures)."""
    return IPv6(src=str(source), dst=str(destination), hlim=255) / build_ra(advert, cksum=None)


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
    mac = None
    if has_slla:
        rs = ICMPv6ND_RS(data)
        opt = rs.getlayer(ICMPv6NDOptSrcLLAddr)
        mac = opt.lladdr if opt is not None else None
    return RouterSolicitation(src, mac)
