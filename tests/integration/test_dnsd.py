"""router7-dnsd in network namespaces with real upstream resolvers (dnsmasq) and dig.

Topology (namespaces of this module, unique per run):

    isp:  down0 198.51.100.1/24, .53 and .54 (two dnsmasq upstreams)
      |
    router: uplink0 198.51.100.2/24        lan0 192.168.42.1/24   (router7-dnsd)
                                              |
                                           client: eth0 192.168.42.23/24 (dig)

Self-contained rather than on the shared lab, so the upstreams can be killed and
configured freely. The host's /etc/resolv.conf is never read or written: every
dig names its server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.netns import Namespaces, unique_tag
from tests.helpers.polling import wait_for
from tests.helpers.shell import run

pytestmark = [pytest.mark.root, pytest.mark.slow]

if os.geteuid() != 0:
    pytest.skip("needs root for network namespaces", allow_module_level=True)
for tool in ("ip", "dig", "dnsmasq"):
    if shutil.which(tool) is None:
        pytest.skip(f"needs {tool}", allow_module_level=True)

DNSD = Path(sys.executable).with_name("router7-dnsd")
ROUTER_LAN = "192.168.42.1"
CLIENT = "192.168.42.23"
UP1, UP2 = "198.51.100.53", "198.51.100.54"
ISP = "198.51.100.1"
# One name whose TXT answer (about 3 KB) is far over the 1232-byte EDNS limit.
BIG_TXT = [f"record-{i:02d}-" + "x" * 90 for i in range(30)]


def sh(*cmd, check=True, timeout=20):
    """The shared run() with this module's 20 s default timeout."""
    return run(*cmd, check=check, timeout=timeout)


class Topology(Namespaces):
    def __init__(self, tmp: Path):
        super().__init__(unique_tag("dns"), "isp", "rtr", "cli")
        self.isp, self.router, self.client = self.names
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def ns(self, name, *cmd, **kw):
        return sh("ip", "netns", "exec", name, *cmd, **kw)

    def up(self):
        super().up()
        self.veth(self.router, "uplink0", self.isp, "down0")
        self.veth(self.router, "lan0", self.client, "eth0")
        self.addr(self.isp, "down0", f"{ISP}/24", f"{UP1}/24", f"{UP2}/24")
        self.addr(self.router, "uplink0", "198.51.100.2/24")
        self.addr(self.router, "lan0", f"{ROUTER_LAN}/24")
        self.addr(self.client, "eth0", f"{CLIENT}/24")
        # The isp can reach the router's LAN address through its uplink (a hostile ISP-side host).
        self.ip(self.isp, "route", "replace", "192.168.42.0/24", "via", "198.51.100.2")
        return self

    def start_upstream(self, address: str, *extra: str):
        name = f"dnsmasq-{address}"
        log = self.tmp / f"{name}.log"
        cmd = [
            "dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--keep-in-foreground",
            f"--listen-address={address}", "--bind-interfaces", "--port=53",
            f"--pid-file={self.tmp / (name + '.pid')}", "--log-queries", f"--log-facility={log}",
            "--local-ttl=300", "--local=/example.test/",
            "--host-record=www.example.test,203.0.113.10",
            "--host-record=other.example.test,203.0.113.11",
            "--host-record=after.example.test,203.0.113.30",
            *(f"--host-record=new{i}.example.test,203.0.113.{20 + i}" for i in range(3)),
            *(f"--txt-record=big.example.test,{t}" for t in BIG_TXT),
            *extra,
        ]  # fmt: skip
        self.procs[name] = self.spawn(self.isp, cmd, self.tmp / f"{name}.err")
        wait_for(
            lambda: self.dig(self.isp, address, "www.example.test", "+short") == "203.0.113.10",
            name,
            15.0,
        )

    def spawn(self, ns, cmd, log: Path) -> subprocess.Popen:
        with open(log, "ab") as err:  # the child keeps its own copy of the descriptor
            return self.popen(ns, *cmd, stderr=err)

    def stop(self, name: str):
        proc = self.procs.pop(name)
        proc.terminate()
        proc.wait(10)

    def start_dnsd(self, perm: Path):
        log = self.tmp / "dnsd.log"
        cmd = [str(DNSD), "--perm", str(perm), "--run-dir", str(self.tmp / "run"), "--hostname", "gateway",
               "--log-level", "debug"]  # fmt: skip
        self.procs["dnsd"] = self.spawn(self.router, cmd, log)
        self.dnsd_log = log
        wait_for(
            lambda: self.dig(self.client, ROUTER_LAN, "gateway.lan", "+short") == ROUTER_LAN,
            "dnsd",
            15.0,
            logs=[log],
        )

    def dig(self, ns, server, *args, timeout=20):
        out = self.ns(
            ns, "dig", f"@{server}", "+time=2", "+tries=1", *args, check=False, timeout=timeout
        )
        return out.stdout.strip()

    def metrics(self) -> dict[str, float]:
        fetch = f"import urllib.request as u; print(u.urlopen('http://{ROUTER_LAN}:8053/metrics', timeout=5).read().decode())"
        text = self.ns(self.router, sys.executable, "-c", fetch).stdout
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def down(self):
        for name in list(self.procs):
            self.stop(name)
        super().down()


