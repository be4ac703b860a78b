"""The radvd service wired to a fake socket and task.Clock: signals, RSs, final RA, metrics."""

import argparse
import ipaddress
import json
import random
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptPrefixInfo
from twisted.internet import task

from router7.radvd import inputs
from router7.radvd.service import Radvd
from router7.runtime.netlink import NetState
from tests.helpers import netlink
from tests.helpers.service import net_event

T0 = 1_800_000_000.0
LL = ipaddress.IPv6Address("fe80::73:53ff:fe00:cafe")
LAN0 = netlink.link(7, "lan0", mac="02:73:53:00:ca:fe") + netlink.addr(7, f"{LL}/64")
UPLINK0 = netlink.link(2, "uplink0")
DEFAULT_ROUTE = netlink.route("::/0", 2, gateway="fe80::1")
RS = bytes([133, 0, 0, 0, 0, 0, 0, 0])


class FakeTransport:
    instances = []

    def __init__(self, reactor, ifname, ifindex, on_packet):
        self.ifname, self.ifindex, self.on_packet = ifname, ifindex, on_packet
        self.sent = []
        self.opened = self.closed = False
        FakeTransport.instances.append(self)

    def open(self):
        self.opened = True

    def close(self):
        self.closed = True

    def send(self, payload, destination, source):
        assert source == LL
        self.sent.append((destination, ICMPv6ND_RA(payload)))


def prefixes(ra):
    out, opt = [], ra.getlayer(ICMPv6NDOptPrefixInfo)
    while isinstance(opt, ICMPv6NDOptPrefixInfo):
        out.append((opt.prefix, opt.preferredlifetime, opt.validlifetime))
        opt = opt.payload
    return out


def metric(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def iso(t):
    return datetime.fromtimestamp(t, UTC).isoformat()


def write_lease(perm, prefix, previous=(), obtained=T0):
    path = perm / inputs.LEASE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "prefixes": [
                    {"prefix": prefix, "preferred_lifetime": 14400, "valid_lifetime": 86400}
                ],
                "previous_prefixes": [
                    {
                        "prefix": p,
                        "preferred_until": iso(obtained),
                        "valid_until": iso(obtained + 3600),
                    }
                    for p in previous
                ],
                "obtained_at": iso(obtained),
            }
        )
    )


@pytest.fixture
def svc(tmp_path):
    clock = task.Clock()
    clock.advance(T0)
    perm = tmp_path / "perm"
    write_lease(perm, "2001:db8:100::/48")
    net = NetState()
    net.feed(LAN0 + UPLINK0)
    args = argparse.Namespace(
        perm=str(perm),
        run_dir=str(tmp_path / "run"),
        uplink="uplink0",
        lan="lan0",
        http_port=0,
    )
    FakeTransport.instances.clear()
    s = Radvd(args, clock, transport_factory=FakeTransport, rng=random.Random(3), net=net)
    s.clock = clock
    return s


def started(s):
    s._started()  # as the runtime starts it
    s.reactor.advance(0)
    return FakeTransport.instances[-1]


def test_first_ra_on_start_carries_the_lan_prefix(svc):
    t = started(svc)
    assert t.opened and (t.ifname, t.ifindex) == ("lan0", 7)
    ((dst, ra),) = t.sent
    assert dst == ipaddress.IPv6Address("ff02::1")
    assert ra.routerlifetime == 0  # no default route on uplink0
    assert prefixes(ra) == [("2001:db8:100::", 2700, 5400)]


def test_sigusr1_rereads_the_lease_and_deprecates_the_old_prefix(svc, tmp_path):
    t = started(svc)
    svc.clock.advance(60)
    n = len(t.sent)
    write_lease(svc.perm, "2001:db8:200::/48", previous=["2001:db8:100::/48"], obtained=T0 + 60)
    svc.reload()
    svc.clock.advance(3)  # at once, or 3 s after the previous RA (rate limit)
    ((_, ra),) = t.sent[n:]  # not only at the next periodic RA
    new, old = prefixes(ra)
    assert new == ("2001:db8:200::", 2700, 5400)
    assert old[:2] == ("2001:db8:100::", 0) and 3597 <= old[2] <= 3600  # ISP: valid 1 h more
    saved = json.loads((svc.perm / inputs.MEMORY).read_text())
    assert {e["prefix"] for e in saved["prefixes"]} == {"2001:db8:100::/64", "2001:db8:200::/64"}
    svc.clock.advance(600)
    assert prefixes(t.sent[-1][1])[1][1:] == (0, 3600 - int(svc.clock.seconds() - T0 - 60))
    assert prefixes(t.sent[-1][1])[1][2] < 3600  # counting down


