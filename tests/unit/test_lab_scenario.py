"""router7.lab.scenario: the parsing the VM scenarios rely on, and the lab leases they need."""

import dataclasses
import json
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, Counter, generate_latest

from router7.lab import configs
from router7.lab.addresses import ADDR
from router7.lab.configs import StatePaths
from router7.lab.scenario import (
    SHORT_LEASES,
    LanPing,
    addresses,
    initramfs_unpack_seconds,
    parse_metrics,
    parse_time,
    renewed,
    use_short_leases,
)


def test_parse_metrics_reads_counters_by_label():
    registry = CollectorRegistry()
    sent = Counter("dhcp6_packets_sent", "sent", ["type"], registry=registry)
    sent.labels("rebind").inc(3)
    sent.labels("solicit").inc()
    samples = parse_metrics(generate_latest(registry).decode())
    assert samples[("dhcp6_packets_sent_total", (("type", "rebind"),))] == 3.0
    assert samples[("dhcp6_packets_sent_total", (("type", "solicit"),))] == 1.0


def test_parse_time_reads_state_file_times():
    assert parse_time("1970-01-01T00:01:40Z") == 100.0


class FakeMachine:
    def __init__(self, outputs):
        self.outputs = outputs
        self.commands = []

    def succeed(self, command):
        self.commands.append(command)
        return self.outputs.pop(0)

    def systemctl(self, q):
        self.commands.append(f"systemctl {q}")
        return 0, ""


def test_addresses_filters_by_prefix():
    out = [
        {"ifname": "eth0", "addr_info": [{"local": "192.168.42.23", "prefixlen": 24}]},
        {"ifname": "eth1", "addr_info": [{"local": "10.0.0.2", "prefixlen": 8}]},
        {},  # `ip -j` lists links without addresses too
    ]
    found = addresses(FakeMachine([json.dumps(out)]), 4, "192.168.42.0/24")
    assert [str(a) for a in found] == ["192.168.42.23/24"]


def test_renewed_compares_obtained_at():
    old = {"obtained_at": "2026-11-29T23:00:00Z"}
    new = {"obtained_at": "2026-11-29T23:01:00Z"}
    assert renewed(FakeMachine([json.dumps(old)]), "f", old) is None
    assert renewed(FakeMachine([json.dumps(new)]), "f", old) == new


def test_short_leases_restart_the_lab_kea_and_leave_nixos_nodes_alone():
    lab = SimpleNamespace(addr=ADDR)
    isp = FakeMachine([])
    isp.lab = lab
    use_short_leases(isp)
    assert lab.addr.dhcp4_valid_lifetime == SHORT_LEASES["dhcp4_valid_lifetime"]
    assert isp.commands == [
        "systemctl restart kea-dhcp4-server",
        "systemctl restart kea-dhcp6-server",
    ]
    nixos = FakeMachine([])
    use_short_leases(nixos)
    assert nixos.commands == []


def test_short_leases_leave_room_between_t2_and_the_end(tmp_path):
    """uplink_down pulls the cable right after a DHCPv4 renewal and needs both clients
    past T2 before the DHCPv4 lease ends; isp_outage needs the prefix to outlive it."""
    short = dataclasses.replace(ADDR, **SHORT_LEASES)
    st = StatePaths(tmp_path)
    v4 = json.loads(configs.kea_dhcp4(short, st))["Dhcp4"]
    v6 = json.loads(configs.kea_dhcp6(short, st, tmp_path / "hook"))["Dhcp6"]
    lease4 = v4["valid-lifetime"]
    assert v6["rebind-timer"] < v4["rebind-timer"] < lease4 - 8
    assert v6["valid-lifetime"] > 2 * lease4 + 60


def test_lan_ping_measures_the_gap_once_replies_are_back():
    log = "\n".join(
        [
            "[100.0] 64 bytes from 203.0.113.10: icmp_seq=1 ttl=63 time=1 ms",
            "[100.1] no answer yet for icmp_seq=2",
            "[130.1] 64 bytes from 203.0.113.10: icmp_seq=3 ttl=63 time=1 ms",
        ]
    )
    lan = FakeMachine(["", "", log])
    lan.wait_until_succeeds = lambda command, timeout: lan.commands.append(command)
    ping = LanPing(lan, "203.0.113.10", log="/tmp/p.log")
    ping.start()
    outage = ping.outage(replies=5)
    assert lan.commands[0].startswith("ping -D -n -O -i 0.1 -W 1 203.0.113.10 > /tmp/p.log")
    assert "tail -n 5 /tmp/p.log | grep -c 'bytes from' | grep -qx 5" in lan.commands
    assert "kill $(cat /tmp/p.log.pid)" in lan.commands
    assert round(outage.seconds, 1) == 30.0 and (outage.sent, outage.answered) == (3, 2)


def test_initramfs_unpack_seconds_reads_the_last_boot():
    first = "Linux version 6.1\n[    1.0] Trying to unpack rootfs image\n[    2.0] Freeing initrd memory"
    kexec = "Linux version 6.1\n[    1.5] Trying to unpack rootfs image\n[   31.5] Freeing initrd memory"
    router = SimpleNamespace(get_console_log=lambda: f"{first}\n{kexec}\n")
    assert initramfs_unpack_seconds(router) == 30.0
    router = SimpleNamespace(get_console_log=lambda: "Linux version 6.1\n[ 0.1] no initrd\n")
    assert initramfs_unpack_seconds(router) != initramfs_unpack_seconds(router)  # nan
