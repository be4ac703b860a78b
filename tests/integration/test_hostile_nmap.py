"""nmap against the whole router in the lab (issue 16): from the ISP side only the
forwarded port answers, on every uplink address (IPv4, IPv6, link-local); from a LAN
host exactly the documented management ports answer (router7.runtime.ports, so a
service added there, such as updated on 8078, is expected here too)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from router7.lab import Lab
from router7.lab.router import LAN_ADDRESS
from router7.runtime import ports
from router7.runtime.statefile import write_json_atomic
from tests.helpers.polling import log_files, wait_for
from tests.integration.conftest import lab_unavailable, session_prefix, start_router

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAN_GW = LAN_ADDRESS.split("/")[0]
FORWARDED = 8080
BEHIND = "192.168.42.250"  # a LAN address outside dhcp4d's pool, added to lan1 by hand
TCP = ["nmap", "-Pn", "-n", "-sS", "-p-", "-T4", "--min-rate", "8000", "--max-retries", "1", "-oG", "-"]  # fmt: skip
UDP = ["nmap", "-Pn", "-n", "-sU", "-p", "53,67,68,123,546,547,5353,7733,8053", "-oG", "-"]


def open_ports(scan: str) -> set[str]:
    """Ports nmap's grepable output reports as exactly 'open' (not open|filtered)."""
    found = set()
    for line in scan.splitlines():
        if "Ports:" in line:
            for entry in line.split("Ports:")[1].split("\t")[0].split(","):
                if entry.strip():
                    port, state, proto = entry.strip().split("/")[:3]
                    if state == "open":
                        found.add(f"{port}/{proto}")
    return found


@pytest.fixture(scope="module")
def router_lab():
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lab = Lab(session_prefix("n"), lan_hosts=1)
    try:
        lab.up()
        perm = lab.state_dir / "router" / "perm"
        write_json_atomic(
            perm / "portforwardings.json",
            {"forwardings": [{"proto": "tcp", "port": str(FORWARDED), "dest_addr": BEHIND,
                              "dest_port": "80"}]},
        )  # fmt: skip
        router = start_router(lab, {"netconfigd", "dhcp4", "dhcp6", "dhcp4d", "dnsd"})
        lab.exec("lan1", "ip", "addr", "add", f"{BEHIND}/24", "dev", "eth0")
        server = lab.popen("lan1", "python3", "-m", "http.server", "--bind", BEHIND, "80")
        try:
            yield lab, router
        finally:
            server.kill()
    finally:
        lab.down()


def uplink_addresses(lab, router) -> list[str]:
    def ready():
        v4 = json.loads((router.perm / "dhcp4/wire/lease.json").read_text())["address"]
        v6 = json.loads((router.perm / "dhcp6/wire/lease.json").read_text())["addresses"]
        out = lab.exec("router", "ip", "-j", "addr", "show", "dev", "uplink0").stdout
        have = {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}
        want = [str(ipaddress.ip_interface(v4).ip), *(a["address"] for a in v6)]
        return want if all(a in have for a in want) else None

    logs = log_files(router.logs)
    return wait_for(lambda: _quiet(ready), "the uplink addresses", 90, interval=0.5, logs=logs)


def _quiet(fn):
    try:
        return fn()
    except (OSError, ValueError, KeyError):
        return None


def test_from_the_isp_only_the_forwarded_port_answers(router_lab):
    lab, router = router_lab
    addresses = uplink_addresses(lab, router)
    link_local = lab.link_local("router", "uplink0")
    url = f"http://{addresses[0]}:{FORWARDED}/"

    def forwarded():
        return lab.exec("isp", "curl", "-sS", "-m", "2", "-o", "/dev/null", url, check=False)

    wait_for(
        lambda: forwarded().returncode == 0,
        f"the forwarding {url} -> {BEHIND}:80",
        60,
        interval=1,
        logs=log_files(router.logs),
    )
    targets = [*addresses, f"{link_local}%down0"]
    for target in targets:
        six = ["-6"] if ":" in target else []
        tcp = open_ports(lab.exec("isp", *TCP, *six, target, timeout=300).stdout)
        expected = {f"{FORWARDED}/tcp"} if target == addresses[0] else set()
        assert tcp == expected, (target, tcp)
        udp = open_ports(lab.exec("isp", *UDP, *six, target, timeout=300).stdout)
        assert udp == set(), (target, udp)


def test_from_a_lan_host_exactly_the_documented_ports_answer(router_lab):
    lab, router = router_lab
    uplink_addresses(lab, router)  # everything is up
    running = {s.name for s in router.services()}
    expected = {f"{port}/tcp" for name, port in ports.HTTP.items() if name in running}
    expected.add(f"{ports.DNS}/tcp")
    if "captured" in running:
        expected.add(f"{ports.CAPTURED_SSH}/tcp")

    def scan():
        found = open_ports(lab.exec("lan1", *TCP, LAN_GW, timeout=300).stdout)
        return found if found == expected else None

    # Services bind lan0's address as they come up: poll until all of them have.
    found = wait_for(scan, f"exactly {sorted(expected)} open on {LAN_GW}", 120, interval=2)
    assert found == expected
