"""dnsd's query path and forwarder without sockets, on Twisted's MemoryReactorClock."""

import ipaddress
from datetime import UTC, datetime

import pytest
from dnslib import EDNS0, QTYPE, RR, SOA, TXT, A, DNSHeader, DNSQuestion, DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import MemoryReactorClock

from router7.dnsd.cache import Cache
from router7.dnsd.forwarder import Forwarder
from router7.dnsd.local import Lease, LocalNames
from router7.dnsd.metrics import Metrics
from router7.dnsd.server import DnsServer, SourcePolicy, lan_networks
from router7.dnsd.upstreams import Upstream, UpstreamPolicy
from router7.runtime.listeners import bind_addresses
from tests.helpers import netlink

UP1, UP2 = Upstream("198.51.100.53"), Upstream("198.51.100.54")
LAN_CLIENT = "192.168.42.23"


class FakeUdp:
    """What Forwarder.open_udp returns: records what was sent, tests deliver replies."""

    def __init__(self, host, port, on_datagram, on_error):
        self.peer = (host, port)
        self.on_datagram, self.on_error = on_datagram, on_error
        self.sent, self.closed = [], False

    def write(self, data):
        self.sent.append(bytes(data))

    def close(self):
        self.closed = True


class FakeReactor(MemoryReactorClock):
    """Twisted's fake reactor plus the forwarder's UDP seam (Forwarder(open_udp=...))."""

    def __init__(self):
        super().__init__()
        self.ports: list[FakeUdp] = []

    def open_udp(self, *args):
        self.ports.append(FakeUdp(*args))
        return self.ports[-1]


def query(name="www.example.test", qtype="A", msg_id=0x4242, edns=None):
    q = DNSRecord(DNSHeader(id=msg_id, rd=1), q=DNSQuestion(name, getattr(QTYPE, qtype)))
    if edns:
        q.add_ar(EDNS0(udp_len=edns))
    return bytes(q.pack())


def upstream_reply(sent: bytes, *rdatas, rcode=0, ttl=300, tc=False, soa=False):
    request = DNSRecord.parse(sent)
    reply = request.reply()
    reply.ar = []
    reply.header.rcode = rcode
    reply.header.tc = int(tc)
    for rdata in rdatas:
        reply.add_answer(
            RR(request.q.qname, getattr(QTYPE, type(rdata).__name__), rdata=rdata, ttl=ttl)
        )
    if soa:
        reply.add_auth(
            RR("example.test", QTYPE.SOA, rdata=SOA("ns.", "h.", (1, 2, 3, 4, 30)), ttl=300)
        )
    return bytes(reply.pack())


@pytest.fixture
def env():
    reactor = FakeReactor()
    metrics = Metrics()
    policy = UpstreamPolicy([UP1, UP2])
    local = LocalNames("router7", [ipaddress.ip_address("192.168.42.1")],
                       [Lease("midna", ipaddress.ip_address(LAN_CLIENT), None)], datetime.now(UTC))  # fmt: skip
    server = DnsServer(
        reactor,
        local,
        Cache(reactor, 100),
        Forwarder(reactor, policy, metrics, reactor.open_udp),
        metrics,
        SourcePolicy(
            [ipaddress.ip_network("192.168.42.0/24"), ipaddress.ip_network("127.0.0.0/8")]
        ),
    )
    return reactor, server, metrics, policy


def result_of(reply):
    """The bytes of a reply that may be a fired Deferred."""
    if isinstance(reply, bytes | None):
        return reply
    out = []
    reply.addCallback(out.append)
    assert out, "reply not ready"
    return out[0]


def value(counter) -> float:
    return counter.value if hasattr(counter, "value") else counter._value.get()


def test_local_answer_needs_no_upstream(env):
    reactor, server, metrics, _ = env
    reply = DNSRecord.parse(server.handle(query("midna.lan"), LAN_CLIENT))
    assert [str(rr.rdata) for rr in reply.rr] == [LAN_CLIENT]
    assert reactor.ports == [] and value(metrics.local) == 1


