"""The lab itself: real kea/dnsmasq/radvd peers answering real clients.

These run against the session's lab (see conftest.py); the router namespace
plays a CPE with ISC dhclient running hook-less (-sf /bin/true), so nothing is
configured by the client and the assertions read its lease file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from router7.lab import ADDR, PEER_NAMES, Lab, LabError, mac_for, topology
from router7.lab import procs as lab_procs
from router7.lab.leases import current_leases4, current_leases6
from router7.lab.netns import netns_list

root = pytest.mark.root

DHCLIENT_CONF = {
    "4": "request subnet-mask, broadcast-address, routers, domain-name-servers;\n",
    "6": "request dhcp6.name-servers;\n",
}


class Dhclient:
    """ISC dhclient in the router namespace with per-test state files."""

    def __init__(self, lab: Lab, tmp: Path, family: str) -> None:
        self.lab, self.family = lab, family
        conf = tmp / "dhclient.conf"
        conf.write_text(DHCLIENT_CONF[family])
        self.lease = tmp / f"lease{family}"
        self.files = ["-cf", str(conf), "-lf", str(self.lease), "-pf", str(tmp / f"pid{family}")]

    def run(self, *args: str, timeout: int = 20) -> subprocess.CompletedProcess[str]:
        # `timeout` caps dhclient's own retry loop; -sf /bin/true: no config.
        return self.lab.exec(
            "router",
            "timeout",
            str(timeout),
            "dhclient",
            f"-{self.family}",
            *args,
            *self.files,
            "-sf",
            "/bin/true",
            "uplink0",
            timeout=timeout + 5,
        )


def dig(lab: Lab, server: str, name: str = ADDR.www_name, rtype: str = "A") -> str:
    out = lab.exec("isp", "dig", "+short", "+time=2", "+tries=1", f"@{server}", name, rtype)
    return out.stdout.strip()


def dig_fails(lab: Lab, server: str, name: str = ADDR.www_name) -> bool:
    """No answer from `server` (no reply at all, or SERVFAIL/REFUSED)."""
    cmd = ("dig", "+short", "+time=1", "+tries=1", f"@{server}", name)
    proc = lab.exec("isp", *cmd, check=False)
    return proc.returncode != 0 or ADDR.internet_v4 not in proc.stdout


@root
def test_isp_leases_ipv4_to_router(lab: Lab, tmp_path: Path, wait_until) -> None:
    a = lab.addr
    client = Dhclient(lab, tmp_path, "4")
    try:
        client.run("-1", "-v")
        text = client.lease.read_text()
        addr = re.search(r"fixed-address ([0-9.]+);", text).group(1)
        assert a.in_dhcp4_pool(addr), text
        assert "option subnet-mask 255.255.255.128;" in text
        assert f"option routers {a.isp_access_v4};" in text
        assert f"option domain-name-servers {','.join(a.isp_dns_v4)};" in text
        assert f"option dhcp-lease-time {a.dhcp4_valid_lifetime};" in text

        held = {lease["address"]: lease for lease in lab.leases4()}
        assert held[addr]["hwaddr"] == mac_for(lab.prefix, "router", "uplink0")

        # DHCPRELEASE is unicast from the leased address: configure it first.
        lab.exec("router", "ip", "addr", "add", f"{addr}/25", "dev", "uplink0")
        client.run("-r")
        wait_until(
            lambda: addr not in {lease["address"] for lease in lab.leases4()},
            what=f"kea to drop released {addr}",
        )
    finally:
        lab.reset_node("router")


@root
def test_isp_delegates_a_48_and_routes_it(lab: Lab, tmp_path: Path, wait_until) -> None:
    a = lab.addr
    client = Dhclient(lab, tmp_path, "6")
    try:
        client.run("-P", "-N", "-1", "-v")
        text = client.lease.read_text()
        prefix = re.search(r"iaprefix ([0-9a-f:]+/\d+) \{", text).group(1)
        assert a.is_delegated_prefix(prefix), text
        na = re.search(r"iaaddr ([0-9a-f:]+) \{", text).group(1)
        assert a.in_dhcp6_pool(na), text
        assert f"option dhcp6.name-servers {','.join(a.isp_dns_v6)};" in text
        assert f"max-life {a.dhcp6_valid_lifetime};" in text

        assert {(le["type"], le["prefix"]) for le in lab.leases6()} >= {
            ("IA_PD", prefix),
            ("IA_NA", f"{na}/128"),
        }
        # The run_script hook routed the /48 to the CPE's link-local.
        router_ll = lab.link_local("router", "uplink0")
        want = {"prefix": prefix, "via": router_ll, "dev": "down0"}
        wait_until(lambda: want in lab.pd_routes(), what=f"route {want} on the isp")

        # And traffic to the prefix really flows: the router sources from an
        # address in its /48, the internet host's answer comes back via isp.
        inside = prefix.split("/")[0] + "1"
        lab.exec("router", "ip", "-6", "addr", "add", f"{inside}/64", "dev", "lan0", "nodad")
        lab.route_router_via_isp(6)
        url = f"http://[{a.internet_v6}]/"
        got = lab.exec("router", "curl", "-sS", "--max-time", "5", "--interface", inside, url)
        assert got.stdout == a.http_body

        client.run("-r", "-P", "-N")
        wait_until(lambda: want not in lab.pd_routes(), what="the hook to remove the route")
        assert prefix not in {le["prefix"] for le in lab.leases6()}
    finally:
        lab.reset_node("router")


@root
def test_router_routes_via_isp_even_after_an_ra_installed_the_default(lab: Lab, wait_until) -> None:
    """The race behind a flake: the ISP's RA installs the router's IPv6 default
    route (proto ra) before a test sets it; setting it must still work, twice."""
    isp_ll = lab.link_local("isp", "down0")

    def ra_default() -> bool:
        lab.exec("router", "rdisc6", "-1", "-w", "500", "uplink0", check=False)  # solicit an RA
        out = lab.exec("router", "ip", "-6", "route", "show", "default", "proto", "ra").stdout
        return f"via {isp_ll} dev uplink0" in out

    try:
        wait_until(ra_default, timeout=20, interval=1, what="the RA-learned default route")
        lab.route_router_via_isp(6)
        lab.route_router_via_isp(6)
        v6 = lab.exec("router", "ip", "-6", "route", "show", "default").stdout
        assert v6.count(f"via {isp_ll} dev uplink0") == 1, v6
        assert "proto ra" not in v6, v6  # ours now: it does not expire with the RA's lifetime
    finally:
        lab.reset_node("router")


@root
def test_internet_host_serves_http_and_dns(lab: Lab) -> None:
    a = lab.addr
    for url in (a.http_url, f"http://[{a.internet_v6}]/"):
        got = lab.exec("isp", "curl", "-sS", "--max-time", "5", url)
        assert got.stdout == a.http_body
    assert dig(lab, a.internet_v4) == a.internet_v4
    assert dig(lab, a.internet_v4, rtype="AAAA") == a.internet_v6
    assert dig(lab, a.internet_v6) == a.internet_v4
    # Through each ISP resolver, over v4 and v6.
    for server in (*a.isp_dns_v4, *a.isp_dns_v6):
        assert dig(lab, server) == a.internet_v4, server
    # The internet host is authoritative for its zone only.
    full = lab.exec("isp", "dig", "+time=2", "+tries=1", f"@{a.internet_v4}", "www.example.com")
    assert "status: REFUSED" in full.stdout


@root
def test_stop_and_start_a_peer(lab: Lab) -> None:
    a = lab.addr
    lab.stop_peer("isp-dns1")
    assert not lab.peer_running("isp-dns1")
    assert lab.status()["peers"]["isp-dns1"]["running"] is False
    assert dig_fails(lab, a.isp_dns1_v4)
    assert dig_fails(lab, a.isp_dns1_v6)
    assert dig(lab, a.isp_dns2_v4) == a.internet_v4

    pid = lab.start_peer("isp-dns1")
    assert lab.peer_pid("isp-dns1") == pid
    assert dig(lab, a.isp_dns1_v4) == a.internet_v4

    # An upstream outage shows through the resolvers (no cache hides it):
    # dnsmasq gets port-unreachable upstream and lets the client time out.
    # Ask for another name than below: dnsmasq would merge a retry of the
    # same question into the unanswered one in flight (for ~10 s).
    lab.stop_peer("internet-dns")
    assert dig_fails(lab, a.isp_dns2_v4, a.dns_zone)
    lab.start_peer("internet-dns")
    assert dig(lab, a.isp_dns2_v4) == a.internet_v4


@root
def test_cli_status_exec_and_peer(lab: Lab) -> None:
    cli = [sys.executable, "-m", "router7.lab.cli", "--prefix", lab.prefix]
    out = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, check=True)
    status = json.loads(out.stdout)
    assert status["namespaces"]["isp"] == f"{lab.prefix}-isp"
    assert all(status["peers"][p]["running"] for p in PEER_NAMES)
    isp_addrs = {i["ifname"]: i["addresses"] for i in status["interfaces"]["isp"]}
    assert f"{lab.addr.isp_access_v4}/25" in isp_addrs["down0"]
    router = {i["ifname"]: i for i in status["interfaces"]["router"]}
    assert router["uplink0"]["mac"] == mac_for(lab.prefix, "router", "uplink0")
    assert not [x for x in router["uplink0"]["addresses"] if not x.startswith("fe80")]

    text = subprocess.run([*cli, "status"], capture_output=True, text=True, check=True).stdout
    assert "isp-dhcp6" in text and "running" in text

    rc = subprocess.run([*cli, "exec", "router", "--", "sh", "-c", "exit 7"]).returncode
    assert rc == 7
    subprocess.run([*cli, "peer", "stop", "isp-radvd"], check=True, capture_output=True)
    assert not lab.peer_running("isp-radvd")
    subprocess.run([*cli, "peer", "start", "isp-radvd"], check=True, capture_output=True)
    assert lab.peer_running("isp-radvd")
    # radvd advertises M+O and the /64 on-link, not autonomous (fiber7 style).
    ra = lab.exec("router", "rdisc6", "-1", "-w", "2000", "uplink0", check=False)
    if ra.returncode != 127:  # ndisc6 installed
        assert re.search(r"Stateful address conf\.\s*:\s*Yes", ra.stdout), ra.stdout
        assert re.search(r"Autonomous address conf\.\s*:\s*No", ra.stdout), ra.stdout


@root
def test_up_is_idempotent_and_labs_coexist(lab: Lab, wait_until) -> None:
    before = {p: lab.peer_pid(p) for p in PEER_NAMES}
    lab.up()
    assert {p: lab.peer_pid(p) for p in PEER_NAMES} == before

    # A peer that died is restarted by the next up(), the others are kept.
    os.kill(before["isp-radvd"], signal.SIGKILL)
    wait_until(lambda: not lab.peer_running("isp-radvd"), what="radvd to die")
    lab.up()
    after = {p: lab.peer_pid(p) for p in PEER_NAMES}
    assert after["isp-radvd"] not in (None, before["isp-radvd"])
    before["isp-radvd"] = after["isp-radvd"]
    assert after == before

    other = Lab(f"{lab.prefix}b", lan_hosts=2)
    try:
        other.up()
        # Same addresses, separate worlds: both answer.
        assert dig(other, other.addr.isp_dns1_v4) == other.addr.internet_v4
        assert dig(lab, lab.addr.isp_dns1_v4) == lab.addr.internet_v4
        assert other.existing_nodes() == ["internet", "isp", "router", "sw", "lan1", "lan2"]
        other_pids = [other.peer_pid(p) for p in PEER_NAMES]
        assert all(other_pids) and not set(other_pids) & set(before.values())
    finally:
        other.down()

    assert not [n for n in netns_list() if n.startswith(f"{other.prefix}-")]
    assert not [pid for pid in other_pids if lab_procs.alive(pid)]
    assert not list(Path("/etc/netns").glob(f"{other.prefix}-*"))
    assert not other.state_dir.exists()
    other.down()  # safe when nothing exists
    # The session lab did not notice.
    assert {p: lab.peer_pid(p) for p in PEER_NAMES} == before


@root
def test_a_failed_up_removes_what_it_created(lab: Lab, monkeypatch) -> None:
    def leftovers(prefix: str) -> list:
        return [
            *(n for n in netns_list() if n.startswith(f"{prefix}-")),
            *Path("/etc/netns").glob(f"{prefix}-*"),
        ]

    real_start = topology.peers.start
    started: list[int] = []

    def start_but_fail_dns2(lab_: Lab, name: str, timeout: float = 15.0) -> int:
        if name == "isp-dns2":
            raise LabError("forced: isp-dns2 did not start")
        started.append(real_start(lab_, name, timeout=timeout))
        return started[-1]

    monkeypatch.setattr(topology.peers, "start", start_but_fail_dns2)

    # A new lab: everything goes, peers that did start included.
    fresh = Lab(f"{lab.prefix}f", lan_hosts=1)
    with pytest.raises(LabError, match="forced"):
        fresh.up()
    assert started, "the failure came before any peer started: nothing tested"
    assert not leftovers(fresh.prefix)
    assert not fresh.exists() and not fresh.state_dir.exists()
    assert not [pid for pid in started if lab_procs.alive(pid)]

    # A running lab that fails to grow keeps what it had, loses what it added.
    before = {p: lab.peer_pid(p) for p in PEER_NAMES}
    nodes = lab.existing_nodes()
    with pytest.raises(LabError, match="forced"):
        Lab(lab.prefix, lan_hosts=len([n for n in nodes if n.startswith("lan")]) + 1).up()
    assert lab.existing_nodes() == nodes
    assert {p: lab.peer_pid(p) for p in PEER_NAMES} == before
    assert dig(lab, lab.addr.isp_dns1_v4) == lab.addr.internet_v4


def test_lease_journal_keeps_last_row_per_lease(tmp_path: Path) -> None:
    v4 = tmp_path / "l4.csv"
    v4.write_text(
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n"
        "192.0.2.10,02:00:00:00:00:01,,120,2000,1,0,0,,0,\n"
        "192.0.2.11,02:00:00:00:00:02,,120,2000,1,0,0,,0,\n"
        "192.0.2.10,02:00:00:00:00:01,,0,1000,1,0,0,,0,\n"
    )
    assert [le["address"] for le in current_leases4(v4, now=1500)] == ["192.0.2.11"]
    assert current_leases4(v4, now=2500) == []
    v6 = tmp_path / "l6.csv"
    v6.write_text(
        "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,"
        "fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source\n"
        "2001:db8:100::,00:01,3600,5000,1,1800,2,7,48,0,0,,,0,,1,2\n"
    )
    (pd,) = current_leases6(v6, now=10)
    assert (pd["type"], pd["prefix"]) == ("IA_PD", "2001:db8:100::/48")
    assert current_leases6(tmp_path / "missing.csv") == []


@root
def test_host_resolv_conf_untouched(lab: Lab, host_resolv_conf: bytes | None) -> None:
    """Last on purpose: after the dhclient and peer tests above."""
    now = Path("/etc/resolv.conf").read_bytes() if Path("/etc/resolv.conf").exists() else None
    assert now == host_resolv_conf
    # Each lab namespace sees its own resolv.conf instead.
    inside = lab.exec("isp", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {lab.addr.isp_dns1_v4}" in inside
    assert inside.encode() != host_resolv_conf
