"""Uplink failover in the namespace lab: a second ISP (isp2) on the router's uplink1.

One lab, one router start: the LAN host's traffic (a UDP flow every 50 ms on one
socket, so one conntrack entry) moves to the backup when the primary's link goes
down, comes back when it returns, and does the same when the primary ISP silently
stops forwarding with its link up. Times are printed (bench/failover.py measures
them properly); what is asserted is where the traffic goes and the state file.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from router7.lab import Lab, pathprobe
from router7.lab.failover import BACKUP_V4, PRIMARY_V4, Stopwatch, break_primary, restore_primary
from tests.helpers.polling import log_files, wait_for
from tests.integration.conftest import (
    lab_unavailable,
    read_json,
    session_prefix,
    start_router,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

NEEDED = {"netconfigd", "dhcp4", "dhcp6", "dhcp4d", "radvd", "failoverd"}


@pytest.fixture(scope="module")
def failover_lab():
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lab = Lab(session_prefix("f"), lan_hosts=1, isp2=True)
    watch = None
    try:
        lab.up()
        router = start_router(lab, NEEDED)
        watch = Stopwatch(lab)
        watch.start_server()
        yield lab, router, watch
    finally:
        if watch is not None:
            watch.stop()
            if watch.v6 is not None:
                watch.v6.stop()
        lab.down()


def wait(predicate, timeout, what, router):
    return wait_for(predicate, what, timeout, interval=0.2, logs=log_files(router.logs))


def active(router):
    return (read_json(router.perm / "failover/state.json") or {}).get("active")


def lan_has_v4(lab):
    out = lab.exec("lan1", "ip", "-j", "-4", "addr", "show", "dev", "eth0").stdout
    return any(
        ipaddress.ip_address(a["local"]) in ipaddress.ip_network("192.168.42.0/24")
        for link in json.loads(out)
        for a in link.get("addr_info", [])
    )


PRIMARY_V6 = ipaddress.ip_network("2001:db8:100::/40")  # ADDR.pd_pool
BACKUP_V6 = ipaddress.ip_network("2001:db8:200::/40")  # ISP2_ADDR.pd_pool


def lan_v6(lab):
    """lan1's global IPv6 addresses: {address: preferred lifetime}."""
    out = lab.exec("lan1", "ip", "-j", "-6", "addr", "show", "dev", "eth0", "scope", "global")
    return {
        ipaddress.ip_address(a["local"]): a.get("preferred_life_time", 0)
        for link in json.loads(out.stdout)
        for a in link.get("addr_info", [])
        if "local" in a
    }


def preferred_in(lab, pool):
    return [a for a, pref in lan_v6(lab).items() if a in pool and pref]


def deprecated_in(lab, pool):
    return [a for a, pref in lan_v6(lab).items() if a in pool and not pref]


def via_v6(watch6, pool) -> bool:
    via = watch6.latest_via()
    return bool(via) and ipaddress.ip_address(via) in pool


def test_both_uplinks_come_up(failover_lab):
    lab, router, watch = failover_lab
    for path in ("dhcp4/wire/lease.json", "dhcp4/uplink1/lease.json"):
        wait(lambda p=path: (read_json(router.perm / p) or {}).get("address"), 60, path, router)
    wait(lambda: active(router) == "uplink0", 30, "failoverd's state: uplink0 active", router)
    rules = lab.exec("router", "ip", "rule").stdout
    assert "suppress_prefixlength 0" in rules and "lookup 101" in rules
    wait(lambda: lan_has_v4(lab), 60, "lan1's DHCPv4 address", router)
    watch.start()
    wait(
        lambda: (watch.latest_via() or "").startswith(PRIMARY_V4), 30, "traffic via uplink0", router
    )
    # IPv6: a /64 of each uplink's delegation on the LAN, and source routing per uplink.
    wait(lambda: preferred_in(lab, PRIMARY_V6), 60, "lan1's address from uplink0's prefix", router)
    wait(lambda: preferred_in(lab, BACKUP_V6), 60, "lan1's address from uplink1's prefix", router)
    rules6 = lab.exec("router", "ip", "-6", "rule").stdout
    assert "from 2001:db8:100::/48 lookup 100" in rules6
    assert "from 2001:db8:200::/48 lookup 101" in rules6
    watch.v6 = Stopwatch(lab, target=lab.addr.internet_v6)
    watch.v6.start()
    wait(lambda: watch.v6.latest_via(), 30, "IPv6 replies to lan1", router)


@pytest.mark.parametrize("how", ["link", "silent"])
def test_traffic_moves_to_the_backup_and_back(failover_lab, how):
    lab, router, watch = failover_lab
    if watch.sender is None or watch.v6 is None:
        pytest.skip("the lab did not come up (see test_both_uplinks_come_up)")
    t0 = watch.now()
    break_primary(lab, how)
    try:
        wait(lambda: active(router) == "uplink1", 30, f"uplink1 active after {how} loss", router)
        wait(
            lambda: (watch.latest_via() or "").startswith(BACKUP_V4),
            30,
            f"the LAN host's flow through uplink1 after {how} loss",
            router,
        )
        state = read_json(router.perm / "failover/state.json")
        reason = state["uplinks"]["uplink0"]["reason"]
        assert ("carrier lost" if how == "link" else "probe rounds lost") in reason
        # IPv6: uplink0's prefix is deprecated on the LAN, traffic is sourced from uplink1's.
        wait(lambda: deprecated_in(lab, PRIMARY_V6), 30, "uplink0's prefix deprecated", router)
        t6 = watch.now()
        wait(
            lambda: via_v6(watch.v6, BACKUP_V6) and watch.v6.records()[-1]["sent"] > t6,
            30,
            "IPv6 through uplink1",
            router,
        )
    finally:
        t1 = watch.now()
        restore_primary(lab, how)
    wait(lambda: active(router) == "uplink0", 60, f"fail-back after {how} loss", router)
    wait(lambda: preferred_in(lab, PRIMARY_V6), 30, "uplink0's prefix preferred again", router)
    wait(
        lambda: (watch.latest_via() or "").startswith(PRIMARY_V4), 30, "traffic via uplink0", router
    )
    records = watch.records()
    down = pathprobe.switch_time(records, PRIMARY_V4, BACKUP_V4, after=t0)
    back = pathprobe.switch_time(records, BACKUP_V4, PRIMARY_V4, after=t1)
    runs = [(r["via"], round(r["sent"] - t0, 2)) for r in records if r["sent"] >= t0]
    changes = [v for i, v in enumerate(runs) if i == 0 or v[0] != runs[i - 1][0]]
    print(f"{how} loss: failover {down} s, fail-back {back} s; t1={t1 - t0:.2f} path {changes}")
    assert down is not None and back is not None