def test_forward_then_cache_hit_with_ttl_countdown(env):
    reactor, server, metrics, policy = env
    d = server.handle(query(msg_id=1), LAN_CLIENT)
    assert len(reactor.ports) == 1
    port = reactor.ports[0]
    assert port.peer == ("198.51.100.53", 53)
    sent = DNSRecord.parse(port.sent[0])
    assert sent.header.rd and [rr.rtype for rr in sent.ar] == [QTYPE.OPT]  # our EDNS0 upstream
    reactor.advance(0.004)
    port.on_datagram(upstream_reply(port.sent[0], A("203.0.113.10")))
    first = DNSRecord.parse(result_of(d))
    assert first.header.id == 1 and str(first.rr[0].rdata) == "203.0.113.10"
    assert not first.ar  # the client sent no OPT, so it gets none
    assert port.closed and policy.srtt(UP1) == pytest.approx(0.004)

    reactor.advance(42)
    second = DNSRecord.parse(server.handle(query(msg_id=2), LAN_CLIENT))
    assert second.header.id == 2 and second.rr[0].ttl == 300 - 42
    assert len(reactor.ports) == 1  # no second upstream query
    assert value(metrics.cache_hits) == 1 and value(metrics.cache_misses) == 1


def test_repeated_identical_queries_take_the_hot_path(env):
    reactor, server, metrics, _ = env
    d = server.handle(query("midna2.example.test", msg_id=1), LAN_CLIENT)
    port = reactor.ports[0]
    port.on_datagram(upstream_reply(port.sent[0], A("203.0.113.10"), ttl=10))
    result_of(d)
    for msg_id in (2, 3):  # the second fills the memo, the third uses it
        reply = DNSRecord.parse(
            server.handle(query("midna2.example.test", msg_id=msg_id), LAN_CLIENT)
        )
        assert reply.header.id == msg_id and reply.rr[0].ttl == 10
    reactor.advance(3)
    assert (
        DNSRecord.parse(server.handle(query("midna2.example.test", msg_id=4), LAN_CLIENT)).rr[0].ttl
        == 7
    )
    assert value(metrics.cache_hits) == 3
    # a stranger gets no answer from the memo either
    refused = DNSRecord.parse(server.handle(query("midna2.example.test", msg_id=5), "203.0.113.9"))
    assert refused.header.rcode == 5
    reactor.advance(7)  # expired: forwarded again
    assert not isinstance(server.handle(query("midna2.example.test", msg_id=6), LAN_CLIENT), bytes)


def test_new_local_name_wins_over_a_memoised_cache_hit(env):
    reactor, server, _, _ = env
    d = server.handle(query("zelda", msg_id=1), LAN_CLIENT)
    port = reactor.ports[0]
    port.on_datagram(upstream_reply(port.sent[0], A("198.18.0.1")))
    result_of(d)
    for msg_id in (2, 3):
        assert (
            str(
                DNSRecord.parse(server.handle(query("zelda", msg_id=msg_id), LAN_CLIENT))
                .rr[0]
                .rdata
            )
            == "198.18.0.1"
        )
    server.local = LocalNames("router7", [], [Lease("zelda", ipaddress.ip_address("192.168.42.77"), None)],
                              datetime.now(UTC))  # fmt: skip
    assert (
        str(DNSRecord.parse(server.handle(query("zelda", msg_id=4), LAN_CLIENT)).rr[0].rdata)
        == "192.168.42.77"
    )


def test_forged_or_late_replies_are_ignored(env):
    reactor, server, _, _ = env
    d = server.handle(query(), LAN_CLIENT)
    port = reactor.ports[0]
    good = upstream_reply(port.sent[0], A("203.0.113.10"))
    wrong_id = bytes([good[0] ^ 0xFF]) + good[1:]
    port.on_datagram(wrong_id)
    port.on_datagram(upstream_reply(query("evil.example.test", msg_id=int.from_bytes(good[:2], "big")),
                                               A("6.6.6.6")))  # fmt: skip
    port.on_datagram(b"\x00garbage")
    assert not d.called
    port.on_datagram(good)
    assert str(DNSRecord.parse(result_of(d)).rr[0].rdata) == "203.0.113.10"


