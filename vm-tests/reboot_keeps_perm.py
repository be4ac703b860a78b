# A reboot of the router keeps /perm: the same DUID, delegated prefix, WAN address
# and LAN leases, and the status page lists the same clients. After the reboot the
# router renews what it had (Rebind, INIT-REBOOT) and never starts over with a
# Solicit or DISCOVER.
import json

from router7.lab.scenario import (
    LAN_GW,
    LAN_LEASES,
    LEASE4,
    LEASE6,
    dhcp4_sent,
    dhcp6_sent,
    http_get,
    read_json,
    renewed,
    wait_for,
    wait_online,
)


def remembered():
    """What the router must remember, read from /perm and from the status page."""
    return {
        "duid": router.succeed("od -An -tx1 /perm/dhcp6/duid").split(),
        "client_duid": read_json(router, LEASE6)["client_duid"],
        "prefix": [p["prefix"] for p in read_json(router, LEASE6)["prefixes"]],
        "wan": read_json(router, LEASE4)["address"],
        "leases": sorted(
            (lease["hardware_addr"], lease["addr"]) for lease in read_json(router, LAN_LEASES)
        ),
        "status clients": sorted(
            (c["hardware_addr"], c["addr"], c["hostname"])
            for c in json.loads(http_get(lan, f"http://{LAN_GW}/status.json"))["lan"]["leases"]
        ),
    }


start_all()
up = wait_online(router, lan)
before = remembered()
assert before["duid"] and before["leases"] and before["status clients"], before

with subtest("the router reboots"):
    lease4, lease6 = read_json(router, LEASE4), read_json(router, LEASE6)
    router.shutdown()
    router.start()
    again = wait_online(router, lan)

with subtest("after the reboot: same DUID, prefix, WAN address, LAN leases, status page"):
    after = remembered()
    for key in before:
        assert after[key] == before[key], (
            f"{key}: {before[key]} before the reboot, {after[key]} after"
        )
    assert again.lan_v4 == up.lan_v4 and again.lan64 == up.lan64

with subtest("the router renewed: Rebind and INIT-REBOOT, no Solicit, no DISCOVER"):
    wait_for(lambda: renewed(router, LEASE4, lease4), "the DHCPv4 lease to be renewed")
    wait_for(lambda: renewed(router, LEASE6, lease6), "the DHCPv6 lease to be renewed")
    # The counters start at zero with each service: they cover the whole boot only if
    # neither client restarted.
    for unit in ("router7-dhcp4", "router7-dhcp6"):
        assert router.succeed(f"systemctl show -p NRestarts --value {unit}").strip() == "0", unit
    assert dhcp6_sent(lan, "solicit") == 0 and dhcp6_sent(lan, "rebind") >= 1
    assert dhcp4_sent(lan, "discover") == 0 and dhcp4_sent(lan, "request") >= 1
    router.succeed(
        "journalctl -b -u router7-dhcp6 | grep -q 'stored lease valid until .*: rebinding'"
    )
    router.succeed("journalctl -b -u router7-dhcp4 | grep -q 'INIT-REBOOT'")
