"""dnsd's query decoder: what it accepts, what it rejects, and fuzzing (nothing escapes)."""

import contextlib
import struct

import pytest
from dnslib import EDNS0, QTYPE, RR, SOA, A, DNSHeader, DNSQuestion, DNSRecord, EDNSOption
from hypothesis import given, settings
from hypothesis import strategies as st

from router7.dnsd.wire import (
    RCODE_FORMERR,
    RCODE_NOTIMP,
    Malformed,
    error_reply,
    parse_answer,
    parse_query,
    truncated_reply,
)


def packed(name="www.Example.test", qtype="A", edns=None, do=False, cookie=False):
    # not DNSRecord.question(): it draws the ID from `random`, which hypothesis forbids
    q = DNSRecord(DNSHeader(id=0x1234, rd=1), q=DNSQuestion(name, getattr(QTYPE, qtype)))
    if edns:
        opts = [EDNSOption(10, b"\x01" * 8)] if cookie else []
        q.add_ar(EDNS0(udp_len=edns, flags="do" if do else "", opts=opts))
    return bytes(q.pack())


def test_plain_query():
    q = parse_query(packed())
    assert (q.id, q.labels, q.qtype, q.qclass) == (0x1234, (b"www", b"example", b"test"), 1, 1)
    assert q.name == "www.example.test." and q.rd and not q.edns and q.payload == 512
    assert q.question == packed()[12:]


def test_edns_query_with_options():
    q = parse_query(packed(edns=4096, do=True, cookie=True))
    assert q.edns and q.do and q.payload == 4096
    assert parse_query(packed(edns=100)).payload == 512  # below 512 counts as 512 (RFC 6891)


def test_key_ignores_case_but_not_type_or_do():
    base = parse_query(packed("WWW.example.TEST"))
    assert base.key == parse_query(packed("www.example.test")).key
    assert base.key != parse_query(packed("www.example.test", "AAAA")).key
    assert base.key != parse_query(packed("www.example.test", edns=1232, do=True)).key


def test_root_query():
    q = parse_query(packed(".", "NS"))
    assert q.labels == () and q.name == "."


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x12\x34\x01", "shorter"),
        (packed()[:-2], "past the end"),
        (packed() + b"\x00", "trailing"),
    ],
)
def test_truncated_or_padded_queries_are_malformed(data, reason):
    with pytest.raises(Malformed, match=reason):
        parse_query(data)


def test_responses_are_never_answered():
    data = bytearray(packed())
    data[2] |= 0x80
    with pytest.raises(Malformed) as e:
        parse_query(bytes(data))
    assert e.value.msg_id is None  # no reply at all: no loops between resolvers


def test_other_opcodes_are_notimp():
    data = bytearray(packed())
    data[2] |= 5 << 3  # UPDATE
    with pytest.raises(Malformed) as e:
        parse_query(bytes(data))
    assert (e.value.msg_id, e.value.rcode) == (0x1234, RCODE_NOTIMP)


def test_two_questions_are_formerr():
    data = bytearray(packed())
    data[4:6] = struct.pack("!H", 2)
    with pytest.raises(Malformed) as e:
        parse_query(bytes(data))
    assert e.value.rcode == RCODE_FORMERR and e.value.msg_id == 0x1234


def test_compression_pointer_in_question_is_rejected():
    data = packed()[:12] + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(Malformed, match="compressed"):
        parse_query(data)


def test_error_and_truncated_replies():
    q = parse_query(packed(edns=1232))
    reply = DNSRecord.parse(error_reply(q.id, q.flags, 5, q.question))
    assert reply.header.rcode == 5 and reply.header.qr and reply.header.id == 0x1234
    assert str(reply.q.qname) == "www.Example.test."
    tc = DNSRecord.parse(truncated_reply(b"\x00\x00\x81\x80" + b"\x00" * 8, q))
    assert tc.header.tc and tc.rr == [] and len(tc.ar) == 1


valid_queries = st.builds(
    packed,
    name=st.from_regex(r"[a-zA-Z0-9-]{1,20}(\.[a-zA-Z0-9-]{1,20}){0,3}", fullmatch=True),
    qtype=st.sampled_from(["A", "AAAA", "PTR", "TXT", "ANY"]),
    edns=st.sampled_from([None, 512, 1232, 4096]),
    do=st.booleans(),
)


def decode(data: bytes):
    """The contract: a Query or Malformed, nothing else."""
    try:
        return parse_query(data)
    except Malformed:
        return None


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data):
    decode(data)