def test_timeout_fails_over_to_the_next_upstream(env):
    reactor, server, metrics, policy = env
    d = server.handle(query(), LAN_CLIENT)
    reactor.advance(1.0)  # the first upstream's initial timeout
    assert len(reactor.ports) == 2
    first, second = reactor.ports
    assert second.peer == ("198.51.100.54", 53)
    assert not first.closed  # still listening: a late answer would be taken
    second.on_datagram(upstream_reply(second.sent[0], A("203.0.113.10")))
    assert DNSRecord.parse(result_of(d)).rr
    assert first.closed and second.closed
    assert policy.order()[0] == UP2
    assert value(metrics.upstream_failures.labels("198.51.100.53:53", "timeout")) == 1


def test_late_answer_from_a_timed_out_upstream_wins(env):
    reactor, server, _, _ = env
    d = server.handle(query(), LAN_CLIENT)
    reactor.advance(1.0)
    first, second = reactor.ports
    first.on_datagram(upstream_reply(first.sent[0], A("203.0.113.10")))
    assert str(DNSRecord.parse(result_of(d)).rr[0].rdata) == "203.0.113.10"
    assert second.closed


def test_late_truncated_answer_still_goes_to_tcp(env):
    reactor, server, _, _ = env
    d = server.handle(query("big.example.test", "TXT"), LAN_CLIENT)
    reactor.advance(1.0)  # the first server timed out, the second is asked
    first = reactor.ports[0]
    first.on_datagram(upstream_reply(first.sent[0], tc=True))
    ((host, _, factory, *_),) = reactor.tcpClients
    assert host == "198.51.100.53"
    proto = factory.buildProtocol(None)
    proto.stringReceived(upstream_reply(first.sent[0], TXT("late but whole")))
    assert DNSRecord.parse(result_of(d)).rr[0].rdata.data == [b"late but whole"]
    reactor.advance(10)  # no timer left behind fires into a finished query


def test_slow_single_upstream_answer_is_taken_within_the_budget(env):
    reactor, server, _, policy = env
    policy.set_upstreams([UP1])
    policy.success(UP1, 0.001)  # usually fast: 0.2 s timeout
    d = server.handle(query("slow.example.test"), LAN_CLIENT)
    reactor.advance(2.2)  # timed out after 0.2 s; round two asked again and waits
    first, second = reactor.ports
    assert not d.called
    first.on_datagram(upstream_reply(first.sent[0], A("203.0.113.77")))  # 2.2 s late
    assert str(DNSRecord.parse(result_of(d)).rr[0].rdata) == "203.0.113.77"
    assert first.closed and second.closed


def test_two_rounds_then_servfail(env):
    reactor, server, metrics, _ = env
    d = server.handle(query(), LAN_CLIENT)
    first = reactor.ports[0]
    first.on_datagram(upstream_reply(first.sent[0], rcode=2))
    reactor.ports[1].on_error("unreachable")
    assert [p.peer[1] for p in reactor.ports] == [53, 53, 53]  # round two started
    assert not d.called
    third = reactor.ports[2]  # round two, first server again: REFUSED this time
    third.on_datagram(upstream_reply(third.sent[0], rcode=5))
    reactor.advance(3.5)  # the fourth attempt timed out, but may still answer
    assert not d.called
    reactor.advance(0.5)  # the 4 s budget is spent
    reply = DNSRecord.parse(result_of(d))
    # The only answer anyone gave was UP1's REFUSED (an answer about the zone): it is passed on.
    assert reply.header.rcode == 5
    assert len(reactor.ports) == 4 and all(p.closed for p in reactor.ports)
    assert value(metrics.servfail) == 0 and value(metrics.upstream_refused) == 1


def test_two_rounds_of_silence_then_servfail(env):
    reactor, server, metrics, _ = env
    d = server.handle(query(), LAN_CLIENT)
    reactor.advance(4.0)
    reply = DNSRecord.parse(result_of(d))
    assert reply.header.rcode == 2  # nobody answered: SERVFAIL to the client
    assert value(metrics.servfail) == 1


