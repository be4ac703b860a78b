# A corrupt /perm/interfaces.json: netconfigd names the file and the field, keeps the
# last good configuration (also across its own restart), and the router keeps
# serving the LAN.
from router7.lab.addresses import ADDR
from router7.lab.scenario import LAN_GW, wait_internet, wait_online

UNITS = [f"router7-{s}" for s in ("netconfigd", "dhcp4", "dhcp6", "dhcp4d", "radvd", "dnsd")]


def configuration_kept():
    router.succeed(f"ip -4 addr show dev lan0 | grep -qF ' {LAN_GW}/24 '")
    router.succeed(f"ip -4 addr show dev uplink0 | grep -qF ' {up.wan} '")
    router.succeed(f"ip -6 addr show dev lan0 | grep -qF ' {up.lan64[1]}/64 '")
    for unit in UNITS:
        router.succeed(f"systemctl is-active --quiet {unit}")
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
    assert ADDR.internet_v4 in lan.succeed(f"dig @{LAN_GW} +short {ADDR.www_name}").split()


start_all()
up = wait_online(router, lan)
good = router.succeed("cat /perm/interfaces.json")

with subtest("a corrupt interfaces.json is reported and the last good one kept"):
    router.succeed('printf \'{"interfaces": [{"name": 42\' > /perm/interfaces.json')
    router.systemctl("kill -s USR1 router7-netconfigd")
    router.wait_until_succeeds(
        "journalctl -u router7-netconfigd | grep -F '/perm/interfaces.json' | grep -q 'last good'"
    )
    configuration_kept()

with subtest("a restart of netconfigd keeps the last good configuration too"):
    router.systemctl("restart router7-netconfigd")
    router.wait_for_unit("router7-netconfigd.service")
    configuration_kept()

with subtest("a good file again is applied"):
    router.succeed(f"cat > /perm/interfaces.json <<'EOF'\n{good}\nEOF")
    router.systemctl("kill -s USR1 router7-netconfigd")
    configuration_kept()