@settings(max_examples=500, deadline=None)
@given(valid_queries, st.data())
def test_fuzz_mutated_queries(data, draw):
    mutated = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 6))):
        pos = draw.draw(st.integers(0, len(mutated) - 1))
        mutated[pos] = draw.draw(st.integers(0, 255))
    cut = draw.draw(st.integers(0, len(mutated)))
    q = decode(bytes(mutated[:cut]) if draw.draw(st.booleans()) else bytes(mutated))
    if q is not None:
        assert len(q.question) >= 5 and q.payload >= 512


@settings(max_examples=300, deadline=None)
@given(valid_queries)
def test_valid_queries_roundtrip_through_dnslib(data):
    q = parse_query(data)
    ref = DNSRecord.parse(data)
    assert q.labels == tuple(label.lower() for label in ref.q.qname.label)
    assert (q.qtype, q.qclass) == (ref.q.qtype, ref.q.qclass)


# --- upstream answers ---------------------------------------------------------


def response(name="www.example.test", ttls=(300, 60), opt=True, soa=False, glue=False, rcode=0):
    q = DNSRecord(DNSHeader(id=0x4321, rd=1), q=DNSQuestion(name, QTYPE.A))
    r = q.reply()
    r.header.rcode = rcode
    for i, ttl in enumerate(ttls):
        r.add_answer(RR(name, QTYPE.A, rdata=A(f"203.0.113.{i}"), ttl=ttl))
    if soa:
        r.add_auth(
            RR(
                "example.test",
                QTYPE.SOA,
                rdata=SOA("ns.example.test", "h.example.test", (1, 2, 3, 4, 45)),
                ttl=900,
            )
        )
    if glue:
        r.add_ar(RR("ns.example.test", QTYPE.A, rdata=A("203.0.113.53"), ttl=77))
    if opt:
        r.add_ar(EDNS0(udp_len=1232))
    return bytes(r.pack())


def test_parse_answer_strips_opt_and_finds_ttls():
    a = parse_answer(response(glue=True), 0x4321)
    assert a.labels == (b"www", b"example", b"test") and a.qtype == 1 and a.ancount == 2
    assert a.ttls == (300, 60, 77) and a.soa is None
    parsed = DNSRecord.parse(a.data)
    assert parsed.header.id == 0 and not parsed.header.aa and parsed.header.ra
    assert [rr.rtype for rr in parsed.ar] == [QTYPE.A]  # the OPT is gone, the glue stays
    for offset, ttl in zip(a.ttl_offsets, a.ttls, strict=True):
        assert struct.unpack_from("!I", a.data, offset)[0] == ttl


def test_parse_answer_negative_with_soa():
    a = parse_answer(response(ttls=(), soa=True, rcode=3))
    assert a.rcode == 3 and a.soa == (0, 45) and a.ttls == (900,)


def test_parse_answer_rejects_other_ids_queries_and_garbage():
    with pytest.raises(Malformed):
        parse_answer(response(), 0x1111)
    with pytest.raises(Malformed):
        parse_answer(packed())  # a query, not a response
    with pytest.raises(Malformed):
        parse_answer(response()[:-3])


def test_opt_in_the_middle_falls_back_to_dnslib():
    r = DNSRecord.parse(response(opt=False, glue=True))
    r.ar.insert(0, EDNS0(udp_len=4096))
    a = parse_answer(bytes(r.pack()))
    assert [rr.rtype for rr in DNSRecord.parse(a.data).ar] == [QTYPE.A]
    assert a.ttls == (300, 60, 77)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(0, 2**31 - 1), max_size=5),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_parse_answer_agrees_with_dnslib(ttls, opt, soa, glue):
    data = response(ttls=tuple(ttls), opt=opt, soa=soa, glue=glue)
    a = parse_answer(data)
    ref = DNSRecord.parse(data)
    expected = [rr.ttl for rr in [*ref.rr, *ref.auth, *ref.ar] if rr.rtype != QTYPE.OPT]
    assert list(a.ttls) == expected


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_parse_answer_random_bytes(data):
    with contextlib.suppress(Malformed):
        parse_answer(data)


@settings(max_examples=500, deadline=None)
@given(st.booleans(), st.booleans(), st.data())
def test_fuzz_parse_answer_mutated(soa, glue, draw):
    data = bytearray(response(soa=soa, glue=glue))
    for _ in range(draw.draw(st.integers(1, 6))):
        data[draw.draw(st.integers(0, len(data) - 1))] = draw.draw(st.integers(0, 255))
    try:
        a = parse_answer(bytes(data))
    except Malformed:
        return
    assert len(a.ttl_offsets) == len(a.ttls)
    assert all(o + 4 <= len(a.data) for o in a.ttl_offsets)
