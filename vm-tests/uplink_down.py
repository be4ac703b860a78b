# The uplink cable is pulled for longer than T2, then plugged back: the router keeps
# its configuration while the link is down and, once it is up again, gets its leases
# back with Rebind (DHCPv6) and a REQUEST for its address (DHCPv4), never a new
# Solicit or DISCOVER; the LAN host is back online without doing anything.
import re
import time

from router7.lab.addresses import ADDR
from router7.lab.scenario import (
    LEASE4,
    LEASE6,
    dhcp4_sent,
    dhcp6_sent,
    now,
    parse_time,
    read_json,
    renewed,
    use_short_leases,
    wait_for,
    wait_internet,
    wait_online,
)


def uplink_nic():
    """qemu's name of the NIC that is uplink0 inside the router (matched by MAC)."""
    mac = router.succeed("cat /sys/class/net/uplink0/address").strip().lower()
    for line in router.send_monitor_command("info network").splitlines():
        m = re.match(r"^(\S+): .*macaddr=([0-9a-f:]{17})", line.strip())
        if m and m.group(2).lower() == mac:
            return m.group(1)
    raise AssertionError(f"no NIC with MAC {mac} in qemu's 'info network'")


use_short_leases(isp)
start_all()
up = wait_online(router, lan)
wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
nic = uplink_nic()

with subtest("the uplink is down for longer than T2: the configuration stays"):
    # Pulled right after a DHCPv4 renewal, so that both clients reach T2 before the
    # DHCPv4 lease runs out.
    lease4 = read_json(router, LEASE4)
    wait_for(lambda: renewed(router, LEASE4, lease4), "a DHCPv4 renewal")
    router.send_monitor_command(f"set_link {nic} off")
    router.wait_until_succeeds("ip link show uplink0 | grep -q NO-CARRIER")
    lease4, lease6 = read_json(router, LEASE4), read_json(router, LEASE6)
    before = {t: dhcp4_sent(lan, t) for t in ("discover", "request")}
    before6 = {t: dhcp6_sent(lan, t) for t in ("solicit", "rebind")}
    # Both clients must be rebinding, yet neither lease may run out: that is the case
    # of a cable pulled for a while.
    t2 = max(parse_time(lease4["rebind_at"]), parse_time(lease6["rebind_at"]))
    end = min(parse_time(lease4["expires_at"]), parse_time(lease6["prefixes"][0]["valid_until"]))
    assert t2 + 3 < end, "the lab's leases leave no time between T2 and their end"
    while now(router) < t2 + 3:
        time.sleep(2)
    router.succeed(f"ip -4 addr show dev uplink0 | grep -qF ' {up.wan} '")
    router.succeed(f"ip -6 addr show dev lan0 | grep -qF ' {up.lan64[1]}/64 '")
    assert read_json(router, LEASE4)["address"] == str(up.wan)
    assert read_json(router, LEASE6)["prefixes"][0]["prefix"] == str(up.delegated)
    lan.succeed(f"ip -6 addr show to {up.lan64} | grep -q inet6")

with subtest("the uplink comes back: Rebind and REQUEST, no Solicit, no DISCOVER"):
    router.send_monitor_command(f"set_link {nic} on")
    plugged = now(router)
    renewed4 = wait_for(lambda: renewed(router, LEASE4, lease4), "a new DHCPv4 lease after link-up")
    print(f"DHCPv4 lease back {now(router) - plugged:.1f} s after link-up (polled every 2 s)")
    renewed6 = wait_for(lambda: renewed(router, LEASE6, lease6), "a new DHCPv6 lease after link-up")
    print(f"DHCPv6 lease back {now(router) - plugged:.1f} s after link-up (polled every 2 s)")
    assert renewed4["address"] == str(up.wan), renewed4["address"]
    assert [p["prefix"] for p in renewed6["prefixes"]] == [str(up.delegated)], renewed6["prefixes"]
    assert dhcp4_sent(lan, "discover") == before["discover"], "DHCPv4 started over with DISCOVER"
    assert dhcp4_sent(lan, "request") > before["request"]
    assert dhcp6_sent(lan, "solicit") == before6["solicit"], "DHCPv6 started over with Solicit"
    assert dhcp6_sent(lan, "rebind") > before6["rebind"]

with subtest("the LAN host is back online without action on it"):
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
