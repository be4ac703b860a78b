# The ISP renumbers: it delegates a /48 from another pool. At its next Renew the
# router moves the LAN to the new prefix's first /64 and deprecates the old one
# (RFC 9096): the LAN host keeps the old address with preferred lifetime 0 and
# reaches the internet from the new one.
import ipaddress
import json

from router7.lab.addresses import ADDR
from router7.lab.scenario import (
    LEASE6,
    read_json,
    use_short_leases,
    wait_for,
    wait_internet,
    wait_online,
)

NEW_POOL = ipaddress.ip_network("2001:db8:200::/40")


def lan_v6():
    """The LAN host's global IPv6 addresses: {address: preferred lifetime (s)}."""
    out = json.loads(lan.succeed("ip -j -6 addr show scope global"))
    return {
        ipaddress.ip_address(a["local"]): a.get("preferred_life_time")
        for link in out
        for a in link.get("addr_info", [])
        if "local" in a
    }


def new_prefix():
    for p in read_json(router, LEASE6)["prefixes"]:
        if ipaddress.ip_network(p["prefix"]).subnet_of(NEW_POOL):
            return ipaddress.ip_network(p["prefix"])
    return None


use_short_leases(isp)
start_all()
up = wait_online(router, lan)
old64 = up.lan64
assert not up.delegated.subnet_of(NEW_POOL)

with subtest("the ISP renumbers: the router gets a /48 from the new pool at its next Renew"):
    # kea-dhcp6 restarts with the new pool and without its leases: through the lab
    # under router7-vmtest, through the isp node's specialisation under NixOS.
    if hasattr(isp, "lab"):
        isp.lab.renumber_prefix_delegation(str(NEW_POOL))
    else:
        isp.succeed(
            "/run/current-system/specialisation/renumbered/bin/switch-to-configuration test"
        )
    delegated = wait_for(new_prefix, "a delegated prefix from the new pool")
    new64 = next(delegated.subnets(new_prefix=64))
    previous = [p["prefix"] for p in read_json(router, LEASE6)["previous_prefixes"]]
    assert str(up.delegated) in previous, previous

with subtest("lan0 moves to the new /64"):
    router.wait_until_succeeds(f"ip -6 addr show dev lan0 | grep -qF ' {new64[1]}/64 '")
    router.wait_until_fails(f"ip -6 addr show dev lan0 to {up.delegated} | grep -q inet6")

with subtest("the LAN host takes the new /64 and deprecates the old one"):
    lan.wait_until_succeeds(f"ip -6 addr show to {new64} | grep -q inet6")
    # Deprecated, not gone: connections from it keep working until it runs out.
    wait_for(
        lambda: (old := [p for a, p in lan_v6().items() if a in old64]) and set(old) == {0},
        "the LAN host's old address, still there, to be deprecated (preferred lifetime 0)",
    )
    src = lan.succeed(f"ip -6 route get {ADDR.internet_v6}")
    assert ipaddress.ip_address(src.split(" src ")[1].split()[0]) in new64, src
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
