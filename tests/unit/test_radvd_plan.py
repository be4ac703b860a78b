"""radvd's RA content and the RFC 9096 handling of old prefixes, without sockets."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router7.radvd.plan import (
    ND_PREFERRED_LIMIT,
    ND_VALID_LIMIT,
    UNKNOWN_HOST_HOLD,
    Config,
    Delegated,
    LanFacts,
    Lease,
    Planner,
    lan_prefix,
)

T0 = 1_800_000_000.0  # obtained_at of the leases below
LL = ipaddress.IPv6Address("fe80::73:53ff:fe00:cafe")
FACTS = LanFacts("lan0", 2, "02:73:53:00:ca:fe", 1492, LL)
NET = ipaddress.IPv6Network
A48, B48 = NET("2001:db8:100::/48"), NET("2001:db8:200::/48")
A64, B64 = NET("2001:db8:100::/64"), NET("2001:db8:200::/64")


def lease(prefix=A48, preferred=3600, valid=7200, previous=(), obtained=T0):
    return Lease(
        prefixes=(Delegated(prefix, obtained + preferred, obtained + valid),),
        previous=tuple(previous),
        obtained_at=obtained,
    )


DEFAULTS = Config()
RFC9096_ONLY = Config(min_valid_lifetime=0)


def plan(planner, now, lease_, config=DEFAULTS, extra=(), default_route=True):
    return planner.plan(now, lease_, extra, config, FACTS, default_route)


def pio(advert, prefix):
    (p,) = [p for p in advert.prefixes if p.prefix == prefix]
    return p


def test_ra_content_from_the_delegated_prefix():
    ra = plan(Planner(), T0 + 1000, lease())
    assert [p.prefix for p in ra.prefixes] == [A64]  # the first /64 of the /48
    p = ra.prefixes[0]
    # remaining preferred 2600 (under the 2700 cap), remaining valid 6200 capped to 5400
    assert (p.preferred, p.valid, p.on_link, p.autonomous) == (2600, ND_VALID_LIMIT, True, True)
    assert ra.router_lifetime == 1800  # 3 × MaxRtrAdvInterval (600 s)
    assert ra.rdnss == (LL,) and ra.rdnss_lifetime == 1800
    assert ra.dnssl == ("lan",) and ra.dnssl_lifetime == 1800
    assert (ra.mtu, ra.source_mac, ra.hop_limit) == (1492, "02:73:53:00:ca:fe", 64)


def test_lifetimes_follow_the_remaining_delegated_ones_down_to_the_floor():
    planner = Planner()
    p = pio(plan(planner, T0 + 10, lease()), A64)
    assert (p.preferred, p.valid) == (ND_PREFERRED_LIMIT, ND_VALID_LIMIT)
    p = pio(plan(planner, T0 + 5000, lease()), A64)
    assert (p.preferred, p.valid) == (0, 2200)  # deprecated by the ISP, still valid
    p = pio(plan(planner, T0 + 7100, lease()), A64)
    assert (p.preferred, p.valid) == (0, 1800)  # never below 3 × MaxRtrAdvInterval


def test_without_the_floor_lifetimes_run_down_to_zero():
    p = pio(plan(Planner(), T0 + 7100, lease(), config=RFC9096_ONLY), A64)
    assert (p.preferred, p.valid) == (0, 100)


def test_preferred_never_exceeds_valid():
    p = pio(plan(Planner(), T0 + 100, lease(preferred=7000, valid=600), config=RFC9096_ONLY), A64)
    assert (p.preferred, p.valid) == (500, 500)
    p = pio(plan(Planner(), T0 + 100, lease(preferred=7000, valid=600)), A64)
    assert (p.preferred, p.valid) == (1800, 1800)


def test_configured_subnet_id_and_limits():
    config = Config(subnet_id=0x2A, preferred_limit=600, valid_limit=1200)
    ra = plan(Planner(), T0, lease(), config=config)
    assert [(p.prefix, p.preferred, p.valid) for p in ra.prefixes] == [
        (NET("2001:db8:100:2a::/64"), 600, 1200)
    ]
    assert lan_prefix(NET("2001:db8:1::/64"), 1) is None  # a /64 has one subnet only
    assert lan_prefix(NET("2001:db8:1::/56"), 255) == NET("2001:db8:1:ff::/64")
    assert lan_prefix(NET("2001:db8:1::/56"), 256) is None
    assert lan_prefix(NET("2001:db8:1::/80")) is None


def test_rdnss_override_and_no_dnssl():
    config = Config(rdnss=(ipaddress.IPv6Address("fd00::53"),), dnssl=())
    ra = plan(Planner(), T0, lease(), config=config)
    assert ra.rdnss == (ipaddress.IPv6Address("fd00::53"),)
    assert ra.dnssl == ()


def test_router_lifetime_zero_without_a_default_route():
    assert plan(Planner(), T0, lease(), default_route=False).router_lifetime == 0
    assert plan(Planner(), T0, lease(), config=Config(router_lifetime=900)).router_lifetime == 900


def test_nothing_to_say_means_no_ra():
    assert plan(Planner(), T0, None, default_route=False) is None
    # a default route alone is not worth announcing: hosts would have no global source
    assert plan(Planner(), T0, None, default_route=True) is None


def test_only_retired_prefixes_means_not_a_default_router():
    planner = Planner()
    plan(planner, T0, lease())
    ra = plan(planner, T0 + 10, None, default_route=True)
    assert ra.router_lifetime == 0 and [p.preferred for p in ra.prefixes] == [0]


def test_extra_prefixes_are_announced_even_without_a_lease():
    ula = NET("fd12:3456:789a::/48")
    ra = plan(Planner(), T0, None, extra=(ula,), default_route=False)
    assert [(p.prefix, p.preferred, p.valid) for p in ra.prefixes] == [
        (NET("fd12:3456:789a::/64"), ND_PREFERRED_LIMIT, ND_VALID_LIMIT)
    ]


def test_go_lease_without_lifetimes_uses_the_caps():
    ra = plan(Planner(), T0, Lease(prefixes=(Delegated(A48),)))
    assert [(p.preferred, p.valid) for p in ra.prefixes] == [(ND_PREFERRED_LIMIT, ND_VALID_LIMIT)]


def test_rfc9096_old_prefix_is_deprecated_counts_down_then_disappears():
    planner = Planner()
    t_change = T0 + 1000
    plan(planner, T0 + 900, lease())  # hosts now hold A64 until T0 + 900 + 5400
    host_expiry = T0 + 900 + ND_VALID_LIMIT
    new = lease(
        prefix=B48,
        valid=86400,
        obtained=t_change,
        previous=[Delegated(A48, t_change, t_change + 86400)],  # the ISP still routes A a day
    )
    ra = plan(planner, t_change, new)
    assert [p.prefix for p in ra.prefixes] == [B64, A64]
    old = pio(ra, A64)
    assert (old.preferred, old.valid) == (0, int(host_expiry - t_change))
    assert old.on_link and old.autonomous
    # the valid lifetime shrinks in real time
    assert pio(plan(planner, t_change + 1000, new), A64).valid == int(host_expiry - t_change) - 1000
    # once no host can hold it any more, it is gone for good
    assert [p.prefix for p in plan(planner, host_expiry, new).prefixes] == [B64]
    assert [p.prefix for p in plan(planner, host_expiry + 10_000, new).prefixes] == [B64]


def test_rfc9096_old_prefix_valid_lifetime_ends_with_its_delegation():
    planner = Planner()
    plan(planner, T0, lease())
    t_change = T0 + 100
    # flash renumbering: the ISP stopped routing A 10 minutes after the change
    new = lease(prefix=B48, obtained=t_change, previous=[Delegated(A48, t_change, t_change + 600)])
    assert pio(plan(planner, t_change, new), A64).valid == 600
    assert pio(plan(planner, t_change + 600, new), A64).valid == 0
    # still signalled (valid 0) while hosts may hold it: RFC 9096 lets them drop it
    assert pio(plan(planner, t_change + 3000, new), A64).valid == 0
    assert [p.prefix for p in plan(planner, T0 + ND_VALID_LIMIT, new).prefixes] == [B64]


def test_prefix_that_vanishes_from_the_lease_is_deprecated():
    planner = Planner()
    plan(planner, T0, lease())
    ra = plan(planner, T0 + 60, None)
    assert [(p.prefix, p.preferred, p.valid) for p in ra.prefixes] == [
        (A64, 0, ND_VALID_LIMIT - 60)
    ]


def test_delegation_cut_short_by_the_isp_turns_stale():
    planner = Planner()
    plan(planner, T0, lease())  # hosts hold A64 until T0 + 5400
    revoked = Lease(prefixes=(Delegated(A48, T0 + 100, T0 + 100),), obtained_at=T0 + 100)
    p = pio(plan(planner, T0 + 100, revoked), A64)
    assert (p.preferred, p.valid) == (0, 0)
    assert plan(planner, T0 + ND_VALID_LIMIT, revoked, default_route=False) is None


def test_delegation_running_out_is_kept_and_so_are_the_hosts_addresses():
    # The ISP's DHCP server is away: no renewal, the router keeps the prefix past its
    # end, and every RA keeps the hosts' addresses alive (preferred follows the ISP).
    planner = Planner()
    short = lease(preferred=100, valid=200)
    for t in (150, 200, 10_000):
        ra = plan(planner, T0 + t, short)
        assert [(p.prefix, p.preferred, p.valid) for p in ra.prefixes] == [(A64, 0, 1800)]
        assert ra.router_lifetime == 1800  # the router still routes it
    # The server is back with another prefix: the kept one is over at once (its
    # delegation ended long ago), hosts hold it at most the floor longer.
    new = lease(prefix=B48, obtained=T0 + 10_100, previous=[Delegated(A48, T0 + 100, T0 + 200)])
    old = pio(plan(planner, T0 + 10_100, new), A64)
    assert (old.preferred, old.valid) == (0, 0)
    assert [p.prefix for p in plan(planner, T0 + 10_000 + 1800, new).prefixes] == [B64]


def test_without_the_floor_a_delegation_running_out_needs_no_stale_signal():
    planner = Planner()
    short = lease(preferred=100, valid=200)
    assert pio(plan(planner, T0 + 150, short, config=RFC9096_ONLY), A64).valid == 50
    # hosts were never told more than the delegation's end: nothing left to signal
    assert plan(planner, T0 + 200, short, config=RFC9096_ONLY, default_route=False) is None


def test_min_valid_lifetime_is_checked():
    with pytest.raises(ValueError, match="min_valid_lifetime"):
        Config(min_valid_lifetime=ND_VALID_LIMIT + 1).validate()
    assert Config(max_interval=1800).effective_min_valid == ND_VALID_LIMIT  # capped
    assert Config(max_interval=10).effective_min_valid == 30


def test_restart_remembers_prefixes_hosts_still_hold():
    planner = Planner({A64: T0 + 3000})
    ra = plan(planner, T0 + 1000, lease(prefix=B48, obtained=T0 + 1000))
    assert [(p.prefix, p.preferred, p.valid) for p in ra.prefixes] == [
        (B64, ND_PREFERRED_LIMIT, ND_VALID_LIMIT),
        (A64, 0, 2000),
    ]
    assert planner.memory()[A64] == T0 + 3000
    assert planner.memory()[B64] == T0 + 1000 + ND_VALID_LIMIT


def test_previous_prefix_unknown_to_us_is_deprecated_for_two_hours_from_the_change():
    planner = Planner()
    t_change = T0
    new = lease(
        prefix=B48, valid=86400, obtained=t_change, previous=[Delegated(A48, t_change, T0 + 86400)]
    )
    ra = plan(planner, t_change + 100, new)
    assert pio(ra, A64).valid == UNKNOWN_HOST_HOLD - 100
    end = t_change + UNKNOWN_HOST_HOLD
    assert [p.prefix for p in plan(planner, end, new).prefixes] == [B64]
    assert [p.prefix for p in plan(planner, end + 1, new).prefixes] == [B64]  # not re-adopted


def test_prefix_coming_back_is_current_again():
    planner = Planner()
    plan(planner, T0, lease())
    plan(planner, T0 + 10, lease(prefix=B48, previous=[Delegated(A48, T0, T0 + 100)]))
    ra = plan(planner, T0 + 20, lease(obtained=T0 + 20, previous=[Delegated(B48, T0, T0 + 100)]))
    assert (pio(ra, A64).preferred, pio(ra, A64).valid) == (ND_PREFERRED_LIMIT, ND_VALID_LIMIT)
    assert pio(ra, B64).preferred == 0


def test_final_ra_only_withdraws_the_router():
    ra = plan(Planner(), T0, lease())
    final = ra.final()
    assert final.router_lifetime == 0 and final.prefixes == ra.prefixes


@given(
    preferred=st.integers(0, 10**6),
    valid=st.integers(0, 10**6),
    elapsed=st.integers(-100, 10**6),
    previous_valid=st.integers(-(10**5), 10**6),
)
def test_lifetimes_are_always_within_rfc9096_limits(preferred, valid, elapsed, previous_valid):
    planner = Planner({A64: T0 + 5000})
    lease_ = lease(
        prefix=B48,
        preferred=preferred,
        valid=valid,
        previous=[Delegated(A48, T0, T0 + previous_valid)],
    )
    ra = plan(planner, T0 + elapsed, lease_)
    for p in ra.prefixes if ra else ():
        assert 0 <= p.preferred <= p.valid <= ND_VALID_LIMIT
        assert p.preferred <= ND_PREFERRED_LIMIT
