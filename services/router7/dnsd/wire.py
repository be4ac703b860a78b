"""Decoding client queries and patching cached answers, on the wire bytes.

Responses are built and upstream answers parsed with dnslib. The query side is
hand-written on purpose: dnslib's DNSRecord.parse costs ~55 µs per query, which
alone would halve the cache-hit rate, while nearly every query a LAN sends has
the one shape decoded here (one question, at most an OPT record). Anything else
is malformed for a forwarder (RFC 9619: QDCOUNT must be 1).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dnslib import QTYPE

OPCODE_QUERY = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5
TYPE_OPT = 41
EDNS_DO = 0x8000
# Our EDNS0 UDP payload size, upstream and to clients: the DNS flag day 2020 value,
# which avoids IP fragmentation on any sane path.
EDNS_PAYLOAD = 1232
MAX_NAME = 255

_HEADER = struct.Struct("!HHHHHH")
_QTAIL = struct.Struct("!HH")
_OPT = struct.Struct(
    "!HHIH"
)  # type, class (= payload size), ttl (= ext rcode/version/flags), rdlen


class Malformed(ValueError):
    """Not a query we can answer. ``msg_id`` is set when a FORMERR reply is possible."""

    def __init__(self, reason: str, msg_id: int | None = None, rcode: int = RCODE_FORMERR):
        super().__init__(reason)
        self.msg_id = msg_id
        self.rcode = rcode


@dataclass(slots=True)
class Query:
    id: int
    flags: int  # the 16-bit header flags word
    qname: bytes  # the question name in wire form, as the client spelled it
    labels: tuple[bytes, ...]  # lower-cased labels, without the root
    qtype: int
    qclass: int
    question: bytes  # the whole question section (name, type, class)
    edns: bool  # the client sent an OPT record
    payload: int  # the largest UDP answer the client takes
    do: bool  # DNSSEC OK

    @property
    def rd(self) -> bool:
        return bool(self.flags & 0x0100)

    @property
    def name(self) -> str:
        """The lower-cased query name in presentation form with the trailing dot."""
        return ".".join(label.decode("ascii", "backslashreplace") for label in self.labels) + "."

    @property
    def key(self) -> tuple:
        """The cache and in-flight key: answers differ by these and nothing else we send."""
        return (self.labels, self.qtype, self.qclass, self.do)

    def __str__(self) -> str:
        return f"{self.name} {QTYPE.get(self.qtype, self.qtype)}"


def parse_query(data: bytes) -> Query:
    """Decode a client query; raise Malformed (never anything else)."""
    data = bytes(data)
    if len(data) < 12:
        raise Malformed("shorter than a header")
    msg_id, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if flags & 0x8000:
        raise Malformed("a response, not a query")  # never answer answers (loops, reflection)
    if (flags >> 11) & 0xF != OPCODE_QUERY:
        raise Malformed("opcode not QUERY", msg_id, RCODE_NOTIMP)
    if qdcount != 1 or ancount or nscount or arcount > 1:
        raise Malformed(f"sections {qdcount}/{ancount}/{nscount}/{arcount}", msg_id)
    pos, labels = 12, []
    while True:
        if pos >= len(data):
            raise Malformed("name runs past the end", msg_id)
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n > 63:
            raise Malformed("compressed or extended label in the question", msg_id)
        labels.append(data[pos + 1 : pos + 1 + n].lower())
        pos += 1 + n
    if pos - 12 > MAX_NAME:
        raise Malformed("name longer than 255 bytes", msg_id)
    if pos + 4 > len(data):
        raise Malformed("question runs past the end", msg_id)
    qtype, qclass = _QTAIL.unpack_from(data, pos)
    qend = pos + 4
    edns, payload, do = False, 512, False
    if arcount:
        # The additional record must be an OPT at the root (RFC 6891).
        if qend + 11 > len(data) or data[qend] != 0:
            raise Malformed("additional record is not an OPT", msg_id)
        rtype, rclass, ttl, rdlen = _OPT.unpack_from(data, qend + 1)
        if rtype != TYPE_OPT or qend + 11 + rdlen != len(data):
            raise Malformed("bad OPT record", msg_id)
        edns, payload, do = True, max(512, rclass), bool(ttl & EDNS_DO)
    elif qend != len(data):
        raise Malformed("trailing bytes", msg_id)
    return Query(
        id=msg_id,
        flags=flags,
        qname=data[12:pos],
        labels=tuple(labels),
        qtype=qtype,
        qclass=qclass,
        question=data[12:qend],
        edns=edns,
        payload=payload,
        do=do,
    )


def opt_record(do: bool) -> bytes:
    """Our OPT pseudo-record: root name, payload size, DO echoed, no options."""
    return b"\x00" + _OPT.pack(TYPE_OPT, EDNS_PAYLOAD, EDNS_DO if do else 0, 0)


def patch_reply(template: bytes, q: Query, with_opt: bool) -> bytes:
    """Fit a packed answer (ID 0, no OPT) to ``q``: its ID, RD bit, question spelling, OPT.

    The template's question is the lower-cased name at offset 12; the client's
    spelling is copied over it (same length), so 0x20-randomising clients match.
    """
    qlen = len(q.question)
    out = bytearray(template)
    out[0:2] = q.id.to_bytes(2, "big")
    out[2] = (out[2] & 0xFE) | (q.flags >> 8 & 0x01)
    if out[12 : 12 + qlen].lower() == q.question.lower():
        out[12 : 12 + qlen] = q.question
    if with_opt:
        arcount = int.from_bytes(out[10:12], "big") + 1
        out[10:12] = arcount.to_bytes(2, "big")
        out += opt_record(q.do)
    return bytes(out)


def error_reply(msg_id: int, flags: int, rcode: int, question: bytes = b"") -> bytes:
    """A header-only (or header + question) error reply."""
    out_flags = 0x8000 | (flags & 0x7900) | 0x0080 | rcode  # QR, opcode+RD echoed, RA
    return _HEADER.pack(msg_id, out_flags, 1 if question else 0, 0, 0, 0) + question


def truncated_reply(answer: bytes, q: Query) -> bytes:
    """An answer too big for the client's UDP limit: header + question with TC set (RFC 1035 4.2.1)."""
    flags = int.from_bytes(answer[2:4], "big") | 0x0200
    out = _HEADER.pack(q.id, flags, 1, 0, 0, 1 if q.edns else 0) + q.question
    return out + opt_record(q.do) if q.edns else out


