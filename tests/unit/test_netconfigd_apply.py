"""The Applier's firewall decisions, with a fake nft: when it sends nothing, a chain, or all;
and its order: the ruleset before addresses, routes and forwarding.

(Links, addresses and routes need a kernel: tests/integration/test_netconfigd.py.)
"""

import ipaddress
import re

from router7.netconfigd.apply import Applier, Result
from router7.netconfigd.config import parse_forwardings
from router7.netconfigd.links import Link, find_spec
from router7.netconfigd.nft import NftError
from router7.netconfigd.plan import LinkSpec, Plan, sysctls_for


class FakeNft:
    """Keeps 'kernel' tables as text, the way `nft list table` would show them."""

    def __init__(self):
        self.scripts: list[str] = []
        self.kernel: dict[tuple[str, str], str] = {}
        self.counter_values = {("inet", "router7", "fwded_ipv4"): (23, 42)}

    def apply(self, script):
        self.scripts.append(script)
        for fam, name in re.findall(r"^table (\S+) (\S+) \{", script, re.M):
            self.kernel[(fam, name)] = f"listing of {fam} {name} #{len(self.scripts)}"
        for fam, name, _chain in re.findall(r"^flush chain (\S+) (\S+) (\S+)$", script, re.M):
            self.kernel[(fam, name)] += f" +{len(self.scripts)}"

    def tables(self):
        return set(self.kernel)

    def listing(self, family, table):
        return self.kernel.get((family, table))

    def counters(self, family, table):
        return self.counter_values if (family, table) in self.kernel else {}

    def supports_flowtable(self, device):
        return (False, "Error: no nf_flow_table")


def plan(forwardings=()):
    return Plan(internal_v4=(ipaddress.ip_network("192.168.42.0/24"),), forwardings=forwardings)


FWD = parse_forwardings({"forwardings": [{"port": "8080", "dest_addr": "192.168.42.23"}]}, "x")


def run(applier, p):
    result = Result()
    applier._firewall(p, {"uplink0", "lan0"}, result)
    return result


def test_first_apply_rebuilds_then_nothing_is_sent(tmp_path):
    nft = FakeNft()
    nft.kernel[("inet", "router7")] = "left by a netconfigd that lost its state"
    a = Applier(ipr_factory=object, nft=nft, state_file=tmp_path / "fw.json")
    assert run(a, plan()).firewall == "rebuilt"
    assert "counter fwded_ipv4 { packets 23 bytes 42 }" in nft.scripts[0]
    assert "flowtable" not in nft.scripts[0]  # the kernel refused one
    assert run(a, plan()).firewall == "unchanged"
    assert len(nft.scripts) == 1


def test_forwarding_change_sends_one_chain(tmp_path):
    nft = FakeNft()
    a = Applier(ipr_factory=object, nft=nft)
    run(a, plan())
    r = run(a, plan(FWD))
    assert r.firewall == "chains: ip router7-nat portforwardings"
    assert nft.scripts[-1].startswith("flush chain ip router7-nat portforwardings\n")


def test_restart_remembers_through_the_state_file(tmp_path):
    nft = FakeNft()
    run(Applier(ipr_factory=object, nft=nft, state_file=tmp_path / "fw.json"), plan())
    again = Applier(ipr_factory=object, nft=nft, state_file=tmp_path / "fw.json")  # new process
    assert run(again, plan()).firewall == "unchanged"
    assert len(nft.scripts) == 1


def test_tables_edited_by_hand_are_rebuilt(tmp_path):
    nft = FakeNft()
    a = Applier(ipr_factory=object, nft=nft)
    run(a, plan())
    nft.kernel[("ip", "router7-nat")] = "someone added a rule"
    assert run(a, plan()).firewall == "rebuilt"
    del nft.kernel[("inet", "router7")]  # nft flush ruleset, more or less
    assert run(a, plan()).firewall == "rebuilt"


