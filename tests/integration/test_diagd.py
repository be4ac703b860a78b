"""router7-diagd in the lab: healthy when the uplink works, the right first error when
the ISP stops forwarding, recovery after, and its port unreachable from outside.

TestHandConfiguredRouter sets the router namespace up by hand (the way router7's
services would leave it), so it tests diagd alone: uplink0 gets the address kea
leases to dhclient and a default route via the ISP; IPv6 takes a prefix from
kea-dhcp6 (dhclient -P) and the default route from the ISP's RAs; lease files in the
contract's format go to a temporary perm; diagd asks the ISP's resolver.
TestWithRouter7Services runs diagd beside router7's own services (RouterServices)
and checks it reads their lease files and asks their dnsd.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router7.lab import ADDR, Lab
from router7.lab.router import RouterServices
from router7.runtime.statefile import write_json_atomic
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAN_ADDR = "192.168.42.1"
LAN_CLIENT = "192.168.42.77/24"
PORT = 7733
TARGET4 = f"{ADDR.internet_v4}:80"
TARGET6 = f"[{ADDR.internet_v6}]:80"


def dhclient(lab: Lab, tmp: Path, family: str, *args: str) -> str:
    """One hook-less dhclient run on uplink0; returns its lease file's text."""
    lease = tmp / f"lease{family}"
    lab.exec(
        "router",
        "timeout",
        "20",
        "dhclient",
        f"-{family}",
        "-1",
        *args,
        "-lf",
        str(lease),
        "-pf",
        str(tmp / f"pid{family}"),
        "-sf",
        "/bin/true",
        "uplink0",
        timeout=30,
    )
    return lease.read_text()


