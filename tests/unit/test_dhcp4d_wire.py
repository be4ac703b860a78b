"""The request parser and the reply encoder; hypothesis fuzzing of everything a LAN host can send."""

import contextlib
from ipaddress import IPv4Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from twisted.internet.task import Clock

from router7.dhcp4d import wire
from router7.dhcp4d.config import Config
from router7.dhcp4d.leases import LeaseTable
from router7.dhcp4d.pool import Pool
from router7.dhcp4d.server import Dhcp4Server

HEADER = bytes(
    BOOTP(op=1, xid=7, chaddr=bytes.fromhex("027353000001"))
    / DHCP(options=[("message-type", "discover"), "end"])
)[:240]


def make_server():
    clock = Clock()
    clock.advance(1_700_000_000)
    return Dhcp4Server(clock, LeaseTable(Pool.for_interface("192.168.42.1/28")), Config())


def test_decode_reads_the_fields_the_server_needs():
    data = bytes(
        BOOTP(
            op=1,
            xid=0xDEADBEEF,
            flags=0x8000,
            ciaddr="192.168.42.9",
            chaddr=bytes.fromhex("02735300cafe"),
        )
        / DHCP(
            options=[
                ("message-type", "request"),
                ("requested_addr", "192.168.42.7"),
                ("server_id", "192.168.42.1"),
                ("hostname", b"midna"),
                ("param_req_list", [1, 3, 6]),
                ("vendor_class_id", b"MSFT 5.0"),
                ("client_id", b"\x01\x02"),
                "end",
            ]
        )
    )
    req = wire.decode(data)
    assert (req.msg_type, req.xid, req.mac, req.broadcast) == (
        wire.REQUEST,
        0xDEADBEEF,
        "02:73:53:00:ca:fe",
        True,
    )
    assert req.ciaddr == IPv4Address("192.168.42.9") and req.requested_addr == IPv4Address(
        "192.168.42.7"
    )
    assert req.server_id == IPv4Address("192.168.42.1") and req.hostname == b"midna"
    assert (
        req.param_req_list == [1, 3, 6]
        and req.vendor_class == b"MSFT 5.0"
        and req.client_id == b"\x01\x02"
    )


def test_single_entry_parameter_list():
    data = bytes(
        BOOTP(op=1, chaddr=b"\x02" * 6)
        / DHCP(options=[("message-type", 1), ("param_req_list", 6), "end"])
    )
    assert wire.decode(data).param_req_list == [6]


def test_encoded_reply_is_padded_and_decodable_by_scapy():
    reply = wire.Reply(
        wire.OFFER,
        9,
        b"\x02" * 6,
        yiaddr=IPv4Address("192.168.42.5"),
        options=[(54, IPv4Address("192.168.42.1").packed), (119, b"\x03lan\x00")],
    )
    data = wire.encode(reply, IPv4Address("192.168.42.1"))
    assert len(data) >= 300
    pkt = BOOTP(data)
    assert pkt.op == 2 and pkt.yiaddr == "192.168.42.5" and pkt.xid == 9
    assert pkt[DHCP].options[:3] == [
        ("message-type", 2),
        ("server_id", "192.168.42.1"),
        (119, b"\x03lan\x00"),
    ]


def _check(data: bytes, server: Dhcp4Server) -> None:
    with contextlib.suppress(wire.Malformed):
        wire.decode(data)
    result = server.handle_bytes(data)  # must not raise either
    if result is not None:
        reply, _ = result
        wire.encode(reply, server.server_ip)


_FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    _check(data, make_server())


@_FUZZ
@given(st.binary(max_size=312))
def test_fuzz_options_after_a_valid_header(options):
    _check(HEADER + options, make_server())


_option = st.one_of(
    st.tuples(st.integers(0, 255), st.binary(max_size=20)).map(
        lambda t: bytes([t[0], len(t[1])]) + t[1]
    ),
    st.tuples(st.sampled_from([12, 50, 53, 54, 55, 60, 61]), st.binary(max_size=8)).map(
        lambda t: bytes([t[0], len(t[1])]) + t[1]
    ),
    st.sampled_from(
        [
            b"\x35\x01\x01",
            b"\x35\x01\x03",
            b"\x35\x01\x04",
            b"\x35\x01\x07",
            b"\x35\x01\x08",
            b"\x00",
        ]
    ),
)


@_FUZZ
@given(st.lists(_option, max_size=12), st.binary(max_size=4))
def test_fuzz_well_formed_option_lists(options, tail):
    server = make_server()
    _check(HEADER + b"".join(options) + b"\xff" + tail, server)
    _check(HEADER + b"".join(options) + b"\xff" + tail, server)  # and again, with state


def test_ip_packet_is_byte_for_byte_what_scapy_builds():
    """dhcp4d packs IPv4/UDP itself (no scapy in the daemon); scapy agrees on every byte."""
    from scapy.layers.inet import IP, UDP

    payload = bytes(range(256)) + b"odd"
    src, dst = IPv4Address("192.168.42.1"), IPv4Address("255.255.255.255")
    ref = bytes(IP(src=str(src), dst=str(dst), ttl=64) / UDP(sport=67, dport=68) / payload)
    assert wire.ip_packet(payload, src, dst) == ref


def test_a_truncated_option_ends_the_list_and_keeps_what_came_before():
    pkt = BOOTP(op=1, chaddr=bytes.fromhex("020000000001"), xid=5) / DHCP(
        options=[("message-type", "discover"), ("hostname", b"pc")]
    )
    data = bytes(pkt) + bytes([61, 20, 1, 2])  # no end option; a client id cut short
    req = wire.decode(data)
    assert (req.msg_type, req.hostname, req.client_id) == (wire.DISCOVER, b"pc", None)