# dhcp4d's leases: the LAN client (a name dnsd serves) and one long expired.
MIDNA = {"num": 22, "addr": CLIENT, "hardware_addr": "02:73:53:00:ca:fe", "hostname": "midna",
         "hostname_override": "", "expiry": "2099-01-01T00:00:00Z"}  # fmt: skip
GONE = {"num": 30, "addr": "192.168.42.31", "hardware_addr": "02:73:53:00:ca:ff", "hostname": "gone",
        "hostname_override": "", "expiry": "2001-01-01T00:00:00Z"}  # fmt: skip


def write_perm(perm: Path, leases: list[dict]) -> Path:
    """dnsd's inputs under ``perm``: the uplink's lease naming UP1 and UP2 as resolvers,
    and dhcp4d's ``leases``."""
    (perm / "dhcp4/wire").mkdir(parents=True)
    (perm / "dhcp4d").mkdir(parents=True)
    (perm / "dhcp4/wire/lease.json").write_text(
        json.dumps({"address": "198.51.100.2/24", "dns": [UP1, UP2]})
    )
    (perm / "dhcp4d/leases.json").write_text(json.dumps(leases))
    return perm


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    resolv = Path("/etc/resolv.conf")
    resolv_before = resolv.read_bytes() if resolv.exists() else None
    tmp = tmp_path_factory.mktemp("dnsd")
    topo = Topology(tmp).up()
    try:
        topo.start_upstream(UP1)
        topo.start_upstream(UP2)
        perm = write_perm(tmp / "perm", [MIDNA, GONE])
        topo.perm = perm
        topo.start_dnsd(perm)
        yield topo
    finally:
        topo.down()
    assert (resolv.read_bytes() if resolv.exists() else None) == resolv_before


def test_dhcp_client_name_and_ptr(topo):
    assert topo.dig(topo.client, ROUTER_LAN, "midna.lan", "+short") == CLIENT
    assert topo.dig(topo.client, ROUTER_LAN, "MIDNA", "+short") == CLIENT
    assert topo.dig(topo.client, ROUTER_LAN, "-x", CLIENT, "+short") == "midna.lan."
    assert "status: NXDOMAIN" in topo.dig(topo.client, ROUTER_LAN, "gone.lan")  # expired lease
    # a private reverse name nobody holds: answered here, never asked upstream
    assert "status: NXDOMAIN" in topo.dig(topo.client, ROUTER_LAN, "-x", "10.1.2.3")
    assert "10.in-addr.arpa" not in (topo.tmp / f"dnsmasq-{UP1}.log").read_text()


def test_tcp_query(topo):
    assert topo.dig(topo.client, ROUTER_LAN, "+tcp", "midna.lan", "+short") == CLIENT


def test_lease_change_and_sigusr1(topo):
    leases = json.loads((topo.perm / "dhcp4d/leases.json").read_text())
    leases.append({"num": 40, "addr": "192.168.42.41", "hardware_addr": "02:73:53:00:ca:01",
                   "hostname": "zelda", "hostname_override": "", "expiry": "2099-01-01T00:00:00Z"})  # fmt: skip
    (topo.perm / "dhcp4d/leases.json").write_text(json.dumps(leases))
    assert "status: NXDOMAIN" in topo.dig(topo.client, ROUTER_LAN, "zelda.lan")
    topo.procs["dnsd"].send_signal(signal.SIGUSR1)  # ip netns exec execs: this is dnsd itself
    wait_for(
        lambda: topo.dig(topo.client, ROUTER_LAN, "zelda.lan", "+short") == "192.168.42.41",
        "new lease",
        15.0,
    )


