"""failoverd: the health state machine, the probe rounds (task.Clock), the state file,
and what netconfigd makes of a backup uplink (plan and firewall)."""

import ipaddress

import pytest
from twisted.internet import task

from router7.failoverd import state as statefile
from router7.failoverd.health import Failover
from router7.failoverd.probe import Prober
from router7.failoverd.routing import Rule, UplinkRoute, wanted_rules
from router7.netconfigd import firewall
from router7.netconfigd.config import Dhcp4Lease, Inputs, parse_interfaces
from router7.netconfigd.plan import RTPROT_DHCP, V4_DEFAULT, RouteSpec, build
from router7.runtime.statefile import StateFileError
from router7.runtime.uplink import http_port_for, instance_name, state_dir_name


def machine(**kw):
    return Failover.create({"uplink0": 0, "uplink1": 1}, now=0.0, **kw)


# --- the state machine ----------------------------------------------------------


def test_primary_is_active_at_start():
    m = machine()
    assert m.active == "uplink0"
    assert m.transitions == 0


def test_carrier_loss_switches_at_once_and_is_counted():
    m = machine()
    t = m.carrier_changed("uplink0", False, now=5.0)
    assert (t.previous, t.active) == ("uplink0", "uplink1")
    assert m.uplinks["uplink0"].reason == "carrier lost"
    assert m.transitions == 1 and m.since == 5.0


def test_silent_loss_needs_down_after_consecutive_lost_rounds():
    m = machine(down_after=3)
    assert m.probe_round("uplink0", False, 1) is None
    assert m.probe_round("uplink0", False, 2) is None
    m.probe_round("uplink0", True, 3)  # one answer resets the count
    assert m.probe_round("uplink0", False, 4) is None
    assert m.probe_round("uplink0", False, 5) is None
    t = m.probe_round("uplink0", False, 6, "only the gateway answers")
    assert t.active == "uplink1"
    assert "3 probe rounds lost (only the gateway answers)" in m.uplinks["uplink0"].reason


def test_fail_back_needs_up_after_good_rounds_and_carrier():
    m = machine(up_after=2)
    m.carrier_changed("uplink0", False, 1)
    assert m.carrier_changed("uplink0", True, 2) is None  # carrier alone proves nothing
    assert m.probe_round("uplink0", True, 3) is None
    t = m.probe_round("uplink0", True, 4)
    assert (t.previous, t.active) == ("uplink1", "uplink0")
    assert m.transitions == 2


def test_nothing_healthy_keeps_the_active_uplink():
    m = machine(down_after=1)
    m.probe_round("uplink0", False, 1)  # -> uplink1
    assert m.active == "uplink1"
    assert m.probe_round("uplink1", False, 2) is None
    assert m.active == "uplink1"


def test_priority_not_name_decides():
    m = Failover.create({"uplink0": 5, "uplink1": 1}, now=0)
    assert m.active == "uplink1"


def test_bad_hysteresis_is_refused():
    with pytest.raises(ValueError):
        Failover.create({"uplink0": 0}, 0, down_after=0)


# --- probe rounds on a task.Clock --------------------------------------------------


class FakeNet:
    """Answers the probes of destinations in ``answering``, immediately."""

    def __init__(self):
        self.answering = {"192.0.2.1", "203.0.113.10"}
        self.sent = []
        self.prober = None

    def send(self, dest, seq):
        self.sent.append((dest, seq))
        if dest in self.answering:
            self.prober.replied(dest, seq)


def run_prober(clock, net, machine, name="uplink0", targets=("203.0.113.10",)):
    results = []

    def on_round(ok, detail):
        results.append((ok, detail))
        machine.probe_round(name, ok, clock.seconds(), detail)

    net.prober = Prober(clock, 0.5, net.send, lambda: ("192.0.2.1", list(targets)), on_round)
    net.prober.start()
    return results


def test_rounds_judge_targets_not_the_gateway():
    clock, net, m = task.Clock(), FakeNet(), machine(down_after=3)
    results = run_prober(clock, net, m)
    clock.advance(0.5)
    assert results == [(True, "")]
    net.answering = {"192.0.2.1"}  # the ISP stops forwarding; its router still answers
    # Round 2 went out (and was answered) before the loss began at t=0.5.
    clock.pump([0.5] * 3)
    assert m.active == "uplink0"
    clock.advance(0.5)
    assert results[-1] == (False, "only the gateway answers")
    assert m.active == "uplink1"
    # 3 lost rounds of 0.5 s, plus at most the round in flight: within 2 s of the loss.
    assert m.since - 0.5 <= 2.0


def test_gateway_counts_when_no_targets_are_configured():
    clock, net, m = task.Clock(), FakeNet(), machine()
    results = run_prober(clock, net, m, targets=())
    clock.advance(0.5)
    assert results == [(True, "")]
    assert {d for d, _ in net.sent} == {"192.0.2.1"}