# --- upstream answers -----------------------------------------------------------
#
# Parsing an upstream reply with dnslib (~135 µs) and packing it again for each
# TTL countdown (~60 µs) dominated a cache miss. A cached answer only ever needs
# its TTLs rewritten, so this walker records where they are and the answer stays
# in wire form. dnslib remains the fallback for the rare layout we do not handle
# (an OPT record that is not the last one).

TYPE_SOA = 6
_RR = struct.Struct("!HHIH")


@dataclass(slots=True)
class Answer:
    data: bytes  # the whole message, without OPT, with ID 0, AA clear, RA set
    flags: int
    labels: tuple[bytes, ...]
    qtype: int
    qclass: int
    ancount: int
    # tuples, not lists: the garbage collector stops tracking tuples of ints, and a
    # full cache would otherwise make each full collection a pause of tens of ms
    ttl_offsets: tuple[int, ...]  # where each RR's TTL sits in ``data``
    ttls: tuple[int, ...]
    soa: tuple[int, int] | None  # (index into ttls, SOA minimum) of the first SOA in authority

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F

    @property
    def tc(self) -> bool:
        return bool(self.flags & 0x0200)


def _skip_name(data: bytes, pos: int, end: int) -> int:
    """The offset after the (possibly compressed) name at ``pos``."""
    for _ in range(128):
        if pos >= end:
            raise Malformed("name runs past the end")
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            if pos + 2 > end:
                raise Malformed("pointer runs past the end")
            return pos + 2
        if n & 0xC0:
            raise Malformed("extended label type")
        pos += 1 + n
    raise Malformed("too many labels")


def parse_answer(data: bytes, msg_id: int | None = None) -> Answer:
    """Decode an upstream response far enough to match, cache and re-time it; raise Malformed."""
    data = bytes(data)
    try:
        return _parse_answer(data, msg_id)
    except (struct.error, IndexError) as e:
        raise Malformed(f"truncated: {e}") from None


def _parse_answer(data: bytes, msg_id: int | None) -> Answer:
    if len(data) < 12:
        raise Malformed("shorter than a header")
    rid, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(data)
    if msg_id is not None and rid != msg_id:
        raise Malformed("another ID")
    if not flags & 0x8000 or qdcount != 1:
        raise Malformed("not a response to one question")
    pos, labels = 12, []
    while True:
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n > 63:
            raise Malformed("compressed question")
        labels.append(data[pos + 1 : pos + 1 + n].lower())
        pos += 1 + n
    qtype, qclass = _QTAIL.unpack_from(data, pos)
    pos += 4
    offsets, ttls, soa, opt = [], [], None, None
    total = ancount + nscount + arcount
    for i in range(total):
        start = pos
        pos = _skip_name(data, pos, len(data))
        rtype, rclass, ttl, rdlen = _RR.unpack_from(data, pos)
        rdata = pos + 10
        end = rdata + rdlen
        if end > len(data):
            raise Malformed("record runs past the end")
        if rtype == TYPE_OPT:
            if i < ancount + nscount or opt is not None:
                raise Malformed("OPT outside the additional section")
            opt = (start, end)
        else:
            if rtype == TYPE_SOA and soa is None and ancount <= i < ancount + nscount:
                p = _skip_name(data, _skip_name(data, rdata, end), end)
                if p + 20 != end:
                    raise Malformed("bad SOA")
                soa = (len(ttls), struct.unpack_from("!I", data, end - 4)[0])
            offsets.append(pos + 4)
            ttls.append(ttl & 0x7FFFFFFF)  # RFC 2181 8: a TTL with the top bit set means 0
        pos = end
    if pos != len(data):
        raise Malformed("trailing bytes")
    if opt is not None:
        if opt[1] != len(data):
            return _parse_answer(_without_opt_by_dnslib(data), msg_id)
        data = data[: opt[0]]
        arcount -= 1
    out = bytearray(data)
    _HEADER.pack_into(out, 0, 0, (flags & ~0x0400) | 0x0080, qdcount, ancount, nscount, arcount)
    return Answer(
        bytes(out), flags, tuple(labels), qtype, qclass, ancount, tuple(offsets), tuple(ttls), soa
    )


def _without_opt_by_dnslib(data: bytes) -> bytes:
    from dnslib import DNSRecord

    try:
        record = DNSRecord.parse(data)
    except Exception:  # dnslib raises several types on garbage
        raise Malformed("unparseable") from None
    record.ar = [rr for rr in record.ar if rr.rtype != TYPE_OPT]
    record.set_header_qa()
    return bytes(record.pack())