def test_refused_asks_each_server_once_without_penalty_then_passes_it_on(env):
    """Issue 16, case 2: no amplification, no SRTT penalty for a REFUSED."""
    reactor, server, metrics, policy = env
    d = server.handle(query("refused.example.test"), LAN_CLIENT)
    reactor.advance(0.01)
    reactor.ports[0].on_datagram(upstream_reply(reactor.ports[0].sent[0], rcode=5))
    assert len(reactor.ports) == 2
    reactor.advance(0.01)
    reactor.ports[1].on_datagram(upstream_reply(reactor.ports[1].sent[0], rcode=5))
    reply = DNSRecord.parse(result_of(d))
    assert reply.header.rcode == 5 and len(reactor.ports) == 2  # one query per upstream
    assert policy.srtt(UP1) < 0.1 and policy.srtt(UP2) < 0.1  # answers, not slowness
    assert value(metrics.servfail) == 0 and value(metrics.upstream_refused) == 2
    # Not cached: the next question for the zone is asked again.
    server.handle(query("refused.example.test"), LAN_CLIENT)
    assert len(reactor.ports) == 3


def test_questions_beyond_the_inflight_bound_are_shed_and_cached_names_still_answered(env):
    """Issue 16, case 1: a bounded number of questions (and sockets) wait upstream."""
    reactor, server, metrics, _ = env
    server.forwarder.max_inflight = 10
    first = server.handle(query("cached.example.test"), LAN_CLIENT)
    reactor.ports[0].on_datagram(upstream_reply(reactor.ports[0].sent[0], A("203.0.113.7")))
    assert DNSRecord.parse(result_of(first)).a.rdata == A("203.0.113.7")
    pending = [server.handle(query(f"q{i}.slow.test"), LAN_CLIENT) for i in range(50)]
    assert len(server.forwarder.inflight) == 10 and len(reactor.ports) == 11
    shed = [DNSRecord.parse(result_of(d)) for d in pending[10:]]
    assert all(r.header.rcode == 2 for r in shed) and value(metrics.shed) == 40
    cached = DNSRecord.parse(result_of(server.handle(query("cached.example.test"), LAN_CLIENT)))
    assert cached.a.rdata == A("203.0.113.7")
    reactor.advance(4.0)  # the budget of the waiting ones ends: room again
    assert not server.forwarder.inflight
    server.handle(query("later.slow.test"), LAN_CLIENT)
    assert len(server.forwarder.inflight) == 1


def test_no_upstreams_servfail(env):
    _, server, metrics, policy = env
    policy.set_upstreams([])
    reply = DNSRecord.parse(result_of(server.handle(query(), LAN_CLIENT)))
    assert reply.header.rcode == 2 and value(metrics.servfail) == 1


def test_identical_queries_in_flight_share_one_upstream_query(env):
    reactor, server, metrics, _ = env
    d1 = server.handle(query(msg_id=1), LAN_CLIENT)
    d2 = server.handle(query("WWW.example.test", msg_id=2), "192.168.42.99")
    assert len(reactor.ports) == 1 and value(metrics.deduplicated) == 1
    port = reactor.ports[0]
    port.on_datagram(upstream_reply(port.sent[0], A("203.0.113.10")))
    r1, r2 = DNSRecord.parse(result_of(d1)), DNSRecord.parse(result_of(d2))
    assert (r1.header.id, r2.header.id) == (1, 2)
    assert str(r2.q.qname) == "WWW.example.test."


def test_truncated_upstream_answer_is_retried_over_tcp(env):
    reactor, server, metrics, _ = env
    d = server.handle(query("big.example.test", "TXT", edns=4096), LAN_CLIENT)
    port = reactor.ports[0]
    port.on_datagram(upstream_reply(port.sent[0], tc=True))
    assert port.closed
    ((host, tcp_port, factory, *_),) = reactor.tcpClients
    assert (host, tcp_port) == ("198.51.100.53", 53)
    proto = factory.buildProtocol(None)
    big = [TXT("x" * 200) for _ in range(10)]
    proto.stringReceived(upstream_reply(port.sent[0], *big))
    reply = DNSRecord.parse(result_of(d))
    assert len(reply.rr) == 10 and value(metrics.upstream_tcp) == 1
    # the same answer to a client that only takes 512 bytes over UDP: TC, so it retries over TCP
    small = DNSRecord.parse(server.handle(query("big.example.test", "TXT"), LAN_CLIENT))
    assert small.header.tc and small.rr == []
    over_tcp = DNSRecord.parse(
        server.handle(query("big.example.test", "TXT"), LAN_CLIENT, tcp=True)
    )
    assert len(over_tcp.rr) == 10