def test_forwarding_and_cache_hit(topo):
    before = topo.metrics()
    assert topo.dig(topo.client, ROUTER_LAN, "www.example.test", "+short") == "203.0.113.10"
    assert topo.dig(topo.client, ROUTER_LAN, "WWW.Example.TEST", "+short") == "203.0.113.10"
    after = topo.metrics()
    hits = after["dnsd_cache_hits_total"] - before.get("dnsd_cache_hits_total", 0)
    misses = after["dnsd_cache_misses_total"] - before.get("dnsd_cache_misses_total", 0)
    assert (hits, misses) == (1, 1)


def test_truncated_answer_retried_over_tcp(topo):
    before = topo.metrics().get("dnsd_upstream_tcp_retries_total", 0)
    out = topo.dig(
        topo.client, ROUTER_LAN, "big.example.test", "TXT", "+short", "+ignore", "+bufsize=4096"
    )
    assert sorted(re.findall(r'"([^"]+)"', out)) == sorted(BIG_TXT)
    assert topo.metrics()["dnsd_upstream_tcp_retries_total"] == before + 1
    # A client with the default 1232-byte limit gets TC over UDP, then the whole answer over TCP.
    udp_only = topo.dig(topo.client, ROUTER_LAN, "big.example.test", "TXT", "+ignore")
    assert re.search(r"flags:[^;]*\btc\b", udp_only), udp_only
    full = topo.dig(topo.client, ROUTER_LAN, "big.example.test", "TXT", "+short")
    assert len(re.findall(r'"([^"]+)"', full)) == len(BIG_TXT)


def test_refuses_queries_from_the_uplink_side(topo):
    before = topo.metrics().get("dnsd_refused_total", 0)
    out = topo.dig(topo.isp, ROUTER_LAN, "www.example.test")
    assert "status: REFUSED" in out and "203.0.113.10" not in out
    assert topo.metrics()["dnsd_refused_total"] == before + 1
    # and nothing listens on the uplink address at all
    out = topo.dig(topo.isp, "198.51.100.2", "www.example.test")
    assert "203.0.113.10" not in out and "status:" not in out


def test_malformed_query_is_counted_and_harmless(topo):
    before = topo.metrics().get("dnsd_malformed_total", 0)
    script = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
        f"s.sendto(b'\\x12\\x34\\x01\\x00\\x00\\x05garbage', ('{ROUTER_LAN}', 53))"
    )
    topo.ns(topo.client, sys.executable, "-c", script)
    wait_for(
        lambda: topo.metrics().get("dnsd_malformed_total", 0) == before + 1,
        "malformed counted",
        15.0,
    )
    assert topo.dig(topo.client, ROUTER_LAN, "midna.lan", "+short") == CLIENT


def test_first_upstream_dead_resolution_continues(topo):
    assert topo.dig(topo.client, ROUTER_LAN, "other.example.test", "+short") == "203.0.113.11"
    topo.stop(f"dnsmasq-{UP1}")
    # A fresh dnsd knows no RTTs yet, so it asks the first upstream first: the dead one.
    topo.stop("dnsd")
    topo.start_dnsd(topo.perm)
    for i in range(3):  # fresh names: each one is forwarded
        assert (
            topo.dig(topo.client, ROUTER_LAN, f"new{i}.example.test", "+short")
            == f"203.0.113.{20 + i}"
        )
    m = topo.metrics()
    assert m[f'dnsd_upstream_answers_total{{upstream="{UP2}:53"}}'] == 3
    # the dead server failed once (port unreachable: no timeout) and was then demoted
    assert m[f'dnsd_upstream_failures_total{{reason="unreachable",upstream="{UP1}:53"}}'] == 1
    assert topo.procs["dnsd"].poll() is None


def test_configured_upstreams_and_timeout_failover(topo):
    # The owner's list replaces the ISP's; its first server is silent (no host has that
    # address, so no ICMP comes back either): dnsd must time out and use the second.
    silent = "198.51.100.99"
    config = topo.perm / "dnsd/config.json"
    config.parent.mkdir(exist_ok=True)
    config.write_text(json.dumps({"upstreams": [silent, UP2]}))
    topo.procs["dnsd"].send_signal(signal.SIGUSR1)
    wait_for(
        lambda: f"upstreams: {silent}:53, {UP2}:53" in topo.dnsd_log.read_text(), "reload", 15.0
    )
    assert topo.dig(topo.client, ROUTER_LAN, "after.example.test", "+short") == "203.0.113.30"
    m = topo.metrics()
    assert m[f'dnsd_upstream_failures_total{{reason="timeout",upstream="{silent}:53"}}'] == 1
    assert (
        topo.dig(topo.client, ROUTER_LAN, "www.example.test", "+short") == "203.0.113.10"
    )  # cached