def test_a_late_reply_does_not_count_for_the_next_round():
    clock, net, m = task.Clock(), FakeNet(), machine()
    net.answering = set()
    results = run_prober(clock, net, m)
    clock.advance(0.5)
    net.prober.replied("203.0.113.10", 1)  # round 1's answer, in round 2
    clock.advance(0.5)
    assert [ok for ok, _ in results] == [False, False]


def test_no_address_is_a_lost_round():
    clock = task.Clock()
    results = []
    p = Prober(
        clock, 0.5, lambda d, s: None, lambda: (None, []), lambda ok, d: results.append((ok, d))
    )
    p.start()
    clock.advance(0.5)
    p.stop()
    assert results == [(False, "no address or gateway to probe")]
    assert not clock.getDelayedCalls()


# --- state file -------------------------------------------------------------------


def test_state_file_round_trip_and_missing_means_primary(tmp_path):
    assert statefile.active_uplink(tmp_path) == "uplink0"
    m = machine()
    m.carrier_changed("uplink0", False, 1_700_000_000.0)
    statefile.write(tmp_path, m)
    st = statefile.read(tmp_path)
    assert st.active == "uplink1" and st.transitions == 1
    assert st.reason == "uplink0 carrier lost"
    assert [(u.name, u.up) for u in st.uplinks] == [("uplink0", False), ("uplink1", True)]
    assert statefile.active_uplink(tmp_path) == "uplink1"


def test_bad_state_file_names_the_field_and_falls_back(tmp_path):
    path = statefile.state_path(tmp_path)
    path.parent.mkdir()
    path.write_text('{"active": 3}')
    with pytest.raises(StateFileError, match="active"):
        statefile.read(tmp_path)
    assert statefile.active_uplink(tmp_path) == "uplink0"


# --- configuration ----------------------------------------------------------------


def test_interfaces_json_names_uplink1_with_priority_and_probes():
    cfg = parse_interfaces(
        {
            "interfaces": [
                {"name": "uplink0"},
                {"name": "uplink1", "priority": 10},
                {"name": "lan0", "addr": "192.168.42.1/24"},
            ],
            "failover": {"targets": ["203.0.113.10"], "down_after": 2},
        },
        "interfaces.json",
    )
    assert cfg.uplink_priorities() == {"uplink0": 0, "uplink1": 10}
    assert cfg.failover.targets == (ipaddress.ip_address("203.0.113.10"),)
    assert (cfg.failover.down_after, cfg.failover.up_after, cfg.failover.interval_ms) == (2, 4, 500)