def test_negative_answer_cached(env):
    reactor, server, _, _ = env
    d = server.handle(query("nope.example.test"), LAN_CLIENT)
    port = reactor.ports[0]
    port.on_datagram(upstream_reply(port.sent[0], rcode=3, soa=True))
    assert DNSRecord.parse(result_of(d)).header.rcode == 3
    reactor.advance(29)
    assert DNSRecord.parse(server.handle(query("nope.example.test"), LAN_CLIENT)).header.rcode == 3
    reactor.advance(1)
    assert not isinstance(
        server.handle(query("nope.example.test"), LAN_CLIENT), bytes
    )  # expired: forwarded


def test_non_lan_sources_are_refused(env):
    reactor, server, metrics, _ = env
    reply = DNSRecord.parse(server.handle(query(), "198.51.100.1"))
    assert reply.header.rcode == 5 and reactor.ports == []
    assert value(metrics.refused) == 1
    # link-local sources only on sockets bound to a link-local address (tied to lan0)
    assert DNSRecord.parse(server.handle(query("midna.lan"), "fe80::1")).header.rcode == 5
    assert DNSRecord.parse(server.handle(query("midna.lan"), "fe80::1", link_local_ok=True)).rr


def test_malformed_is_counted_and_formerr_or_dropped(env):
    _, server, metrics, _ = env
    assert server.handle(b"\x12", LAN_CLIENT) is None
    two_questions = bytearray(query())
    two_questions[5] = 2
    reply = server.handle(bytes(two_questions), LAN_CLIENT)
    assert reply[3] & 0x0F == 1  # FORMERR
    assert server.handle(bytes(two_questions), "203.0.113.1") is None  # not for strangers
    assert value(metrics.malformed) == 3


@settings(max_examples=500, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from([LAN_CLIENT, "198.51.100.1", "fe80::1", "bogus"]),
    st.booleans(),
)
def test_fuzz_handle_never_raises(data, source, tcp):
    reactor = FakeReactor()
    metrics = Metrics()
    local = LocalNames("router7", [], [], datetime.now(UTC))
    server = DnsServer(reactor, local, Cache(reactor), Forwarder(reactor, UpstreamPolicy([UP1]), metrics, reactor.open_udp),
                       metrics, SourcePolicy([ipaddress.ip_network("192.168.42.0/24")]))  # fmt: skip
    server.handle(data, source, tcp)


def test_metrics_exported(env):
    from prometheus_client import generate_latest

    _, server, metrics, _ = env
    server.handle(query("midna.lan"), LAN_CLIENT)
    server.handle(query(), "203.0.113.9")
    text = generate_latest(metrics.registry).decode()
    assert 'dnsd_queries_total{transport="udp"} 2.0' in text
    assert "dnsd_local_answers_total 1.0" in text and "dnsd_refused_total 1.0" in text


def test_bind_addresses_and_allowed_networks():
    addrs = netlink.state(
        {
            "lo": ["127.0.0.1/8", "::1/128"],
            "uplink0": ["85.195.207.62/25", "fe80::1/64", "10.9.9.9/24"],  # 10/8: internet side
            "lan0": ["192.168.42.1/24", "2001:db8:100::1/64", "fe80::2/64"],  # public: the LAN
            "wg0": ["10.22.100.1/24"],
            "eth9": ["203.0.113.5/24"],  # public, not the LAN: skipped
        }
    ).addresses()
    assert bind_addresses(addrs, "uplink0", lan="lan0") == [
        "10.22.100.1",
        "127.0.0.1",
        "192.168.42.1",
        "2001:db8:100::1",
        "::1",
        "fe80::2%lan0",
    ]
    nets = {str(n) for n in lan_networks(addrs, "uplink0", ["172.20.0.0/16"])}
    assert nets == {"127.0.0.0/8", "::1/128", "192.168.42.0/24", "2001:db8:100::/64", "10.22.100.0/24",
                    "203.0.113.0/24", "172.20.0.0/16"}  # fmt: skip
    policy = SourcePolicy(lan_networks(addrs, "uplink0"))
    assert policy.allows("2001:db8:100::42") and policy.allows("::ffff:192.168.42.7")
    assert not policy.allows("85.195.207.1") and not policy.allows("10.9.9.1")