def test_failed_transaction_is_an_error_and_the_old_state_still_counts(tmp_path):
    nft = FakeNft()
    a = Applier(ipr_factory=object, nft=nft)
    run(a, plan())
    ok = nft.apply

    def fail(script):
        raise NftError("nft -f - failed: Error: boom")

    nft.apply = fail
    r = run(a, plan(FWD))
    assert r.firewall == "failed" and "boom" in r.errors[0]
    nft.apply = ok
    # The kernel kept the old tables (a batch is all or nothing): only the chain is sent.
    assert run(a, plan(FWD)).firewall == "chains: ip router7-nat portforwardings"


def test_links_found_by_mac_spoofed_mac_or_name():
    specs = (
        LinkSpec("uplink0", ("02:00:00:00:00:01",)),
        LinkSpec("lan0", ("02:00:00:00:00:02", "02:00:00:00:00:aa"), spoof_mac="02:00:00:00:00:aa"),
        LinkSpec("wg0"),
    )

    def link(name, mac, master=None):
        return Link(1, name, mac, 1500, True, None, master)

    assert find_spec(link("eth0", "02:00:00:00:00:01"), specs).name == "uplink0"
    assert find_spec(link("lan0", "02:00:00:00:00:aa"), specs).name == "lan0"  # after spoofing
    assert find_spec(link("wg0", None), specs).name == "wg0"
    assert find_spec(link("eth7", "02:00:00:00:00:99"), specs) is None
    # A bridge member keeps its name: the bridge, not the port, is lan0.
    assert find_spec(link("eth1", "02:00:00:00:00:02", master=5), specs) is None


class Recorder:
    """Stands in for the link, WireGuard and address appliers: notes what ran, in order."""

    def __init__(self, events, nft):
        self.events, self.nft, self.ipr = events, nft, None
        self.sysctls = None

    def apply(self, plan, names=None):
        if names is None:  # LinkApplier.apply(plan)
            self.events.append("links")
            return []
        self.events.append(f"addresses (nft scripts so far: {len(self.nft.scripts)})")
        self.sysctls = dict(plan.sysctls)
        return [], False

    def create_links(self, wireguard):
        return []

    def configure(self, wireguard):
        return []


class NoNetlink:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def applier_with_recorders(monkeypatch, nft):
    import router7.netconfigd.apply as apply_mod

    monkeypatch.setattr(apply_mod, "read_links", lambda ipr: [])
    a = Applier(ipr_factory=NoNetlink, nft=nft)
    events = []
    a._links = a._wireguard = a._addresses = Recorder(events, nft)
    return a, events


def test_ruleset_is_loaded_before_addresses_routes_and_forwarding(monkeypatch):
    nft = FakeNft()
    a, events = applier_with_recorders(monkeypatch, nft)
    p = Plan(sysctls=sysctls_for("uplink0"))
    result = a.apply(p)
    assert events == ["links", "addresses (nft scripts so far: 1)"]
    assert result.firewall == "rebuilt" and result.errors == []
    assert a._addresses.sysctls["net/ipv4/ip_forward"] == "1"
    assert a._addresses.sysctls["net/ipv6/conf/all/forwarding"] == "1"


def test_forwarding_off_while_no_ruleset_is_in_place(monkeypatch):
    nft = FakeNft()

    def fail(script):
        raise NftError("nft -f - failed: Error: Could not process rule")

    nft.apply = fail
    a, _ = applier_with_recorders(monkeypatch, nft)
    result = a.apply(Plan(sysctls=sysctls_for("uplink0")))
    assert result.firewall == "failed"
    assert "forwarding off: no firewall in place" in result.errors
    sysctls = a._addresses.sysctls
    assert sysctls["net/ipv4/ip_forward"] == sysctls["net/ipv6/conf/all/forwarding"] == "0"
    assert sysctls["net/ipv6/conf/uplink0/accept_ra"] == "2"  # the rest still applies
    # A failed change on top of a loaded ruleset leaves that ruleset (all or nothing): on.
    nft.kernel[("inet", "router7")] = nft.kernel[("ip", "router7-nat")] = "loaded earlier"
    result = a.apply(Plan(sysctls=sysctls_for("uplink0")))
    assert result.firewall == "failed" and a._addresses.sysctls["net/ipv4/ip_forward"] == "1"
