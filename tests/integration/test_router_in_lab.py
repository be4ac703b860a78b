"""The whole router in the lab: router7's services under supervisord in the router
namespace, real kea ISP upstream, real dhcpcd clients on the LAN.

This is the acceptance test of the services working together: nothing here is
configured by hand.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import time

import pytest

from router7.lab import ADDR, Lab
from router7.lab.router import LAN_ADDRESS
from tests.helpers.polling import log_files, wait_for
from tests.integration.conftest import (
    lab_unavailable,
    read_json,
    session_prefix,
    start_router,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Short leases, so an outage of twice the lease time fits in a test.
LEASE4 = 30
SHORT = dataclasses.replace(
    ADDR, dhcp4_valid_lifetime=LEASE4, dhcp6_preferred_lifetime=60, dhcp6_valid_lifetime=120
)
LAN_GW = LAN_ADDRESS.split("/")[0]
NEEDED = {"netconfigd", "dhcp4", "dhcp6", "dhcp4d", "radvd", "dnsd"}


def wait(predicate, timeout, what, router=None):
    """wait_for every 0.5 s; on timeout, show the tails of the router's service logs."""
    logs = log_files(router.logs) if router is not None else ()
    return wait_for(predicate, what, timeout, interval=0.5, logs=logs)


@pytest.fixture(scope="module")
def router_lab():
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lab = Lab(session_prefix("e"), lan_hosts=2, addresses=SHORT)
    try:
        lab.up()
        router = start_router(lab, NEEDED)
        yield lab, router
    finally:
        lab.down()


def addresses(lab, node, ifname, family):
    out = lab.exec(node, "ip", "-j", f"-{family}", "addr", "show", "dev", ifname).stdout
    return [
        ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
        for link in json.loads(out)
        for a in link.get("addr_info", [])
        if a.get("scope") == "global"
    ]


def fetch(lab, node, url, family):
    r = lab.exec(node, "curl", f"-{family}", "-sS", "--max-time", "5", url, check=False)
    return r.stdout if r.returncode == 0 else None


def test_router_serves_the_lan(router_lab):
    lab, router = router_lab
    lease4 = router.perm / "dhcp4/wire/lease.json"
    lease6 = router.perm / "dhcp6/wire/lease.json"
    wan = wait(lambda: (read_json(lease4) or {}).get("address"), 30, "a DHCPv4 lease", router)
    assert ipaddress.ip_interface(wan) in [
        ipaddress.ip_interface(f"{a['address']}/25") for a in lab.leases4()
    ]
    wait(
        lambda: ipaddress.ip_interface(wan) in addresses(lab, "router", "uplink0", 4),
        20,
        "netconfigd to put the WAN address on uplink0",
        router,
    )
    prefix = wait(
        lambda: [p["prefix"] for p in (read_json(lease6) or {}).get("prefixes", [])],
        40,
        "a delegated prefix",
        router,
    )[0]
    delegated = ipaddress.ip_network(prefix)
    assert delegated.prefixlen == 48 and delegated.subnet_of(ipaddress.ip_network(ADDR.pd_pool))
    lan64 = next(delegated.subnets(new_prefix=64))
    wait(
        lambda: ipaddress.ip_interface(f"{lan64[1]}/64") in addresses(lab, "router", "lan0", 6),
        20,
        "netconfigd to put <prefix>::1/64 on lan0",
        router,
    )

    # A LAN host: DHCPv4 from dhcp4d, SLAAC from radvd, DNS from dnsd.
    lan = ipaddress.ip_network(LAN_ADDRESS, strict=False)
    v4 = wait(
        lambda: [a for a in addresses(lab, "lan1", "eth0", 4) if a.ip in lan],
        60,
        "lan1's DHCPv4 address",
        router,
    )[0]
    v6 = wait(
        lambda: [a for a in addresses(lab, "lan1", "eth0", 6) if a.ip in lan64],
        40,
        "lan1's SLAAC address from the delegated prefix",
        router,
    )[0]
    body = ADDR.http_body
    assert wait(lambda: fetch(lab, "lan1", "http://203.0.113.10/", 4), 20, "IPv4 via NAT") == body
    url6 = f"http://[{ADDR.internet_v6}]/"
    assert wait(lambda: fetch(lab, "lan1", url6, 6), 20, "IPv6 via the delegated prefix") == body
    dig = lab.exec("lan1", "dig", f"@{LAN_GW}", "+short", ADDR.www_name).stdout.split()
    assert ADDR.internet_v4 in dig
    own = lab.exec("lan1", "dig", f"@{LAN_GW}", "+short", "lan1.lan").stdout.split()
    assert str(v4.ip) in own
    # The internet side sees the router's WAN address, not the LAN host's.
    assert v6.ip.version == 6

    # Nothing of the router's management answers from the ISP side.
    wan_ip = str(ipaddress.ip_interface(wan).ip)
    for port in (53, 8053, 8066, 8067, 7733):
        probe = lab.exec(
            "isp", "curl", "-sS", "--max-time", "2", f"http://{wan_ip}:{port}/", check=False
        )
        assert probe.returncode != 0, f"port {port} answered from the ISP side"


