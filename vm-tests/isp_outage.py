# The ISP's DHCPv4 and DHCPv6 servers stop until the DHCPv4 lease and the prefix's
# delegation have both run out: the router keeps its WAN address, default routes and
# delegated prefix, the LAN host its addresses (radvd's floor on a kept prefix), and
# the LAN keeps working. When the servers return, the router renews and keeps its prefix.
import time

from router7.lab.addresses import ADDR
from router7.lab.scenario import (
    LEASE4,
    LEASE6,
    now,
    parse_time,
    read_json,
    renewed,
    use_short_leases,
    wait_for,
    wait_internet,
    wait_online,
)


def configuration_kept():
    router.succeed(f"ip -4 addr show dev uplink0 | grep -qF ' {up.wan} '")
    router.succeed(f"ip -4 route show default | grep -qF 'via {ADDR.isp_access_v4} dev uplink0'")
    router.succeed("ip -6 route show default | grep -q 'dev uplink0'")
    router.succeed(f"ip -6 addr show dev lan0 | grep -qF ' {up.lan64[1]}/64 '")
    assert read_json(router, LEASE6)["prefixes"][0]["prefix"] == str(up.delegated)
    # Also when the delegation ran out before the late Rebind after the servers' return:
    # radvd never advertises a kept prefix below its floor (radvd/plan.py).
    lan.succeed(f"ip -6 addr show to {up.lan64} | grep -q inet6")
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)


use_short_leases(isp)
start_all()
up = wait_online(router, lan)
wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)

with subtest("the ISP's DHCP servers stop past both leases' end: nothing is lost"):
    isp.systemctl("stop kea-dhcp4-server")
    isp.systemctl("stop kea-dhcp6-server")
    lease4, lease6 = read_json(router, LEASE4), read_json(router, LEASE6)
    stopped = now(router)
    # Long enough that the DHCPv4 lease and the delegation run out and the DHCPv6
    # client has tried to renew in vain: otherwise the outage would go unnoticed.
    delegation_end = parse_time(lease6["prefixes"][0]["valid_until"])
    until = max(
        stopped + 2 * lease4["lease_time"], parse_time(lease6["renew_at"]) + 10, delegation_end + 30
    )
    while now(router) < until:
        time.sleep(min(15, max(1, until - now(router))))
        configuration_kept()
    assert parse_time(read_json(router, LEASE4)["expires_at"]) < now(router), (
        "the lease was renewed"
    )
    kept = read_json(router, LEASE6)["prefixes"][0]
    assert parse_time(kept["valid_until"]) < now(router), ("the delegation was renewed", kept)

with subtest("the servers return: the router renews, same address, same prefix"):
    isp.systemctl("start kea-dhcp4-server")
    isp.systemctl("start kea-dhcp6-server")
    renewed4 = wait_for(lambda: renewed(router, LEASE4, lease4), "a new DHCPv4 lease")
    renewed6 = wait_for(lambda: renewed(router, LEASE6, lease6), "a new DHCPv6 lease")
    assert renewed4["address"] == str(up.wan), renewed4["address"]
    assert [p["prefix"] for p in renewed6["prefixes"]] == [str(up.delegated)], renewed6["prefixes"]
    assert not renewed6.get("previous_prefixes"), renewed6["previous_prefixes"]
    configuration_kept()
