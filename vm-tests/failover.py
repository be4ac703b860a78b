# router7-vmtest: nix=none
# Uplink failover before a release (docs/failover.md): the image with a second uplink
# on a second ISP (isp2). One boot: the owner names the third NIC uplink1 in
# interfaces.json; its DHCP clients start from udev; then the primary's link is pulled
# (carrier loss) and later the primary ISP silently stops forwarding (link up), and
# each time the LAN host's IPv4 and IPv6 reach the internet through the backup, and
# come back to the primary when it returns.
import json
import time

from router7.lab.addresses import ADDR, ISP2_ADDR
from router7.lab.scenario import read_json, wait_for, wait_internet, wait_online

STATE = "/perm/failover/state.json"


def state():
    try:
        return read_json(router, STATE)
    except Exception:  # not written yet
        return {}


def active():
    return state().get("active")


def third_nic():
    """The router's NIC on isp2's segment: the one not yet named (PCI order: 3rd)."""
    for name in router.succeed("ls /sys/class/net").split():
        if name not in ("lo", "uplink0", "lan0", "uplink1"):
            return name, router.succeed(f"cat /sys/class/net/{name}/address").strip()
    raise AssertionError("no third NIC")


def reaches_internet_via_backup():
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
    # IPv6: the LAN host holds a preferred address from uplink1's delegation.
    lan.wait_until_succeeds(f"ip -6 addr show to {ISP2_ADDR.pd_pool} | grep -v deprecated | grep -q inet6")


start_all()
up = wait_online(router, lan)

with subtest("a second uplink from interfaces.json"):
    name, mac = third_nic()
    config = read_json(router, "/perm/interfaces.json")
    config["interfaces"].append({"hardware_addr": mac, "name": "uplink1", "priority": 1})
    config["failover"] = {"targets": [ADDR.internet_v4]}
    router.succeed(f"echo '{json.dumps(config)}' > /perm/interfaces.json.new")
    router.succeed("mv /perm/interfaces.json.new /perm/interfaces.json")
    router.succeed("systemctl kill -s USR1 router7-netconfigd router7-failoverd")
    router.wait_until_succeeds("test -e /sys/class/net/uplink1")
    router.wait_for_unit("router7-dhcp4@uplink1.service")
    router.wait_until_succeeds("grep -q '\"address\"' /perm/dhcp4/uplink1/lease.json")
    router.wait_until_succeeds("grep -q '\"prefix\"' /perm/dhcp6/uplink1/lease.json")
    wait_for(lambda: len(state().get("uplinks", {})) == 2 and active() == "uplink0", "failoverd")
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)

with subtest("link loss: uplink1 takes over at once"):
    router.send_monitor_command("set_link uplink off")
    wait_for(lambda: active() == "uplink1", "uplink1 active after link loss")
    assert state()["uplinks"]["uplink0"]["reason"] == "carrier lost", state()
    # netconfigd moves the default route once failoverd's state says so: a moment later.
    router.wait_until_succeeds("ip -4 route show default | grep -q 'dev uplink1'")
    reaches_internet_via_backup()

with subtest("link back: fail-back to uplink0"):
    router.send_monitor_command("set_link uplink on")
    wait_for(lambda: active() == "uplink0", "fail-back to uplink0")
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)

with subtest("silent loss: the primary ISP stops forwarding, its link stays up"):
    isp.succeed("sysctl -w net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0")
    started = time.monotonic()
    wait_for(lambda: active() == "uplink1", "uplink1 active after silent loss")
    print(f"silent loss noticed after {time.monotonic() - started:.1f} s (polled)")
    assert "probe rounds lost" in state()["uplinks"]["uplink0"]["reason"], state()
    reaches_internet_via_backup()
    isp.succeed("sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1")
    wait_for(lambda: active() == "uplink0", "fail-back after silent loss")
    wait_internet(lan, ADDR.internet_v4, ADDR.internet_v6, ADDR.http_body)
    assert state()["transitions"] == 4, state()