def lan_v6(lab, node="lan1"):
    """Global IPv6 addresses of a LAN host: {address: preferred lifetime in seconds}."""
    out = lab.exec(node, "ip", "-j", "-6", "addr", "show", "dev", "eth0", "scope", "global")
    return {
        ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}"): a.get("preferred_life_time")
        for link in json.loads(out.stdout)
        for a in link.get("addr_info", [])
        if "local" in a  # `ip -j` lists links without addresses as empty entries
    }


def test_isp_renumbering_moves_the_lan_to_the_new_prefix(router_lab):
    lab, router = router_lab
    lease6 = router.perm / "dhcp6/wire/lease.json"
    old = ipaddress.ip_network((read_json(lease6) or {})["prefixes"][0]["prefix"])
    old64 = next(old.subnets(new_prefix=64))
    assert any(a.ip in old64 for a in lan_v6(lab)), "lan1 has no address from the old prefix"

    lab.renumber_prefix_delegation("2001:db8:200::/40")
    new = ipaddress.ip_network(
        wait(
            lambda: [
                p["prefix"]
                for p in (read_json(lease6) or {}).get("prefixes", [])
                if ipaddress.ip_network(p["prefix"]).subnet_of(
                    ipaddress.ip_network("2001:db8:200::/40")
                )
            ],
            90,
            "the router to get a prefix from the new pool at its next Renew",
            router,
        )[0]
    )
    previous = [p["prefix"] for p in read_json(lease6)["previous_prefixes"]]
    assert str(old) in previous
    new64 = next(new.subnets(new_prefix=64))
    wait(
        lambda: ipaddress.ip_interface(f"{new64[1]}/64") in addresses(lab, "router", "lan0", 6),
        20,
        "lan0's address to move to the new prefix",
        router,
    )
    assert not any(a.ip in old for a in addresses(lab, "router", "lan0", 6))
    # The LAN host autoconfigures from the new prefix and deprecates the old one
    # (RFC 9096): its old address stays valid for a while but is no longer preferred.
    wait(lambda: any(a.ip in new64 for a in lan_v6(lab)), 30, "lan1's new address", router)
    wait(
        lambda: all(pref == 0 for a, pref in lan_v6(lab).items() if a.ip in old64),
        30,
        "lan1's old address to be deprecated",
        router,
    )
    url6 = f"http://[{ADDR.internet_v6}]/"
    assert wait(lambda: fetch(lab, "lan1", url6, 6), 20, "IPv6 from the new prefix") == (
        ADDR.http_body
    )


def test_outage_longer_than_the_lease_keeps_the_router_online(router_lab):
    lab, router = router_lab
    lease4 = read_json(router.perm / "dhcp4/wire/lease.json")
    assert lease4, "no DHCPv4 lease (the previous test failed?)"
    wan = ipaddress.ip_interface(lease4["address"])
    lab.stop_peer("isp-dhcp4")
    lab.stop_peer("isp-dhcp6")
    try:
        time.sleep(2 * LEASE4 + 5)
        assert wan in addresses(lab, "router", "uplink0", 4)
        routes = lab.exec("router", "ip", "-4", "route", "show", "default").stdout
        assert ADDR.isp_access_v4 in routes
        assert (router.perm / "dhcp4/wire/lease.json").exists()
        assert fetch(lab, "lan1", "http://203.0.113.10/", 4) == ADDR.http_body
    finally:
        lab.start_peer("isp-dhcp4")
        lab.start_peer("isp-dhcp6")
    # Back to normal: the client renews with the server again.
    wait(
        lambda: any(a["address"] == str(wan.ip) for a in lab.leases4()),
        2 * LEASE4,
        "the DHCPv4 lease to be renewed after the outage",
        router,
    )
