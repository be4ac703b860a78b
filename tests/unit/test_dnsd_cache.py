"""dnsd's cache: TTLs, countdown, negative caching (RFC 2308), LRU bound."""

from dnslib import QTYPE, RR, SOA, A, DNSRecord
from twisted.internet.task import Clock

from router7.dnsd.cache import MAX_NEGATIVE_TTL, Cache, cache_ttl, make_entry
from router7.dnsd.wire import parse_answer, parse_query, patch_reply


def answer(name="www.example.test", ttls=(300,), rcode=0, soa=None):
    reply = DNSRecord.question(name).reply()
    reply.header.rcode = rcode
    for i, ttl in enumerate(ttls):
        reply.add_answer(RR(name, QTYPE.A, rdata=A(f"203.0.113.{i + 1}"), ttl=ttl))
    if soa is not None:
        soa_ttl, minimum = soa
        rdata = SOA("ns.example.test", "hostmaster.example.test", (1, 3600, 600, 86400, minimum))
        reply.add_auth(RR("example.test", QTYPE.SOA, rdata=rdata, ttl=soa_ttl))
    return reply


def wire(record):
    return parse_answer(bytes(record.pack()))


def test_ttl_honoured_and_counted_down():
    clock = Clock()
    cache = Cache(clock)
    entry = make_entry(wire(answer(ttls=(300, 120))), clock.seconds())
    assert cache.put("k", entry)
    clock.advance(100.5)
    got = cache.get("k")
    assert got is entry
    assert [rr.ttl for rr in DNSRecord.parse(got.render(clock.seconds())).rr] == [200, 20]
    clock.advance(19)
    assert cache.get("k") is not None
    clock.advance(0.5)  # 120 s after storing: the shortest TTL is over
    assert cache.get("k") is None
    assert len(cache) == 0


def test_render_is_reused_within_a_second_and_fresh_after():
    clock = Clock()
    entry = make_entry(wire(answer(ttls=(60,))), clock.seconds())
    first = entry.render(0.2)
    assert entry.render(0.9) is first
    assert DNSRecord.parse(entry.render(1.0)).rr[0].ttl == 59


def test_negative_caching_uses_soa_minimum():
    nx = answer(name="nope.example.test", ttls=(), rcode=3, soa=(3600, 30))
    assert cache_ttl(wire(nx)) == (30, True)
    nodata = answer(ttls=(), soa=(20, 900))
    assert cache_ttl(wire(nodata)) == (
        20,
        True,
    )  # the SOA's own TTL when lower (RFC 2308 section 5)
    assert cache_ttl(wire(answer(ttls=(), rcode=3, soa=(86400, 86400)))) == (MAX_NEGATIVE_TTL, True)
    assert cache_ttl(wire(answer(ttls=(), rcode=3))) == (0, True)  # no SOA: not cacheable

    clock = Clock()
    cache = Cache(clock)
    entry = make_entry(wire(nx), 0)
    assert cache.put("nx", entry)
    clock.advance(10)
    reply = DNSRecord.parse(cache.get("nx").render(clock.seconds()))
    assert reply.header.rcode == 3 and reply.auth[0].ttl == 20  # the negative TTL counts down too
    clock.advance(20)
    assert cache.get("nx") is None


def test_uncacheable_answers():
    servfail = answer(ttls=(), rcode=2)
    assert cache_ttl(wire(servfail)) == (0, False)
    truncated = answer()
    truncated.header.tc = 1
    assert cache_ttl(wire(truncated)) == (0, False)
    cache = Cache(Clock())
    assert not cache.put("zero", make_entry(wire(answer(ttls=(0,))), 0))
    assert len(cache) == 0


def test_size_bound_evicts_least_recently_used():
    clock = Clock()
    cache = Cache(clock, max_entries=3)
    for key in "abc":
        cache.put(key, make_entry(wire(answer()), 0))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", make_entry(wire(answer()), 0))
    assert len(cache) == 3 and cache.evictions == 1
    assert cache.get("b") is None
    assert all(cache.get(key) is not None for key in "acd")


def test_byte_bound_evicts_least_recently_used_and_counts_replacements_once():
    clock = Clock()
    one = make_entry(wire(answer(ttls=(300,) * 10)), clock.seconds())
    size = len(one.answer.data)
    cache = Cache(clock, max_entries=100, max_bytes=3 * size)
    for key in "abc":
        assert cache.put(key, make_entry(wire(answer(ttls=(300,) * 10)), clock.seconds()))
    assert cache.put("a", one)  # a replacement: still three answers' worth
    assert (len(cache), cache.bytes, cache.evictions) == (3, 3 * size, 0)
    assert cache.put("d", make_entry(wire(answer(ttls=(300,) * 10)), clock.seconds()))
    assert cache.get("b") is None and cache.get("a") is one  # b was the least recent
    assert (len(cache), cache.bytes, cache.evictions) == (3, 3 * size, 1)
    huge = make_entry(wire(answer(ttls=(300,) * 40)), clock.seconds())
    assert not cache.put("huge", huge)  # over the bound on its own: not kept, nothing evicted
    assert cache.get("huge") is None and (len(cache), cache.bytes) == (3, 3 * size)
    cache.clear()
    assert cache.bytes == 0


def test_entry_normalised_and_patched_for_the_client():
    upstream = answer(name="WWW.Example.Test")
    upstream.header.id = 4242
    upstream.header.aa = 1
    entry = make_entry(wire(upstream), 0)
    template = entry.render(0)
    assert template[:2] == b"\x00\x00"
    query = DNSRecord.question("wWw.eXample.test")
    query.header.id = 777
    q = parse_query(query.pack())
    reply = DNSRecord.parse(patch_reply(template, q, with_opt=True))
    assert reply.header.id == 777 and not reply.header.aa and reply.header.ra
    assert str(reply.q.qname) == "wWw.eXample.test."  # the client's 0x20 spelling comes back
    assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]