def test_default_route_appearing_triggers_an_ra_with_router_lifetime(svc):
    t = started(svc)
    svc.clock.advance(20)
    n = len(t.sent)
    net_event(svc, DEFAULT_ROUTE)  # an event, no poll
    svc.clock.advance(3)  # soon (RAs are rate-limited to one per 3 s)
    assert [ra.routerlifetime for _, ra in t.sent[n:]] == [1800]
    svc.clock.advance(20)
    n = len(t.sent)
    net_event(svc, netlink.link(2, "uplink0", up=False))  # the route goes with the link
    svc.clock.advance(3)
    assert [ra.routerlifetime for _, ra in t.sent[n:]] == [0]


def test_router_solicitation_gets_a_unicast_answer_and_bad_ones_are_counted(svc):
    t = started(svc)
    svc.clock.advance(30)
    n = len(t.sent)
    received = metric("radvd_router_solicitations_received_total")
    malformed = metric("radvd_router_solicitations_dropped_total", reason="malformed")
    t.on_packet(RS, "fe80::1234%lan0", 255)
    t.on_packet(RS, "fe80::1234%lan0", 64)  # forwarded: must be ignored
    t.on_packet(b"\x85", "fe80::1234%lan0", 255)
    svc.clock.advance(0.5)
    assert [dst for dst, _ in t.sent[n:]] == [ipaddress.IPv6Address("fe80::1234")]
    assert metric("radvd_router_solicitations_received_total") == received + 3
    assert metric("radvd_router_solicitations_dropped_total", reason="malformed") == malformed + 2


def test_sigterm_sends_a_final_ra_with_router_lifetime_zero(svc):
    svc.net.feed(DEFAULT_ROUTE)
    t = started(svc)
    assert t.sent[-1][1].routerlifetime == 1800
    svc.stop()
    dst, ra = t.sent[-1]
    assert dst == ipaddress.IPv6Address("ff02::1")
    assert ra.routerlifetime == 0 and prefixes(ra) == [("2001:db8:100::", 2700, 5400)]
    assert t.closed
    n = len(t.sent)
    svc.clock.advance(3600)
    assert len(t.sent) == n  # nothing after the final RA


def test_metrics_describe_the_advertised_prefixes(svc):
    sent = metric("radvd_router_advertisements_sent_total", destination="multicast")
    started(svc)
    assert metric("radvd_router_advertisements_sent_total", destination="multicast") == sent + 1
    assert metric("radvd_prefix_preferred_lifetime_seconds", prefix="2001:db8:100::/64") == 2700
    assert metric("radvd_prefix_valid_lifetime_seconds", prefix="2001:db8:100::/64") == 5400
    assert metric("radvd_router_lifetime_seconds") == 0


def test_waits_for_lan0_and_recovers_when_it_appears(svc):
    svc.net.reset()
    svc._started()
    svc.clock.advance(0)
    assert FakeTransport.instances == []
    net_event(svc, netlink.link(7, "lan0") + netlink.addr(7, f"{LL}/64", flags=0x40))
    svc.clock.advance(0)
    assert FakeTransport.instances == []  # the link-local address is still tentative
    net_event(svc, netlink.addr(7, f"{LL}/64"))
    svc.clock.advance(0)
    (t,) = FakeTransport.instances
    assert (t.ifname, t.ifindex) == ("lan0", 7) and len(t.sent) == 1


def test_broken_lease_keeps_the_last_good_one(svc):
    t = started(svc)
    (svc.perm / inputs.LEASE).write_text("{garbage")
    svc.clock.advance(10)
    svc.reload()
    svc.clock.advance(3)
    assert prefixes(t.sent[-1][1])[0][0] == "2001:db8:100::"


def test_restart_remembers_and_deprecates_a_prefix_that_changed_meanwhile(svc, tmp_path):
    started(svc)
    svc.stop()
    write_lease(svc.perm, "2001:db8:300::/48", obtained=T0 + 100)  # no previous_prefixes given
    svc.clock.advance(100)
    again = Radvd(
        svc.args, svc.clock, transport_factory=FakeTransport, rng=random.Random(4), net=svc.net
    )
    t = started(again)
    assert prefixes(t.sent[0][1]) == [("2001:db8:300::", 2700, 5400), ("2001:db8:100::", 0, 5300)]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=64).map(lambda b: bytes([133, 0]) + b) | st.binary(max_size=64),
    source=st.sampled_from(["fe80::1%lan0", "::", "garbage", "2001:db8::1"]),
    hop_limit=st.one_of(st.none(), st.integers(0, 255)),
)
def test_fuzz_whatever_arrives_nothing_escapes(svc, data, source, hop_limit):
    if not FakeTransport.instances:
        started(svc)
    t = FakeTransport.instances[-1]
    t.on_packet(data, source, hop_limit)  # must not raise
    svc.clock.advance(1)
    assert svc.scheduler.running
