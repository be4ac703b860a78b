# The ISP delegates a /48: the router puts its first /64 on the LAN, the LAN host
# autoconfigures from it, takes the router as default gateway from its RA, reaches
# the internet host over IPv6 and over IPv4 (NAT), and dnsd answers both the
# internet's zone and the LAN host's own name.
import json

from router7.lab.addresses import ADDR
from router7.lab.scenario import LAN_GW, LAN_LEASES, read_json, wait_internet, wait_online

start_all()

with subtest("the ISP delegates a /48 and the LAN host gets addresses from the router"):
    up = wait_online(router, lan)
    assert ADDR.is_delegated_prefix(str(up.delegated)), f"{up.delegated}: not a /48 of the pool"
    assert up.lan_v6.network == up.lan64, f"{up.lan_v6} is not from the first /64 {up.lan64}"

with subtest("the LAN host's IPv6 default route comes from the router's RA"):
    lan0_ll = json.loads(router.succeed("ip -j -6 addr show dev lan0 scope link"))[0]["addr_info"][
        0
    ]["local"]
    lan.wait_until_succeeds(
        f"ip -6 route show default | grep -F 'via {lan0_ll} ' | grep -q 'proto ra'"
    )

with subtest("the LAN host reaches the internet host over IPv6 and IPv4"):
    # The internet host has no route to 192.168.42.0/24: an IPv4 answer proves NAT.
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)

with subtest("dnsd resolves the internet's zone and the LAN host's name"):
    assert (
        ADDR.internet_v4
        in lan.wait_until_succeeds(f"dig @{LAN_GW} +short {ADDR.www_name} A").split()
    )
    assert ADDR.internet_v6 in lan.succeed(f"dig @{LAN_GW} +short {ADDR.www_name} AAAA").split()
    me = str(up.lan_v4.ip)
    name = next(
        lease["hostname_override"] or lease["hostname"]
        for lease in read_json(router, LAN_LEASES)
        if lease["addr"] == me
    )
    assert name, f"the lease of {me} carries no host name"
    assert lan.succeed(f"dig @{LAN_GW} +short {name}.lan A").split() == [me]
    assert lan.succeed(f"dig @{LAN_GW} +short -x {me}").split() == [f"{name}.lan."]