def test_one_uplink_has_default_failover_settings():
    cfg = parse_interfaces({"interfaces": [{"name": "uplink0"}]}, "x")
    assert cfg.uplink_priorities() == {"uplink0": 0}
    assert cfg.failover.targets == ()


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"interfaces": [{"name": "uplink1", "priority": -1}]}, "interfaces[0].priority"),
        ({"failover": {"down_after": 0}}, "failover.down_after"),
        ({"failover": {"targets": ["nope"]}}, "failover.targets[0]"),
    ],
)
def test_bad_failover_config_names_the_field(obj, field):
    with pytest.raises(StateFileError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_interfaces(obj, "interfaces.json")


def test_backup_uplink_instances_have_their_own_dir_pid_and_port():
    assert state_dir_name("uplink0") == "wire" and state_dir_name("eth0") == "wire"
    assert state_dir_name("uplink1") == "uplink1"
    assert instance_name("dhcp4", "uplink1") == "dhcp4-uplink1"
    assert instance_name("dhcp4", "uplink0") == "dhcp4"
    assert http_port_for(8069, "uplink1") == 8169 and http_port_for(8069, "uplink0") == 8069


# --- netconfigd with a backup uplink -------------------------------------------------

IF2 = parse_interfaces(
    {
        "interfaces": [
            {"name": "uplink0"},
            {"name": "uplink1"},
            {"name": "lan0", "addr": "192.168.42.1/24"},
        ]
    },
    "x",
)
L0 = Dhcp4Lease(ipaddress.ip_interface("192.0.2.50/25"), ipaddress.ip_address("192.0.2.1"))
L1 = Dhcp4Lease(ipaddress.ip_interface("100.64.7.20/24"), ipaddress.ip_address("100.64.7.1"))


def defaults(plan):
    return [r for r in plan.routes if r.dst == V4_DEFAULT]


def test_default_route_follows_the_active_uplink():
    inputs = Inputs(interfaces=IF2, dhcp4=L0, backup_dhcp4=(("uplink1", L1),))
    primary = build(inputs)
    assert defaults(primary) == [
        RouteSpec(V4_DEFAULT, "uplink0", L0.router, L0.address.ip, RTPROT_DHCP)
    ]
    backup = build(
        Inputs(interfaces=IF2, dhcp4=L0, backup_dhcp4=(("uplink1", L1),), active_uplink="uplink1")
    )
    assert defaults(backup) == [
        RouteSpec(V4_DEFAULT, "uplink1", L1.router, L1.address.ip, RTPROT_DHCP)
    ]
    # Both uplinks keep their addresses and on-link gateways either way.
    for plan in (primary, backup):
        assert {(a.ifname, str(a.address)) for a in plan.addresses} >= {
            ("uplink0", "192.0.2.50/25"),
            ("uplink1", "100.64.7.20/24"),
        }
        assert plan.backup_uplinks == ("uplink1",)
        assert ipaddress.ip_network("100.64.7.0/24") not in plan.internal_v4
    assert ("net/ipv6/conf/uplink1/accept_ra", "2") in backup.sysctls


def test_active_backup_without_a_lease_keeps_the_primary():
    plan = build(Inputs(interfaces=IF2, dhcp4=L0, active_uplink="uplink1"))
    assert [r.ifname for r in defaults(plan)] == ["uplink0"]


def test_firewall_filters_and_masquerades_every_uplink():
    rs = firewall.build(firewall.FirewallSpec(backup_uplinks=("uplink1",), flowtable=False))
    post = rs.table(*firewall.NAT_TABLE).chain("postrouting").rules
    assert 'oifname "uplink0" masquerade' in post and 'oifname "uplink1" masquerade' in post
    fwd = rs.table(*firewall.FILTER_TABLE).chain("forward").rules
    assert 'iifname "uplink1" jump forward_uplink' in fwd


def test_policy_rules_keep_specific_routes_in_main():
    rules = wanted_rules(
        [
            UplinkRoute("uplink0", ipaddress.ip_address("192.0.2.50"), None),
            UplinkRoute("uplink1", None, None),
        ]
    )
    assert rules[0] == Rule(900, 254, suppress_prefixlength=0)
    assert Rule(1000, 100, src="192.0.2.50/32") in rules
    assert Rule(1101, 101, oif="uplink1") in rules
    assert not any(r.src and r.table == 101 for r in rules)  # no address yet: no from-rule


def test_switch_time_is_last_old_reply_to_first_new_one():
    from router7.lab.pathprobe import parse, switch_time

    lines = [
        '{"seq": 1, "sent": 10.0, "via": "192.0.2.10"}',
        '{"seq": 2, "sent": 10.05, "via": "192.0.2.10"}',
        "garbage",
        '{"seq": 9, "sent": 10.4, "via": "100.64.0.10"}',
        '{"seq": 20, "sent": 11.0, "via": "192.0.2.10"}',
    ]
    records = parse(lines)
    assert switch_time(records, "192.0.2.", "100.64.0.", after=10.1) == pytest.approx(0.35)
    assert switch_time(records, "100.64.0.", "192.0.2.", after=10.5) == pytest.approx(0.6)
    assert switch_time(records, "100.64.0.", "192.0.2.", after=12) is None


def test_dnsd_uses_the_resolvers_of_uplinks_that_are_up(tmp_path):
    import json

    from router7.dnsd.upstreams import lease_resolvers, resolver_uplinks

    def lease(path, dns):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {"address": "192.0.2.10/25", "router": "192.0.2.1", "dns": dns, "lease_time": 120}
            )
        )

    lease(tmp_path / "dhcp4/wire/lease.json", ["198.51.100.53"])
    lease(tmp_path / "dhcp4/uplink1/lease.json", ["203.0.113.10"])
    assert resolver_uplinks(tmp_path) == ["uplink0"]  # no failover state: as before
    assert [u.host for u in lease_resolvers(tmp_path)] == ["198.51.100.53"]
    m = machine()
    statefile.write(tmp_path, m)
    assert [u.host for u in lease_resolvers(tmp_path)] == ["198.51.100.53", "203.0.113.10"]
    m.carrier_changed("uplink0", False, 1)
    statefile.write(tmp_path, m)
    assert [u.host for u in lease_resolvers(tmp_path)] == ["203.0.113.10"]


def test_status_page_shows_the_active_uplink_and_why(tmp_path):
    from router7.statusd import collect, render

    assert render.failover(collect.failover(tmp_path)) == ""  # one uplink: nothing
    m = machine()
    m.carrier_changed("uplink0", False, 1_700_000_000.0)
    statefile.write(tmp_path, m)
    section = collect.failover(tmp_path)
    assert section["active"] == "uplink1" and section["transitions"] == 1
    html = render.failover(section)
    assert 'data-k="failover-active">uplink1<' in html
    assert "carrier lost" in html and '<span class="tag bad">down</span>' in html


def test_diagd_reports_the_failover_and_fails_only_without_any_uplink(tmp_path):
    from router7.diagd import probes
    from router7.diagd.tree import CheckFailed

    assert probes.failover(tmp_path) == "one uplink"
    m = machine(down_after=1)
    m.carrier_changed("uplink0", False, 1_700_000_000.0)
    statefile.write(tmp_path, m)
    assert probes.failover(tmp_path).startswith("uplink1 active since")
    m.probe_round("uplink1", False, 1_700_000_001.0)
    statefile.write(tmp_path, m)
    with pytest.raises(CheckFailed, match="no uplink is up"):
        probes.failover(tmp_path)
