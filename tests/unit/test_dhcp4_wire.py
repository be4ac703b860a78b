"""DHCPv4 encoding and decoding; the decoder is fuzzed: garbage is dropped, never raised."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP

from router7.dhcp4 import wire
from tests.helpers import captures

MAC = bytes.fromhex("d858d7004edf")


def fiber7_ip_packets() -> list[bytes]:
    """OFFER and ACK as IPv4 packets, as the packet socket returns them."""
    return [bytes(p[IP]) for p in captures.frames(captures.DHCP4)]


def test_decodes_the_fiber7_offer_and_ack():
    offer_pkt, ack_pkt = fiber7_ip_packets()
    offer = wire.decode_ipv4(offer_pkt, bytes.fromhex("002414ef72ff"))
    ack = wire.decode_ipv4(ack_pkt)
    assert (offer.msg_type, offer.type_name, ack.type_name) == (wire.OFFER, "offer", "ack")
    assert offer.xid == ack.xid == 0x7708D724 and offer.chaddr == MAC
    assert offer.yiaddr == ack.yiaddr == IPv4Address("85.195.207.62")
    assert offer.server_id == IPv4Address("77.109.140.123")
    assert ack.server_id == IPv4Address("213.144.129.5")
    assert (offer.lease_time, ack.lease_time) == (1800, 1608)
    assert ack.renewal_time is None and ack.rebinding_time is None  # fiber7 sends no T1/T2
    assert ack.subnet_mask == IPv4Address("255.255.255.128")
    assert ack.routers == (IPv4Address("85.195.207.1"),)
    assert ack.dns == (IPv4Address("77.109.128.2"), IPv4Address("213.144.129.20"))
    assert ack.src_ip == IPv4Address("212.51.156.1")
    assert offer.src_mac == bytes.fromhex("002414ef72ff")
    assert wire.decode(ack.raw) == ack.__class__(**{**ack.__dict__, "src_ip": None})
    assert wire.mask_prefixlen(ack.subnet_mask) == 25


def test_other_udp_and_protocols_are_not_for_us():
    other = bytes(IP(src="1.2.3.4", dst="5.6.7.8") / UDP(sport=67, dport=53) / (b"x" * 300))
    with pytest.raises(wire.NotForUs):
        wire.decode_ipv4(other)
    icmp = bytes(IP(src="1.2.3.4", dst="5.6.7.8", proto=1) / (b"\x08\x00" * 20))
    with pytest.raises(wire.NotForUs):
        wire.decode_ipv4(icmp)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[:100], "truncated"),
        (lambda b: b[:236] + b"\x00\x00\x00\x00" + b[240:], "not_dhcp"),
        (lambda b: b"\x01" + b[1:], "not_reply"),  # a BOOTREQUEST
        (lambda b: b[:240] + bytes([53, 1, 99, 255]), "options"),  # no such message type
        (lambda b: b[:240] + bytes([51, 2, 1, 2, 53, 1, 5, 255]), "options"),  # bad length
        (lambda b: b[:240] + bytes([255]), "options"),  # no message type
    ],
)
def test_malformed_bootp_is_rejected_with_a_reason(mutate, reason):
    _, ack = fiber7_ip_packets()
    payload = wire.udp_payload(ack)[0]
    with pytest.raises(wire.MalformedPacket) as e:
        wire.decode(mutate(payload))
    assert e.value.reason == reason


def test_encoded_request_has_the_rfc_2131_fields():
    ident = wire.Identity(MAC, "router7")
    payload = wire.encode(
        wire.REQUEST,
        0x12345678,
        ident,
        secs=3,
        requested_ip=IPv4Address("85.195.207.62"),
        server_id=IPv4Address("77.109.140.123"),
    )
    assert len(payload) >= 300  # RFC 1542 minimum
    b = BOOTP(payload)
    assert (b.op, b.htype, b.hlen, b.xid, b.secs, b.flags) == (1, 1, 6, 0x12345678, 3, 0)
    assert b.chaddr[:6] == MAC and b.ciaddr == "0.0.0.0"
    o = {x[0]: x[1] for x in b[DHCP].options if isinstance(x, tuple)}
    assert o["message-type"] == 3 and o["client_id"] == b"\x01" + MAC
    assert o["requested_addr"] == "85.195.207.62" and o["server_id"] == "77.109.140.123"
    assert o["hostname"] == b"router7"
    pkt = IP(wire.wrap_ipv4(payload, wire.UNSPECIFIED, wire.BROADCAST))
    assert (pkt.src, pkt.dst, pkt[UDP].sport, pkt[UDP].dport) == (
        "0.0.0.0",
        "255.255.255.255",
        68,
        67,
    )
    assert bytes(pkt[UDP].payload) == payload
    IP(bytes(pkt)).show2(dump=True)  # checksums and lengths are consistent


def test_release_carries_no_hostname_or_prl():
    payload = wire.encode(wire.RELEASE, 1, wire.Identity(MAC, "router7"))
    o = {x[0] for x in BOOTP(payload)[DHCP].options if isinstance(x, tuple)}
    assert o == {"message-type", "client_id"}


# --- fuzzing ------------------------------------------------------------------


def _decode_or_drop(packet: bytes) -> None:
    try:
        msg = wire.decode_ipv4(packet)
    except (wire.MalformedPacket, wire.NotForUs):
        return
    assert msg.msg_type in wire.MESSAGE_TYPES and len(msg.chaddr) == 6


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=700))
def test_fuzz_random_bytes_never_escape(data):
    _decode_or_drop(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=240, max_size=700))
def test_fuzz_random_bootp_payloads_never_escape(data):
    payload = data[:236] + wire.MAGIC + data[240:]  # get past the cookie check
    with contextlib.suppress(wire.MalformedPacket):
        wire.decode(payload)


@st.composite
def mutated_fiber7(draw):
    packets = fiber7_ip_packets()
    pkt = bytearray(packets[draw(st.integers(0, 1))])
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        pos = draw(st.integers(0, max(0, len(pkt) - 1)))
        if op == "flip" and pkt:
            pkt[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del pkt[pos:]
        elif op == "insert":
            pkt[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del pkt[pos : pos + draw(st.integers(1, 8))]
    return bytes(pkt)


def _counted() -> float:
    from router7.dhcp4 import metrics

    return sum(
        s.value
        for counter in (metrics.PACKETS_RECEIVED, metrics.PACKETS_DROPPED)
        for family in counter.collect()
        for s in family.samples
        if s.name.endswith("_total")
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_fiber7())
def test_fuzz_mutated_fiber7_packets_are_decoded_or_dropped_and_counted(packet):
    _decode_or_drop(packet)
    # Through the daemon's edge: every packet is counted once, as received or as dropped.
    from router7.dhcp4.service import Dhcp4Client

    client = Dhcp4Client.__new__(Dhcp4Client)
    client.core = None
    before = _counted()
    client._packet(packet, b"\x00" * 6)
    assert _counted() == before + 1


def test_mutated_options_region_is_dropped_and_counted_by_the_service_edge():
    """The daemon's packet handler counts what the decoder rejects."""
    from router7.dhcp4.service import Dhcp4Client

    _, ack = fiber7_ip_packets()
    payload = wire.udp_payload(ack)[0][:240] + bytes([53, 1, 99, 255])
    bad = bytes(IP(src="192.0.2.1", dst="192.0.2.10") / UDP(sport=67, dport=68) / payload)
    before = REGISTRY.get_sample_value("dhcp4_packets_dropped_total", {"reason": "options"}) or 0.0
    client = Dhcp4Client.__new__(Dhcp4Client)
    client.core = None
    client._packet(bad, b"\x00" * 6)  # must not raise
    after = REGISTRY.get_sample_value("dhcp4_packets_dropped_total", {"reason": "options"})
    assert after == before + 1


