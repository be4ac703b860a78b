"""router7-recover's TFTP: the codec, option negotiation, the transfer state
machine (with retransmission on a fake clock) and a real transfer on loopback."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from router7.recover import tftp


def rrq(name: bytes, mode: bytes = b"octet", **opts: str) -> bytes:
    body = name + b"\0" + mode + b"\0"
    for k, v in opts.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    return struct.pack("!H", tftp.RRQ) + body


def ack(block: int) -> bytes:
    return struct.pack("!HH", tftp.ACK, block & 0xFFFF)


def test_parse_request_with_options():
    req = tftp.parse_request(rrq(b"boot.ipxe", b"OCTET", blksize="1432", TSIZE="0"))
    assert req == tftp.ReadRequest("boot.ipxe", "octet", {"blksize": "1432", "tsize": "0"})


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00", "short"),
        (struct.pack("!H", tftp.WRQ) + b"x\0octet\0", "read-only"),
        (struct.pack("!H", tftp.DATA) + b"x\0octet\0", "no request"),
        (rrq(b"x")[:-1], "NUL-terminated"),
        (rrq(b"x", b"mail"), "not supported"),
        (rrq(b""), "empty"),
        (rrq(b"x") + b"blksize\0", "option without a value"),
        (rrq(b"\xff"), "non-ASCII"),
    ],
)
def test_bad_requests_are_malformed(data, why):
    with pytest.raises(tftp.Malformed, match=why):
        tftp.parse_request(data)


def test_negotiate_caps_blksize_and_answers_tsize():
    accepted, blksize, timeout = tftp.negotiate(
        {"blksize": "65464", "tsize": "0", "timeout": "3", "multicast": ""}, 1234
    )
    assert accepted == {"blksize": "1468", "tsize": "1234", "timeout": "3"}
    assert (blksize, timeout) == (1468, 3.0)
    assert tftp.negotiate({"blksize": "4", "timeout": "0", "tsize": "9"}, 1) == ({}, 512, 2.0)


def run_transfer(content: bytes, opts: dict[str, str]) -> bytes:
    t = tftp.Transfer(tftp.Source(content), opts)
    pkt = t.first()
    got = b""
    if struct.unpack("!H", pkt[:2])[0] == tftp.OACK:
        pkt = t.on_packet(ack(0))
    block = 1
    while pkt is not None:
        opcode, num = struct.unpack("!HH", pkt[:4])
        assert (opcode, num) == (tftp.DATA, block & 0xFFFF)
        got += pkt[4:]
        assert t.on_packet(ack(block - 1)) is None  # a duplicate ACK is never answered
        pkt = t.on_packet(ack(block))
        block += 1
    assert t.done
    return got


@pytest.mark.parametrize("size", [0, 1, 511, 512, 513, 1024, 5000])
def test_transfer_sends_every_byte_and_ends_on_a_short_block(size):
    content = bytes(range(256)) * (size // 256 + 1)
    assert run_transfer(content[:size], {}) == content[:size]


def test_block_numbers_roll_over_past_65535():
    content = bytes(range(256)) * 2050  # 65600 blocks of 8 bytes
    t = tftp.Transfer(tftp.Source(content), {"blksize": "8"})
    t.first()
    t.on_packet(ack(0))
    t.block = 65535  # as if blocks 1..65534 went through
    t.current()
    pkt = t.on_packet(ack(65535))
    assert pkt == tftp.data_packet(0, content[65535 * 8 : 65536 * 8])
    assert pkt[2:4] == b"\x00\x00"
    assert t.on_packet(ack(65535)) is None  # the old block number is now a duplicate
    assert t.on_packet(ack(0))[2:] == b"\x00\x01" + content[65536 * 8 : 65537 * 8]


def test_oack_first_when_options_are_accepted():
    t = tftp.Transfer(tftp.Source(b"abc"), {"tsize": "0"})
    assert t.first() == struct.pack("!H", tftp.OACK) + b"tsize\x003\x00"
    assert t.on_packet(ack(0))[4:] == b"abc"


def test_client_error_ends_the_transfer():
    t = tftp.Transfer(tftp.Source(b"abc" * 1000), {"tsize": "0"})
    t.first()
    assert t.on_packet(tftp.error_packet(0, "just wanted the size")) is None
    assert t.done


class FakeTransport:
    def __init__(self):
        self.sent: list[tuple[bytes, tuple]] = []
        self.stopped = False

    def write(self, data, addr):
        self.sent.append((data, addr))

    def stopListening(self):
        self.stopped = True


def test_retransmits_on_timeout_then_gives_up():
    clock = task.Clock()
    results = []
    peer = ("10.0.0.2", 2000)
    proto = tftp.TransferProtocol(
        tftp.Transfer(tftp.Source(b"hello"), {}), peer, lambda p, ok: results.append(ok), clock
    )
    proto.transport = FakeTransport()
    proto.startProtocol()
    assert len(proto.transport.sent) == 1
    clock.advance(tftp.DEFAULT_TIMEOUT)
    assert len(proto.transport.sent) == 2  # the same block again
    assert proto.transport.sent[0] == proto.transport.sent[1]
    # A stranger (another TID) gets an error and changes nothing.
    proto.datagramReceived(ack(1), ("10.0.0.3", 2000))
    assert proto.transport.sent[-1][1] == ("10.0.0.3", 2000)
    assert results == []
    for _ in range(tftp.MAX_RETRIES + 1):
        clock.advance(tftp.DEFAULT_TIMEOUT)
    assert results == [False] and proto.transport.stopped


def test_completes_and_reports_success():
    clock = task.Clock()
    results = []
    peer = ("10.0.0.2", 2000)
    proto = tftp.TransferProtocol(
        tftp.Transfer(tftp.Source(b"hello"), {}), peer, lambda p, ok: results.append(ok), clock
    )
    proto.transport = FakeTransport()
    proto.startProtocol()
    proto.datagramReceived(ack(1), peer)
    assert results == [True] and not clock.getDelayedCalls()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_request_parser_raises_only_malformed(data):
    try:
        req = tftp.parse_request(data)
    except tftp.Malformed:
        return
    assert req.filename and req.mode in ("octet", "netascii")
    tftp.negotiate(req.options, 100)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["blksize", "tsize", "timeout", "windowsize", "x"]),
        st.text("0123456789-a", max_size=7),
    ),
    st.lists(st.binary(max_size=6), max_size=20),
    st.binary(max_size=3000),
)
def test_fuzz_transfer_survives_any_client_packets(opts, packets, content):
    t = tftp.Transfer(tftp.Source(content), opts)
    t.first()
    for p in packets:
        try:
            reply = t.on_packet(p)
        except tftp.Malformed:
            continue
        if reply is not None:
            assert len(reply) <= 4 + t.blksize
