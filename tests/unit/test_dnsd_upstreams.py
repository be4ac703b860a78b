"""dnsd's upstream policy: where the list comes from, failover order, RTT steering."""

import json

import pytest

from router7.dnsd.upstreams import (
    MAX_TIMEOUT,
    Upstream,
    UpstreamPolicy,
    configured_upstreams,
    parse_upstream,
    read_config,
)

A, B, C = Upstream("198.51.100.53"), Upstream("198.51.100.54"), Upstream("2001:db8::53")


def test_parse_upstream():
    assert parse_upstream("1.2.3.4") == Upstream("1.2.3.4", 53)
    assert parse_upstream("1.2.3.4:5353") == Upstream("1.2.3.4", 5353)
    assert parse_upstream("2001:db8::1") == Upstream("2001:db8::1", 53)
    assert parse_upstream("[2001:db8::1]:5353") == Upstream("2001:db8::1", 5353)
    assert str(Upstream("2001:db8::1")) == "[2001:db8::1]:53"
    for bad in ("example.com", "1.2.3.4:0", "[::1]:99999"):
        with pytest.raises(ValueError):
            parse_upstream(bad)


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_upstreams_from_leases_then_override(tmp_path):
    write(
        tmp_path / "dhcp4/wire/lease.json",
        {"address": "192.0.2.23/25", "dns": ["77.109.128.2", "213.144.129.20"]},
    )
    write(
        tmp_path / "dhcp6/wire/lease.json",
        {"dns": ["2001:1620:2777:1::10", "77.109.128.2"], "prefixes": []},
    )
    config = read_config(tmp_path)
    assert [str(u) for u in configured_upstreams(tmp_path, config)] == [
        "77.109.128.2:53",
        "213.144.129.20:53",
        "[2001:1620:2777:1::10]:53",
    ]
    write(tmp_path / "dnsd/config.json", {"upstreams": ["9.9.9.9", "[2620:fe::fe]:53", "bogus"]})
    config = read_config(tmp_path)
    assert [str(u) for u in configured_upstreams(tmp_path, config)] == [
        "9.9.9.9:53",
        "[2620:fe::fe]:53",
    ]


def test_no_leases_no_upstreams_and_bad_config_uses_defaults(tmp_path):
    (tmp_path / "dnsd").mkdir()
    (tmp_path / "dnsd/config.json").write_text('{"cache_size": "big"}')
    config = read_config(tmp_path)
    assert config["cache_size"] == 10000
    assert configured_upstreams(tmp_path, config) == []


def test_untried_servers_go_first_in_configured_order():
    policy = UpstreamPolicy([A, B, C])
    assert policy.order() == [A, B, C]
    policy.success(A, 0.010)
    assert policy.order()[:2] == [B, C]  # B and C still unmeasured (SRTT 0)


def test_failover_order_after_a_timeout():
    policy = UpstreamPolicy([A, B])
    policy.success(A, 0.010)
    policy.success(B, 0.020)
    assert policy.order() == [A, B]
    policy.failure(A)  # timed out
    assert policy.order() == [B, A]
    # a few more queries do not bring the dead server back yet
    for _ in range(10):
        assert policy.order()[0] == B


def test_rtt_steering_prefers_the_faster_server():
    policy = UpstreamPolicy([A, B])
    policy.success(A, 0.200)
    policy.success(B, 0.020)
    assert policy.order() == [B, A]
    for _ in range(10):  # A gets faster; the smoothed RTT follows
        policy.success(A, 0.001)
    assert policy.order() == [A, B]


def test_demoted_server_is_probed_again_eventually():
    policy = UpstreamPolicy([A, B])
    policy.success(A, 0.010)
    policy.success(B, 0.050)
    policy.failure(A)
    firsts = [policy.order()[0] for _ in range(400)]
    assert firsts[0] == B
    assert A in firsts  # its SRTT decayed below B's: asked again
    assert firsts.index(A) > 50


def test_timeout_follows_srtt_within_bounds():
    policy = UpstreamPolicy([A])
    assert policy.timeout(A) == 1.0  # nothing known yet
    policy.success(A, 0.001)
    assert policy.timeout(A) == 0.2
    for _ in range(5):
        policy.failure(A)
    assert policy.timeout(A) == MAX_TIMEOUT


def test_set_upstreams_keeps_what_was_learnt():
    policy = UpstreamPolicy([A, B])
    policy.success(B, 0.005)
    policy.success(A, 0.500)
    policy.set_upstreams([C, B, B])
    assert policy.upstreams == [C, B]
    assert policy.srtt(B) == 0.005
    policy.success(C, 0.5)
    assert policy.order() == [B, C]
    policy.failure(A)  # a late failure of a removed server is ignored
    policy.success(A, 0.1)