def write_leases(perm: Path, addr4: str, prefix: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    hour = timedelta(hours=1)
    write_json_atomic(
        perm / "dhcp4/wire/lease.json",
        {
            "address": f"{addr4}/25",
            "router": ADDR.isp_access_v4,
            "dns": list(ADDR.isp_dns_v4),
            "server": ADDR.isp_access_v4,
            "lease_time": 3600,
            "obtained_at": now,
            "renew_at": now + hour / 2,
            "rebind_at": now + hour * 7 / 8,
            "expires_at": now + hour,
        },
    )
    write_json_atomic(
        perm / "dhcp6/wire/lease.json",
        {
            "prefixes": [
                {
                    "prefix": prefix,
                    "preferred_lifetime": 1800,
                    "valid_lifetime": 3600,
                    "preferred_until": now + hour / 2,
                    "valid_until": now + hour,
                }
            ],
            "addresses": [],
            "dns": list(ADDR.isp_dns_v6),
            "server_duid": "000100",
            "t1": 900,
            "t2": 1440,
            "obtained_at": now,
            "renew_at": now + hour / 4,
            "rebind_at": now + hour * 2 / 5,
        },
    )


def has_v6_default(lab: Lab) -> bool:
    out = lab.exec("router", "ip", "-6", "route", "show", "default", "dev", "uplink0").stdout
    if out.strip():
        return True
    # Ask for an RA now rather than wait for the next unsolicited one.
    lab.exec("router", "rdisc6", "-1", "-w", "500", "uplink0", check=False, timeout=10)
    return False


class Router:
    def __init__(self, lab: Lab, perm: Path, uplink4: str, lan6: str):
        self.lab, self.perm, self.uplink4, self.lan6 = lab, perm, uplink4, lan6

    def curl(self, node: str, url: str, timeout: int = 15) -> subprocess.CompletedProcess:
        return self.lab.exec(
            node, "curl", "-sS", "--max-time", str(timeout), url, check=False, timeout=timeout + 5
        )

    def health(self) -> dict | None:
        got = self.curl("lan1", f"http://{LAN_ADDR}:{PORT}/health.json")
        return json.loads(got.stdout) if got.returncode == 0 else None


def start_diagd(lab: Lab, perm: Path, run_dir: Path, logs: Path, *extra: str):
    cmd = [sys.executable, "-m", "router7.diagd.service", "--perm", str(perm)]
    cmd += ["--run-dir", str(run_dir), "--target", TARGET4, "--target", TARGET6]
    cmd += ["--dns-name", ADDR.www_name, "--cache-seconds", "0", "--check-timeout", "2", *extra]
    with logs.open("wb") as log:
        return lab.popen("router", *cmd, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture(scope="class")
def router(lab_session: Lab, tmp_path_factory):
    lab = lab_session.up()
    tmp = tmp_path_factory.mktemp("diagd")
    perm, logs = tmp / "perm", tmp / "diagd.log"
    lab.reset_node("router")
    proc = None
    try:
        text = dhclient(lab, tmp, "4")
        addr4 = re.search(r"fixed-address ([0-9.]+);", text).group(1)
        lab.exec("router", "ip", "addr", "add", f"{addr4}/25", "dev", "uplink0")
        lab.route_router_via_isp(4)
        lab.exec("router", "ip", "addr", "add", f"{LAN_ADDR}/24", "dev", "lan0")
        lab.exec("lan1", "ip", "addr", "replace", LAN_CLIENT, "dev", "eth0")

        text = dhclient(lab, tmp, "6", "-P", "-N")
        prefix = re.search(r"iaprefix ([0-9a-f:]+/\d+) \{", text).group(1)
        lan6 = prefix.split("/")[0] + "1"
        lab.exec("router", "ip", "-6", "addr", "add", f"{lan6}/64", "dev", "lan0", "nodad")
        lab.exec("router", "sysctl", "-qw", "net.ipv6.conf.uplink0.accept_ra=2")
        wait_for(lambda: has_v6_default(lab), "an RA default route on uplink0", 20, interval=0.3)
        want = {"prefix": prefix, "via": lab.link_local("router", "uplink0"), "dev": "down0"}
        wait_for(lambda: want in lab.pd_routes(), "the ISP's route to the prefix", 10, interval=0.3)
        write_leases(perm, addr4, prefix)

        proc = start_diagd(lab, perm, tmp / "run", logs, "--dns-server", ADDR.isp_dns1_v4)
        r = Router(lab, perm, addr4, lan6)
        wait_for(lambda: r.health() is not None, f"diagd to serve (log: {logs})", 20, interval=0.3)
        yield r
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        lab.exec("lan1", "ip", "addr", "del", LAN_CLIENT, "dev", "eth0", check=False)
        lab.reset_node("router")


class TestHandConfiguredRouter:
    """The router namespace set up by hand: diagd alone, the ISP's forwarding toggled."""

    def test_healthy_when_everything_is_up(self, router: Router, wait_until):
        health = wait_until(
            lambda: (h := router.health()) and h["healthy"] and h, 30, what="healthy"
        )
        checks = {c["name"]: c for c in health["checks"]}
        assert health["first_error"] == ""
        for name in (
            "link/uplink0",
            "dhcp4: lease",
            "route4: default",
            "ping4: default gateway",
            f"tcp4: {TARGET4}",
            "dhcp6: delegated prefix",
            "route6: default",
            "ping6: default gateway",
            f"tcp6: {TARGET6}",
            "lan/lan0",
            f"dns: {ADDR.isp_dns1_v4}",
        ):
            assert checks[name]["ok"], (name, checks[name])
        assert checks["route4: default"]["status"].startswith(
            f"via {ADDR.isp_access_v4} dev uplink0"
        )
        assert "from RA" in checks["route6: default"]["status"]
        assert ADDR.internet_v4 in checks[f"dns: {ADDR.isp_dns1_v4}"]["status"]

        page = router.curl("lan1", f"http://{LAN_ADDR}:{PORT}/")
        assert (
            page.returncode == 0 and "Healthy" in page.stdout and f"tcp6: {TARGET6}" in page.stdout
        )
        metrics = router.curl("lan1", f"http://{LAN_ADDR}:{PORT}/metrics").stdout
        assert "diagd_healthy 1.0" in metrics
        assert f'diagd_check_ok{{check="tcp4: {TARGET4}"}} 1.0' in metrics

    @staticmethod
    def _sysctl(lab: Lab, key: str) -> str:
        return lab.exec("isp", "sysctl", "-n", key).stdout.strip()

    def test_isp_forwarding_off_fails_tcp_then_recovers(self, router: Router, wait_until):
        lab = router.lab
        wait_until(lambda: (h := router.health()) and h["healthy"], 30, what="healthy first")
        keys = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
        before = {k: self._sysctl(lab, k) for k in keys}
        try:
            for k in keys:
                lab.exec("isp", "sysctl", "-qw", f"{k}=0")
            health = wait_until(
                lambda: (h := router.health()) and not h["healthy"] and h, 30, what="unhealthy"
            )
            # The gateway itself still answers: the failure is exactly the internet path.
            # (the ISP drops the packets silently: the connect runs into diagd's timeout)
            assert health["first_error"] == f"tcp4: {TARGET4}: timed out after 2s", health
            checks = {c["name"]: c for c in health["checks"]}
            assert checks["ping4: default gateway"]["ok"]
            assert not checks[f"tcp4: {TARGET4}"]["ok"]
            assert not checks[f"tcp6: {TARGET6}"]["ok"]
            metrics = router.curl("lan1", f"http://{LAN_ADDR}:{PORT}/metrics").stdout
            assert "diagd_healthy 0.0" in metrics
            page = router.curl("lan1", f"http://{LAN_ADDR}:{PORT}/").stdout
            assert "✘" in page and f"tcp4: {TARGET4}" in page
        finally:
            for k, v in before.items():
                lab.exec("isp", "sysctl", "-qw", f"{k}={v}")

        def healthy_again():
            has_v6_default(lab)  # an RA sent meanwhile may have had router lifetime 0
            h = router.health()
            return h is not None and h["healthy"]

        wait_until(healthy_again, 40, what="recovery after forwarding is back")

    @pytest.mark.parametrize("node", ["isp", "internet"])
    def test_port_does_not_answer_from_outside(self, router: Router, node: str):
        inside = router.curl("lan1", f"http://{LAN_ADDR}:{PORT}/health.json")
        assert inside.returncode == 0  # the same service, reachable from the LAN
        for url in (
            f"http://{router.uplink4}:{PORT}/health.json",
            f"http://[{router.lan6}]:{PORT}/health.json",
        ):
            got = router.curl(node, url, timeout=3)
            # 7: the router answered, with a reset: nothing listens there (not a timeout).
            assert got.returncode == 7, (node, url, got.returncode, got.stderr)


@pytest.fixture(scope="class")
def full_router(lab_session: Lab, tmp_path_factory):
    """router7's own services (RouterServices) configure the router namespace."""
    lab = lab_session.up()
    lab.reset_node("router")
    services = RouterServices(lab)
    try:
        services.start()
        leases = [services.perm / "dhcp4/wire/lease.json", services.perm / "dhcp6/wire/lease.json"]
        wait_for(
            lambda: all(p.exists() for p in leases),
            "router7's dhcp4 and dhcp6 leases",
            60,
            interval=0.3,
        )
        lab.exec("lan1", "ip", "addr", "replace", LAN_CLIENT, "dev", "eth0")
        # The supervisor's diagd, configured by RouterServices for the lab's
        # internet host; it asks the router's own dnsd on lan0.
        r = Router(lab, services.perm, "", "")
        wait_for(
            lambda: r.health() is not None,
            f"diagd to serve (logs: {services.logs})",
            20,
            interval=0.3,
        )
        yield r
    finally:
        services.stop()
        lab.exec("lan1", "ip", "addr", "del", LAN_CLIENT, "dev", "eth0", check=False)
        lab.reset_node("router")


class TestWithRouter7Services:
    """The same diagd against the lease files and addresses router7's services made."""

    def test_healthy_with_the_real_router(self, full_router: Router, wait_until):
        health = wait_until(
            lambda: (h := full_router.health()) and h["healthy"] and h, 60, what="healthy"
        )
        checks = {c["name"]: c["status"] for c in health["checks"]}
        lease4 = json.loads((full_router.perm / "dhcp4/wire/lease.json").read_text())
        assert checks["dhcp4: lease"].startswith(f"{lease4['address']}, expires in ")
        lease6 = json.loads((full_router.perm / "dhcp6/wire/lease.json").read_text())
        assert checks["dhcp6: delegated prefix"].startswith(lease6["prefixes"][0]["prefix"])
        assert checks["dns: lan0"].startswith(f"{LAN_ADDR}: {ADDR.www_name} is {ADDR.internet_v4}")


PING_SCRIPT = """
from twisted.internet import defer, reactor
from router7.diagd import icmp

@defer.inlineCallbacks
def go():
    for address in ("127.0.0.1", "::1"):
        sock, raw = icmp.open_socket(6 if ":" in address else 4)
        sock.close()
        yield icmp.ping(reactor, address, None, 2.0)
        print(address, "raw" if raw else "ping-socket")
    reactor.stop()

reactor.callWhenRunning(go)
reactor.run()
"""


def test_ping_via_ping_socket_and_raw_socket(lab_session: Lab):
    """diagd pings through a ping socket when ping_group_range allows, else raw."""
    lab = lab_session.up()
    key = "net.ipv4.ping_group_range"  # per network namespace
    before = lab.exec("router", "sysctl", "-n", key).stdout.split()
    try:
        for group_range, kind in (("1 0", "raw"), ("0 2147483647", "ping-socket")):
            lab.exec("router", "sysctl", "-qw", f"{key}={group_range}")
            got = lab.exec("router", sys.executable, "-c", PING_SCRIPT, timeout=30)
            assert got.stdout.split("\n")[:2] == [f"127.0.0.1 {kind}", f"::1 {kind}"]
    finally:
        lab.exec("router", "sysctl", "-qw", f"{key}={' '.join(before)}")
