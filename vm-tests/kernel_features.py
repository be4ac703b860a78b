# What the host kernel of CI cannot run, the image's kernel does: netconfigd applies
# its ruleset with the flowtable fast path, and a WireGuard interface from
# /perm/wireguard.json comes up with its address and port.
import json

from router7.lab.addresses import ADDR
from router7.lab.scenario import read_json, wait_internet, wait_online

# A key pair is not needed to bring a tunnel up; any 32 bytes make a private key.
KEY = "YNqHwpcAmVj0lVzPSt3oUnL7cRPKB/geVU+X5ytKLjI="


def write(path, obj):
    router.succeed(f"printf '%s\\n' '{json.dumps(obj)}' > {path}.tmp && mv {path}.tmp {path}")


start_all()
up = wait_online(router, lan)

with subtest("netconfigd's ruleset has the flowtable fast path, and traffic flows through it"):
    ruleset = router.succeed("nft list table inet router7")
    assert "flowtable fastpath" in ruleset, ruleset
    assert "devices = { lan0, uplink0 }" in ruleset, ruleset
    assert "flow add @fastpath" in ruleset, ruleset
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)

with subtest("a WireGuard interface from /perm/wireguard.json comes up"):
    interfaces = read_json(router, "/perm/interfaces.json")
    interfaces["interfaces"].append({"name": "wg0", "addr": "10.22.100.1/24"})
    write("/perm/interfaces.json", interfaces)
    peer = {"public_key": KEY, "allowed_ips": ["10.22.0.0/16"]}
    write(
        "/perm/wireguard.json",
        {"interfaces": [{"name": "wg0", "private_key": KEY, "port": 51820, "peers": [peer]}]},
    )
    router.systemctl("kill -s USR1 router7-netconfigd")
    router.wait_until_succeeds("ip -4 addr show dev wg0 | grep -qF ' 10.22.100.1/24 '")
    link = json.loads(router.succeed("ip -j -d link show dev wg0"))[0]
    assert link["linkinfo"]["info_kind"] == "wireguard", link
    assert "UP" in link["flags"], link["flags"]
    router.succeed("ss -Hlun 'sport = :51820' | grep -q 51820")
    assert "udp dport 51820 accept" in router.succeed("nft list table inet router7")
    router.fail("journalctl -u router7-netconfigd | grep -q 'has no WireGuard'")
    # The rest of the router is untouched by the new interface.
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
