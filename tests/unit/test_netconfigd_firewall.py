"""The generated nftables ruleset: golden file, and what a change rebuilds.

ROUTER7_UPDATE_GOLDEN=1 rewrites the golden files after a deliberate change.
"""

import ipaddress
import os
import re
from pathlib import Path

import pytest

from router7.netconfigd import firewall
from router7.netconfigd.config import parse_forwardings, parse_wireguard

GOLDEN = Path(__file__).parent / "golden" / "netconfigd"

# router7's integration-test forwardings (reference §12.2) plus our extensions.
FORWARDINGS = parse_forwardings(
    {
        "forwardings": [
            {"proto": "tcp", "port": "8080", "dest_addr": "192.168.42.23", "dest_port": "9999"},
            {
                "proto": "tcp,udp",
                "port": "8040-8060",
                "dest_addr": "192.168.42.22",
                "dest_port": "8040-8060",
            },
            {"proto": "udp", "port": "53", "dest_addr": "192.168.42.99", "dest_port": "53"},
            {
                "proto": "tcp",
                "port": "2000-2002",
                "dest_addr": "192.168.42.99",
                "dest_port": "3000-3002",
            },
            {"proto": "tcp", "port": "443", "dest_addr": "192.168.42.98"},
            {"proto": "tcp", "port": "22", "dest_addr": "2001:db8:100::50"},
        ]
    },
    "x",
)
KEY = "YNqHwpcAmVj0lVzPSt3oUnL7cRPKB/geVU+X5ytKLjI="
WIREGUARD = parse_wireguard(
    {"interfaces": [{"name": "wg0", "private_key": KEY, "port": 51820}]}, "x"
)


def spec(**kw):
    base = dict(
        uplink="uplink0",
        lan="lan0",
        internal_v4=(ipaddress.ip_network("192.168.42.0/24"),),
        forwardings=FORWARDINGS,
        wireguard=WIREGUARD,
        flowtable_devices=("lan0", "uplink0"),
    )
    base.update(kw)
    return firewall.FirewallSpec(**base)


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ROUTER7_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if not path.exists():
        pytest.fail(f"{path} missing; run with ROUTER7_UPDATE_GOLDEN=1 to create it")
    assert text == path.read_text(), f"differs from {path} (ROUTER7_UPDATE_GOLDEN=1 rewrites it)"


def test_ruleset_golden():
    golden("ruleset.nft", firewall.build(spec()).render())


def test_ruleset_without_flowtable_golden():
    text = firewall.build(spec(flowtable=False)).render()
    golden("ruleset-noflowtable.nft", text)
    assert "flowtable" not in text and "flow add" not in text


def test_first_transaction_recreates_only_our_tables_with_counter_values():
    new = firewall.build(spec())
    script = firewall.transaction(new, None, {("inet", "router7", "fwded_ipv4"): (23, 42)})
    golden("transaction-full.nft", script)
    tables = set(re.findall(r"^(?:add|delete) table (\S+ \S+)$", script, re.M))
    assert tables == {"inet router7", "ip router7-nat"}  # foreign tables are never named
    assert "flush ruleset" not in script
    assert "counter fwded_ipv4 { packets 23 bytes 42 }" in script
    assert "counter fwded_ipv6 { packets 0 bytes 0 }" in script


def test_unchanged_ruleset_needs_no_transaction():
    assert firewall.transaction(firewall.build(spec()), firewall.build(spec())) is None


def test_changed_forwarding_replaces_only_the_forwarding_chain():
    old = firewall.build(spec())
    more = FORWARDINGS + parse_forwardings(
        {
            "forwardings": [
                {"proto": "tcp", "port": "8081", "dest_addr": "192.168.42.24", "dest_port": "80"}
            ]
        },
        "x",
    )
    new = firewall.build(spec(forwardings=more))
    assert not firewall.needs_rebuild(new, old)
    script = firewall.transaction(new, old)
    golden("transaction-forwarding.nft", script)
    assert firewall.changed_chains(script) == {"ip router7-nat portforwardings"}
    assert not re.search(r"^(add|delete) table", script, re.M)
    assert "counter" not in script  # counters are not touched at all
    assert script.count("add rule") == len(
        new.table("ip", "router7-nat").chain("portforwardings").rules
    )


def test_ipv6_pinhole_change_touches_only_the_pinhole_chain():
    old = firewall.build(spec())
    fewer = tuple(f for f in FORWARDINGS if f.dest_addr.version == 4)
    script = firewall.transaction(firewall.build(spec(forwardings=fewer)), old)
    assert firewall.changed_chains(script) == {"inet router7 pinholes"}
    assert script.strip() == "flush chain inet router7 pinholes"


def test_uplink_rename_rebuilds_but_keeps_counters():
    old = firewall.build(spec())
    new = firewall.build(spec(uplink="uplink1", flowtable_devices=("lan0", "uplink1")))
    assert firewall.needs_rebuild(new, old)
    script = firewall.transaction(new, old, {("inet", "router7", "inputc_ipv6"): (5, 500)})
    assert "counter inputc_ipv6 { packets 5 bytes 500 }" in script
    assert 'iifname "uplink1" jump forward_uplink' in script


def test_input_is_filtered_on_every_uplink():
    """The uplink definition management uses (runtime.uplink): uplink* and --uplink."""
    script = firewall.build(spec(uplink="wan0")).render()
    assert 'iifname "uplink*" jump input_uplink' in script
    assert 'iifname "wan0" jump input_uplink' in script


def test_filter_policy():
    rs = firewall.build(spec())
    t = rs.table("inet", "router7")
    up = t.chain("input_uplink").rules
    assert up[0] == "ct state established,related accept"
    assert up[-1] == "drop"  # nothing else from the ISP side reaches the router
    assert "udp dport 51820 accept" in up  # WireGuard listens on the uplink
    assert any("udp sport 547 udp dport 546" in r for r in up)  # DHCPv6 replies
    assert any("packet-too-big" in r for r in up)  # RFC 4890
    fwd = t.chain("forward_uplink").rules
    assert fwd[-1].startswith("reject")
    assert "ct status dnat accept" in fwd
    assert t.chain("pinholes").rules == ("ip6 daddr 2001:db8:100::50 tcp dport 22 accept",)
    forward = t.chain("forward").rules
    assert 'oifname "uplink0" tcp flags syn tcp option maxseg size set rt mtu' in forward
    assert any("flow add @fastpath" in r for r in forward)


def test_port_forwarding_rules():
    nat = firewall.build(spec()).table("ip", "router7-nat").chain("portforwardings").rules
    ex = "fib daddr type local ip daddr != { 127.0.0.0/8, 192.168.42.0/24 }"
    assert nat[0] == f"{ex} tcp dport 8080 dnat to 192.168.42.23:9999"
    assert f"{ex} udp dport 8040-8060 dnat to 192.168.42.22:8040-8060" in nat
    assert f"{ex} tcp dport 443 dnat to 192.168.42.98" in nat
    shifted = next(r for r in nat if "2000-2002" in r)
    assert "tcp dport map { 2000 : 3000, 2001 : 3001, 2002 : 3002 }" in shifted
    assert not any("2001:db8" in r for r in nat)  # IPv6 entries are pinholes, not NAT


def test_json_round_trip_of_the_applied_state():
    rs = firewall.build(spec())
    assert firewall.Ruleset.from_json(rs.to_json()) == rs