# --- the small codec agrees with scapy ------------------------------------------


def test_encoded_messages_are_byte_for_byte_what_scapy_builds():
    """wire.py's own codec (no scapy in the daemons) writes what scapy's layers wrote."""
    ident = wire.Identity(MAC, "router7")
    for msg_type, kw in (
        (wire.DISCOVER, {}),
        (
            wire.REQUEST,
            {"requested_ip": IPv4Address("10.0.0.5"), "server_id": IPv4Address("10.0.0.1")},
        ),
        (wire.RELEASE, {"ciaddr": IPv4Address("10.0.0.5"), "server_id": IPv4Address("10.0.0.1")}),
    ):
        opts = [("message-type", msg_type)]
        if "requested_ip" in kw:
            opts.append(("requested_addr", "10.0.0.5"))
        if "server_id" in kw:
            opts.append(("server_id", "10.0.0.1"))
        opts.append(("client_id", b"\x01" + MAC))
        if msg_type != wire.RELEASE:
            opts += [("hostname", b"router7"), ("param_req_list", wire.PARAMETER_REQUEST_LIST)]
            opts.append(("max_dhcp_size", 1500))
        ciaddr = str(kw.get("ciaddr", "0.0.0.0"))
        ref = bytes(
            BOOTP(op=1, htype=1, hlen=6, xid=7, secs=2, flags=0, ciaddr=ciaddr, chaddr=MAC)
            / DHCP(options=[*opts, "end"])
        )
        ref += b"\x00" * max(0, wire.MIN_BOOTP_LEN - len(ref))
        assert wire.encode(msg_type, 7, ident, secs=2, **kw) == ref
    payload = wire.encode(wire.DISCOVER, 7, ident)
    for src, dst in (("0.0.0.0", "255.255.255.255"), ("10.0.0.5", "10.0.0.1")):
        ref = bytes(IP(src=src, dst=dst, ttl=64, id=0) / UDP(sport=68, dport=67) / payload)
        assert wire.wrap_ipv4(payload, IPv4Address(src), IPv4Address(dst)) == ref


def test_decodes_every_option_scapy_writes():
    reply = BOOTP(op=2, xid=9, yiaddr="10.0.0.5", chaddr=MAC) / DHCP(
        options=[
            ("message-type", "ack"),
            ("server_id", "10.0.0.1"),
            ("lease_time", 3600),
            ("renewal_time", 1800),
            ("rebinding_time", 3000),
            ("subnet_mask", "255.255.255.0"),
            ("router", "10.0.0.1", "10.0.0.2"),
            ("name_server", "10.0.0.53"),
            ("domain", b"lan.example"),
            ("broadcast_address", "10.0.0.255"),
            ("interface-mtu", 1492),
            ("error_message", b"fine"),
            "end",
        ]
    )
    msg = wire.decode(bytes(reply))
    assert (msg.msg_type, msg.xid, msg.chaddr, msg.yiaddr) == (
        wire.ACK,
        9,
        MAC,
        IPv4Address("10.0.0.5"),
    )
    assert (msg.lease_time, msg.renewal_time, msg.rebinding_time, msg.mtu) == (
        3600,
        1800,
        3000,
        1492,
    )
    assert msg.routers == (IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2"))
    assert msg.dns == (IPv4Address("10.0.0.53"),) and msg.domain == "lan.example"
    assert (msg.subnet_mask, msg.broadcast) == (
        IPv4Address("255.255.255.0"),
        IPv4Address("10.0.0.255"),
    )
    assert msg.server_id == IPv4Address("10.0.0.1") and msg.message == "fine"
