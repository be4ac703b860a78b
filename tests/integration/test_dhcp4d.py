"""router7-dhcp4d against real DHCP clients (dhcpcd, udhcpc) in network namespaces.

Own small topology, so the module needs neither kea nor the full lab:

    <p>-cli1 eth0 ─┐
    <p>-cli2 eth0 ─┼─ p1/p2: bridge lan0 192.168.42.1/24 ┐
                   │                                      ├ <p>-srv: router7-dhcp4d --lan lan0
    <p>-oth  eth0 ──── other0 10.99.0.1/24 ──────────────┘   (requests on other0 must be ignored)

Clients run without hook scripts and, for dhcpcd, in a private mount namespace with
tmpfs over /var/lib/dhcpcd and /run, so nothing on the host changes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from router7.dhcp4d.pool import Pool
from tests.helpers.netns import Namespaces, router7_argv, skip_unless_root_with, unique_tag
from tests.helpers.polling import wait_for
from tests.helpers.shell import run

RESOLV_CONF = Path("/etc/resolv.conf")
_HOST_RESOLV_CONF = RESOLV_CONF.read_bytes() if RESOLV_CONF.exists() else None
LAN = IPv4Network("192.168.42.0/24")
SERVER = "192.168.42.1"
MAC1, MAC2, MAC_OTHER = "02:73:53:00:00:11", "02:73:53:00:00:12", "02:73:53:00:00:13"

pytestmark = [pytest.mark.root, pytest.mark.slow]


class Topology(Namespaces):
    """srv with bridge lan0 (ports p1, p2 to cli1, cli2) and other0 to oth; no IPv6."""

    def __init__(self, tag: str):
        super().__init__(tag, "srv", "cli1", "cli2", "oth", ipv6=False)
        self.srv, self.cli1, self.cli2, self.oth = self.names

    def up(self):
        super().up()
        self.ip(self.srv, "link", "add", "lan0", "type", "bridge")
        for port, ns, mac in (("p1", self.cli1, MAC1), ("p2", self.cli2, MAC2)):
            self.veth(self.srv, port, ns, "eth0", b_mac=mac)
            self.ip(self.srv, "link", "set", port, "master", "lan0")
        self.addr(self.srv, "lan0", f"{SERVER}/24")
        self.ip(self.srv, "link", "set", "lan0", "up")
        self.veth(self.srv, "other0", self.oth, "eth0", b_mac=MAC_OTHER)
        self.addr(self.srv, "other0", "10.99.0.1/24")
        return self

    def addresses(self, ns):
        out = json.loads(self.ip(ns, "-j", "-4", "addr", "show", "dev", "eth0") or "[]")
        return [a["local"] for link in out for a in link.get("addr_info", [])]


class Daemon:
    """router7-dhcp4d in the server namespace, plus a stand-in dnsd counting SIGUSR1."""

    def __init__(self, topo: Topology, root: Path):
        self.topo, self.root = topo, root
        self.perm, self.run_dir = root / "perm", root / "run"
        self.log = root / "dhcp4d.log"
        self.proc = None
        self.dnsd = None
        self.dnsd_events = root / "dnsd.events"

    def start(self):
        argv = router7_argv("dhcp4d", self.perm, self.run_dir, "--lan", "lan0")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.topo.srv, *argv],
            stderr=open(self.log, "ab"),  # noqa: SIM115 (the child owns it)
        )
        wait_for(
            lambda: self.log.exists() and b"ready" in self.log.read_bytes(),
            "dhcp4d ready",
            logs=[self.log],
        )

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        assert self.proc.returncode == 0, self.log.read_text()[-3000:]

    def start_dnsd(self):
        code = (
            "import signal, sys\n"
            "from router7.runtime import notify\n"
            "run_dir, events = sys.argv[1], sys.argv[2]\n"
            "def usr1(*_):\n"
            "    open(events, 'a').write('usr1\\n')\n"
            "signal.signal(signal.SIGUSR1, usr1)\n"
            "notify.register(run_dir, 'dnsd')\n"
            "open(events, 'a').write('started\\n')\n"
            "while True:\n"
            "    signal.pause()\n"
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.dnsd = subprocess.Popen(
            [sys.executable, "-c", code, str(self.run_dir), str(self.dnsd_events)]
        )
        wait_for(lambda: self.dnsd_events.exists(), "fake dnsd")

    def dnsd_signals(self) -> int:
        return self.dnsd_events.read_text().split().count("usr1")

    def leases(self) -> dict[str, dict]:
        path = self.perm / "dhcp4d" / "leases.json"
        try:
            return {e["hardware_addr"]: e for e in json.loads(path.read_text())}
        except (OSError, ValueError):
            return {}

    def http(self, ns, path):
        return run(
            "ip", "netns", "exec", ns, "curl", "-sS", "-m", "5", f"http://{SERVER}:8067{path}"
        ).stdout

    def metric(self, ns, name) -> float:
        for line in self.http(ns, "/metrics").splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    skip_unless_root_with("ip", "dhcpcd", "udhcpc", "unshare", "curl")
    topo = Topology(unique_tag("d4d"))
    daemon = Daemon(topo, tmp_path_factory.mktemp("dhcp4d"))
    try:
        topo.up()
        daemon.start_dnsd()
        daemon.start()
        yield topo, daemon
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.proc.kill()
        if daemon.dnsd:
            daemon.dnsd.kill()
        topo.down()
    now = RESOLV_CONF.read_bytes() if RESOLV_CONF.exists() else None
    assert now == _HOST_RESOLV_CONF, "a DHCP client changed the host's /etc/resolv.conf"


def dhcpcd(topo: Topology, tmp: Path, hostname: str) -> subprocess.Popen:
    """dhcpcd in the foreground, IPv4 only, no hooks, private /run and /var/lib/dhcpcd."""
    inner = (
        "mount -t tmpfs tmpfs /run && mkdir -p /run/dhcpcd && "
        "mount -t tmpfs tmpfs /var/lib/dhcpcd && "
        f"exec dhcpcd -f /dev/null -c /bin/true -4 -B -A -L -t 20 -h {hostname} eth0"
    )
    return subprocess.Popen(
        ["ip", "netns", "exec", topo.cli1, "unshare", "-m", "sh", "-c", inner],
        stdout=open(tmp / "dhcpcd.log", "ab"),
        stderr=subprocess.STDOUT,
    )


def udhcpc(topo, ns, *extra, timeout=30):
    """One-shot busybox udhcpc without a script: prints the lease it got."""
    return run(
        "ip",
        "netns",
        "exec",
        ns,
        "udhcpc",
        "-i",
        "eth0",
        "-f",
        "-q",
        "-s",
        "/bin/true",
        *extra,
        check=False,
        timeout=timeout,
    )


def test_dhcpcd_gets_renews_and_releases(env, tmp_path):
    topo, daemon = env
    signals_before = daemon.dnsd_signals()
    client = dhcpcd(topo, tmp_path, "midna")
    log = tmp_path / "dhcpcd.log"
    try:
        lease = wait_for(lambda: daemon.leases().get(MAC1), "midna's lease", logs=[log])
        assert lease["hostname"] == "midna"
        addr = IPv4Address(lease["addr"])
        assert addr in LAN and str(addr) != SERVER
        assert parse_time(lease["expiry"]) > datetime.now(UTC)
        wait_for(lambda: f"{addr}" in topo.addresses(topo.cli1), "address on cli1 eth0", logs=[log])
        wait_for(lambda: daemon.dnsd_signals() > signals_before, "SIGUSR1 to dnsd")

        page = daemon.http(topo.cli1, "/")
        assert "midna" in page and MAC1 in page and f'<tr class="active"><td>{addr}' in page
        assert daemon.metric(topo.cli1, "dhcp4d_leases_active") >= 1

        # Renew: dhcpcd sends a REQUEST with ciaddr; the ACK moves last_ack on.
        first_ack = lease["last_ack"]
        time.sleep(1.1)  # last_ack has second precision
        client.send_signal(signal.SIGUSR1)  # dhcpcd 9: SIGUSR1 renews
        renewed = wait_for(
            lambda: (e := daemon.leases().get(MAC1)) and e["last_ack"] != first_ack and e,
            "the renewal",
            logs=[log],
        )
        assert renewed["addr"] == str(addr)
        assert daemon.metric(topo.cli1, 'dhcp4d_packets_sent_total{type="ack"}') >= 2

        # Release: SIGALRM makes dhcpcd 9 release and exit; the lease expires now.
        client.send_signal(signal.SIGALRM)
        client.wait(15)
        released = wait_for(
            lambda: (
                (e := daemon.leases().get(MAC1))
                and parse_time(e["expiry"]) <= datetime.now(UTC)
                and e
            ),
            "the release",
            logs=[log],
        )
        assert released["addr"] == str(addr)
        assert daemon.metric(topo.srv, 'dhcp4d_packets_received_total{type="release"}') >= 1
        assert f'<tr class="expired"><td>{addr}' in daemon.http(topo.srv, "/")
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert (RESOLV_CONF.read_bytes() if RESOLV_CONF.exists() else None) == _HOST_RESOLV_CONF


def test_udhcpc_with_broadcast_flag_gets_a_lease_with_its_hostname(env):
    topo, daemon = env
    proc = udhcpc(topo, topo.cli2, "-B", "-x", "hostname:zelda", "-n", "-t", "5", "-T", "2")
    assert proc.returncode == 0, proc.stderr
    # leases.json is written at most once a second: wait for it
    lease = wait_for(lambda: daemon.leases().get(MAC2), "zelda's lease", logs=[daemon.log])
    assert lease["hostname"] == "zelda" and IPv4Address(lease["addr"]) in LAN
    assert f"lease of {lease['addr']} obtained" in proc.stderr + proc.stdout
    assert "zelda" in daemon.http(topo.srv, "/")


def test_previous_address_survives_a_restart(env):
    topo, daemon = env
    # An address the MAC-hash would not pick, so only the persisted lease can explain it.
    pool = Pool.for_interface(f"{SERVER}/24")
    hashed = next(pool.scan_from(MAC2))
    wanted = (
        IPv4Address("192.168.42.77")
        if hashed != IPv4Address("192.168.42.77")
        else IPv4Address("192.168.42.78")
    )
    proc = udhcpc(topo, topo.cli2, "-r", str(wanted), "-n", "-t", "5", "-T", "2")
    assert proc.returncode == 0, proc.stderr
    wait_for(lambda: daemon.leases().get(MAC2, {}).get("addr") == str(wanted), "the lease on disk")
    daemon.stop()
    daemon.start()
    proc = udhcpc(topo, topo.cli2, "-n", "-t", "5", "-T", "2")
    assert proc.returncode == 0, proc.stderr
    assert f"lease of {wanted} obtained" in proc.stderr + proc.stdout


def test_requests_on_another_interface_are_ignored(env):
    topo, daemon = env
    received = daemon.metric(topo.srv, 'dhcp4d_packets_received_total{type="discover"}')
    proc = udhcpc(topo, topo.oth, "-n", "-t", "3", "-T", "1")
    assert proc.returncode != 0 and "obtained" not in proc.stderr + proc.stdout
    assert MAC_OTHER not in daemon.leases()
    after = daemon.metric(topo.srv, 'dhcp4d_packets_received_total{type="discover"}')
    assert after == received
    assert daemon.proc.poll() is None


def test_sigusr1_rereads_the_config_static_lease(env):
    topo, daemon = env
    config = daemon.perm / "dhcp4d" / "config.json"
    config.write_text(
        json.dumps({"static_leases": {MAC2: {"addr": "192.168.42.250", "hostname": "printer"}}})
    )
    try:
        reloads = daemon.log.read_text().count("pool 192.168.42.2-")
        daemon.proc.send_signal(signal.SIGUSR1)  # `ip netns exec` execs: this is the daemon
        wait_for(
            lambda: daemon.log.read_text().count("pool 192.168.42.2-") > reloads,
            "the reload",
            logs=[daemon.log],
        )
        proc = udhcpc(topo, topo.cli2, "-x", "hostname:hp-laserjet", "-n", "-t", "5", "-T", "2")
        assert proc.returncode == 0, proc.stderr
        assert "lease of 192.168.42.250 obtained" in proc.stderr + proc.stdout
        lease = wait_for(
            lambda: (e := daemon.leases().get(MAC2)) and e["addr"] == "192.168.42.250" and e,
            "the static lease on disk",
        )
        assert lease["hostname"] == "printer"
        assert lease["expiry"] == "0001-01-01T00:00:00Z"  # static, as router7 writes it
    finally:
        config.unlink()
        daemon.proc.send_signal(signal.SIGUSR1)
