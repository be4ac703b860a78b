"""RA encoding checked by parsing it back with scapy; RS validation and fuzzing."""

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6NDOptDNSSL,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    in6_chksum,
)

from router7.radvd.plan import PrefixInfo, RouterAdvert
from router7.radvd.wire import (
    MalformedPacket,
    RouterSolicitation,
    decode_rs,
    encode_ra,
    ra_packet,
)

LL = ipaddress.IPv6Address("fe80::73:53ff:fe00:cafe")
ADVERT = RouterAdvert(
    router_lifetime=1800,
    prefixes=(
        PrefixInfo(ipaddress.IPv6Network("2a02:168:4a00::/64"), 2700, 5400),
        PrefixInfo(ipaddress.IPv6Network("2a02:168:4b00::/64"), 0, 1234),
    ),
    rdnss=(LL,),
    rdnss_lifetime=1800,
    dnssl=("lan",),
    dnssl_lifetime=1800,
    mtu=1492,
    source_mac="02:73:53:00:ca:fe",
)
RS_HEADER = bytes([133, 0, 0, 0, 0, 0, 0, 0])
SLLA = bytes([1, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55])


def test_encoded_ra_parses_back_with_exact_fields():
    pkt = IPv6(bytes(ra_packet(ADVERT, LL)))
    assert (pkt.src, pkt.dst, pkt.hlim) == (str(LL), "ff02::1", 255)
    ra = pkt[ICMPv6ND_RA]
    assert (ra.chlim, ra.M, ra.O, ra.prf, ra.routerlifetime) == (64, 0, 0, 0, 1800)
    assert (ra.reachabletime, ra.retranstimer) == (0, 0)
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == "02:73:53:00:ca:fe"
    assert pkt[ICMPv6NDOptMTU].mtu == 1492
    pios = []
    opt = pkt[ICMPv6NDOptPrefixInfo]
    while opt is not None and isinstance(opt, ICMPv6NDOptPrefixInfo):
        pios.append(
            (opt.prefix, opt.prefixlen, opt.L, opt.A, opt.preferredlifetime, opt.validlifetime)
        )
        opt = opt.payload if isinstance(opt.payload, ICMPv6NDOptPrefixInfo) else None
    assert pios == [
        ("2a02:168:4a00::", 64, 1, 1, 2700, 5400),
        ("2a02:168:4b00::", 64, 1, 1, 0, 1234),
    ]
    assert pkt[ICMPv6NDOptRDNSS].dns == [str(LL)]
    assert pkt[ICMPv6NDOptRDNSS].lifetime == 1800
    assert pkt[ICMPv6NDOptDNSSL].searchlist == ["lan."]
    assert pkt[ICMPv6NDOptDNSSL].lifetime == 1800


def test_ra_packet_has_a_valid_checksum():
    raw = bytes(ra_packet(ADVERT, LL, ipaddress.IPv6Address("fe80::1")))
    pkt = IPv6(raw)
    icmp = bytes(pkt[ICMPv6ND_RA])
    zeroed = icmp[:2] + b"\0\0" + icmp[4:]
    assert pkt[ICMPv6ND_RA].cksum == in6_chksum(58, pkt, zeroed)


def test_socket_payload_is_the_bare_icmpv6_message():
    data = encode_ra(ADVERT)
    assert data[:2] == bytes([134, 0])
    assert data[2:4] == b"\0\0"  # the kernel fills in the checksum
    assert struct.unpack("!H", data[6:8])[0] == 1800
    # SLLA 8 + MTU 8 + 2 PIO 64 + RDNSS 24 + DNSSL 16 after the 16-byte header
    assert len(data) == 16 + 8 + 8 + 64 + 24 + 16


def test_no_options_without_content():
    bare = RouterAdvert(0, (), (), 0, (), 0, 1500, "02:00:00:00:00:01")
    ra = ICMPv6ND_RA(encode_ra(bare))
    assert ra.routerlifetime == 0
    assert ICMPv6NDOptPrefixInfo not in ra and ICMPv6NDOptRDNSS not in ra
    assert ICMPv6NDOptDNSSL not in ra


def test_valid_router_solicitations():
    assert decode_rs(RS_HEADER, "fe80::1%lan0", 255) == RouterSolicitation(
        ipaddress.IPv6Address("fe80::1"), None
    )
    assert decode_rs(RS_HEADER + SLLA, "fe80::2", 255).source_mac == "02:11:22:33:44:55"
    assert decode_rs(RS_HEADER, "::", 255).source.is_unspecified
    unknown_option = bytes([200, 1, 0, 0, 0, 0, 0, 0])
    assert decode_rs(RS_HEADER + unknown_option, "fe80::3", 255).source_mac is None


