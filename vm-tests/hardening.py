# Every router7 service runs as the static user router7 with exactly the capabilities
# its unit grants, no new privileges, and still does its job.
import json

from router7 import SERVICES
from router7.lab.addresses import ADDR
from router7.lab.scenario import DIAGD, LAN_GW, curl_admin, http_get, wait_internet, wait_online
from router7.runtime import ports

# linux/capability.h
CAP_BITS = {
    "cap_net_bind_service": 10,
    "cap_net_admin": 12,
    "cap_net_raw": 13,
    "cap_sys_boot": 22,  # router7-updated: kexec and reboot
}


def caps(names):
    return sum(1 << CAP_BITS[n.lower()] for n in names.split())


def status(pid):
    fields = dict(
        line.split(":", 1)
        for line in router.succeed(f"cat /proc/{pid}/status").splitlines()
        if ":" in line
    )
    return {k: v.split() for k, v in fields.items()}


start_all()
up = wait_online(router, lan)
uid, gid = router.succeed("id -u router7").strip(), router.succeed("id -g router7").strip()

for svc in SERVICES:
    unit = f"router7-{svc}.service"
    with subtest(f"{unit} runs as router7 with only its unit's capabilities"):
        router.wait_for_unit(unit)
        pid = router.succeed(f"systemctl show -p MainPID --value {unit}").strip()
        granted = caps(router.succeed(f"systemctl show -p AmbientCapabilities --value {unit}"))
        st = status(pid)
        assert st["Uid"] == [uid] * 4 and st["Gid"] == [gid] * 4, (svc, st["Uid"], st["Gid"])
        assert int(st["CapEff"][0], 16) == granted, (
            f"{svc}: CapEff {st['CapEff'][0]}, unit grants {granted:x}"
        )
        assert int(st["CapBnd"][0], 16) & ~granted == 0, f"{svc}: bounding set {st['CapBnd'][0]}"
        assert st["NoNewPrivs"] == ["1"], svc

with subtest("and each one does its job"):
    # dhcp4, dhcp6, netconfigd: leases applied; dhcp4d, radvd: the LAN host's addresses.
    router.succeed("nft list table inet router7 >/dev/null")
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
    lan.succeed("ip -6 route show default | grep -q 'proto ra'")
    # dnsd
    assert ADDR.internet_v4 in lan.succeed(f"dig @{LAN_GW} +short {ADDR.www_name}").split()
    # statusd
    status_json = json.loads(http_get(lan, f"http://{LAN_GW}/status.json"))
    assert status_json["uplink4"]["address"] == str(up.wan), status_json["uplink4"]
    # diagd
    health = json.loads(http_get(lan, f"http://{LAN_GW}:{DIAGD}/health.json"))
    assert any(c["name"] == "link/uplink0" and c["ok"] for c in health["checks"]), health
    # backupd
    # (a backup needs the admin credential; without it: 401)
    lan.fail(f"curl -sSf http://{LAN_GW}:{ports.HTTP['backupd']}/backup.tar.gz -o /dev/null")
    listing = curl_admin(
        router, lan, f"http://{LAN_GW}:{ports.HTTP['backupd']}/backup.tar.gz | tar -tzf -"
    ).split()
    assert any(n.endswith("dhcp6/duid") for n in listing), listing
    # captured: the ring has the router's DHCP and neighbour discovery traffic.
    lan.wait_until_succeeds(
        f"curl -sSf 'http://{LAN_GW}:{ports.HTTP['captured']}/capture.pcapng?live=0' | tshark -r - -Y 'dhcp or dhcpv6 or icmpv6' | grep -q ."
    )