@pytest.mark.parametrize(
    "data, source, hop_limit, reason",
    [
        (RS_HEADER, "fe80::1", 254, "hop limit"),
        (RS_HEADER, "fe80::1", None, "hop limit"),
        (RS_HEADER[:7], "fe80::1", 255, "shorter"),
        (bytes([133, 1]) + RS_HEADER[2:], "fe80::1", 255, "code"),
        (bytes([134]) + RS_HEADER[1:], "fe80::1", 255, "type"),
        (RS_HEADER + bytes([1, 0, 0, 0, 0, 0, 0, 0]), "fe80::1", 255, "length 0"),
        (RS_HEADER + bytes([1, 2, 0, 0, 0, 0, 0, 0]), "fe80::1", 255, "past the end"),
        (RS_HEADER + bytes([1]), "fe80::1", 255, "truncated"),
        (RS_HEADER + SLLA, "::", 255, "unspecified"),
        (RS_HEADER, "not-an-address", 255, "source"),
    ],
)
def test_invalid_router_solicitations_are_rejected(data, source, hop_limit, reason):
    with pytest.raises(MalformedPacket, match=reason):
        decode_rs(data, source, hop_limit)


@settings(max_examples=2000)
@given(
    data=st.binary(max_size=200),
    source=st.sampled_from(["fe80::1", "::", "2001:db8::1", "fe80::1%lan0", "", "zz"]),
    hop_limit=st.one_of(st.none(), st.integers(-1, 300)),
)
def test_fuzz_random_bytes_never_escape(data, source, hop_limit):
    try:
        rs = decode_rs(data, source, hop_limit)
    except MalformedPacket:
        return
    assert isinstance(rs, RouterSolicitation)


@settings(max_examples=500)
@given(
    options=st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 4), st.binary(max_size=40)), max_size=6
    ),
    source=st.sampled_from(["fe80::1", "::"]),
)
def test_fuzz_option_lists_never_escape(options, source):
    body = b"".join(bytes([kind, length]) + payload for kind, length, payload in options)
    try:
        rs = decode_rs(RS_HEADER + body, source, 255)
    except MalformedPacket:
        return
    assert rs.source == ipaddress.IPv6Address(source)


def _scapy_ra(advert: RouterAdvert) -> bytes:
    """The RA as scapy's layers build it (what radvd sent before packing it itself)."""
    ra = ICMPv6ND_RA(cksum=0, chlim=advert.hop_limit, M=0, O=0, prf=0,
                     routerlifetime=advert.router_lifetime, reachabletime=0, retranstimer=0)  # fmt: skip
    ra /= ICMPv6NDOptSrcLLAddr(lladdr=advert.source_mac)
    ra /= ICMPv6NDOptMTU(mtu=advert.mtu)
    for p in advert.prefixes:
        ra /= ICMPv6NDOptPrefixInfo(
            prefixlen=p.prefix.prefixlen, L=int(p.on_link), A=int(p.autonomous),
            validlifetime=p.valid, preferredlifetime=p.preferred,
            prefix=str(p.prefix.network_address),
        )  # fmt: skip
    if advert.rdnss:
        ra /= ICMPv6NDOptRDNSS(lifetime=advert.rdnss_lifetime, dns=[str(a) for a in advert.rdnss])
    if advert.dnssl:
        ra /= ICMPv6NDOptDNSSL(lifetime=advert.dnssl_lifetime, searchlist=list(advert.dnssl))
    return bytes(ra)


@pytest.mark.parametrize(
    "advert",
    [
        ADVERT,
        RouterAdvert(
            router_lifetime=0,
            prefixes=(),
            rdnss=(),
            rdnss_lifetime=0,
            dnssl=(),
            dnssl_lifetime=0,
            mtu=1500,
            source_mac="02:00:00:00:00:01",
        ),  # fmt: skip
        RouterAdvert(
            router_lifetime=1800,
            prefixes=(PrefixInfo(ipaddress.IPv6Network("2001:db8:1:2::/64"), 10, 20),),
            rdnss=(LL, ipaddress.IPv6Address("2001:db8::53")),
            rdnss_lifetime=600,
            dnssl=("lan", "home.example.org"),
            dnssl_lifetime=600,
            mtu=1280,
            source_mac="02:aa:bb:cc:dd:ee",
        ),  # fmt: skip
    ],
)
def test_encoded_ra_is_byte_for_byte_what_scapy_builds(advert):
    assert encode_ra(advert) == _scapy_ra(advert)
