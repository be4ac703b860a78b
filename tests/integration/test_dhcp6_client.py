"""router7-dhcp6 as a real process against kea-dhcp6 in network namespaces.

Most scenarios need server settings the shared lab does not have (T1 of seconds, a
server that vanishes, a different PD pool), so this module builds its own pair of
namespaces: ``srv`` (down0, 2001:db8:1::1/64, kea-dhcp6) and ``cli`` (uplink0, no
global address: the client only writes state). One test runs against the shared
lab's kea to check the delegated /48 is routed by the ISP. What the server saw is
read from kea's debug log (DHCP6_PACKET_RECEIVED names every message type).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from datetime import datetime
from ipaddress import IPv6Network
from pathlib import Path

import pytest

from router7.lab.netns import which
from tests.helpers.netns import UplinkPair, router7_argv, skip_unless_root_with, unique_tag
from tests.helpers.polling import wait_for
from tests.helpers.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.slow]

POOL_A, POOL_B = "2001:db8:100::/40", "2001:db8:200::/40"


class Pair(UplinkPair):
    """srv/down0 (2001:db8:1::1/64) and cli/uplink0."""

    def __init__(self):
        super().__init__(unique_tag("d6t"), "2001:db8:1::1/64")


class Kea:
    """A kea-dhcp6 of our own in the srv namespace, with debug logging of every message."""

    def __init__(self, pair: Pair, state: Path):
        self.pair = pair
        self.state = state
        self.log = state / "kea.log"
        self.proc: subprocess.Popen | None = None

    def start(
        self,
        *,
        pool=POOL_A,
        t1=2,
        t2=3,
        preferred=6,
        valid=10,
        fresh=False,
        rapid_commit=False,
        unicast=False,
    ) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        leases = self.state / "leases6.csv"
        if fresh:
            leases.unlink(missing_ok=True)
        net = IPv6Network(pool)
        conf = {
            "Dhcp6": {
                # "down0/<address>" makes kea listen for unicast there as well.
                "interfaces-config": {
                    "interfaces": ["down0/2001:db8:1::1" if unicast else "down0"]
                },
                "data-directory": str(self.state),
                "lease-database": {
                    "type": "memfile",
                    "persist": True,
                    "name": str(leases),
                    "lfc-interval": 0,
                },
                "preferred-lifetime": preferred,
                "valid-lifetime": valid,
                "renew-timer": t1,
                "rebind-timer": t2,
                "subnet6": [
                    {
                        "id": 1,
                        "subnet": "2001:db8:1::/64",
                        "interface": "down0",
                        "rapid-commit": rapid_commit,
                        "pools": [{"pool": "2001:db8:1::1000-2001:db8:1::1fff"}],
                        "pd-pools": [
                            {
                                "prefix": str(net.network_address),
                                "prefix-len": net.prefixlen,
                                "delegated-len": 48,
                            }
                        ],
                        "option-data": [
                            {"name": "dns-servers", "data": "2001:db8:1::53, 2001:db8:1::54"},
                            *(
                                [{"name": "unicast", "data": "2001:db8:1::1", "always-send": True}]
                                if unicast
                                else []
                            ),
                        ],
                    }
                ],
                "loggers": [
                    {
                        "name": "kea-dhcp6",
                        "output_options": [{"output": str(self.log), "flush": True}],
                        "severity": "DEBUG",
                        "debuglevel": 50,
                    }
                ],
            }
        }
        mark = self.mark()
        path = self.state / "kea-dhcp6.json"
        path.write_text(json.dumps(conf))
        env = {
            **os.environ,
            "KEA_PIDFILE_DIR": str(self.state),
            "KEA_LOCKFILE_DIR": str(self.state),
        }
        (self.state / "kea-dhcp6.kea-dhcp6.pid").unlink(missing_ok=True)
        out = open(self.state / "kea.out", "ab")  # noqa: SIM115 (kept open for the child)
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.pair.srv, which("kea-dhcp6"), "-c", str(path)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        out.close()
        wait_for(
            lambda: self.log.exists() and "DHCP6_STARTED" in self.log.read_text()[mark:],
            "kea-dhcp6 to start",
            logs=(self.log, self.state / "kea.out"),
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def mark(self) -> int:
        return len(self.log.read_text()) if self.log.exists() else 0

    def received(self, since: int = 0) -> list[str]:
        """Message types kea received, in order (e.g. ["SOLICIT", "REQUEST", "RENEW"])."""
        text = self.log.read_text()[since:] if self.log.exists() else ""
        return re.findall(r"DHCP6_PACKET_RECEIVED .*?: (\w+) \(type \d+\) received", text)


class Client:
    """router7-dhcp6 running in a namespace with its own perm and run dirs."""

    def __init__(self, ns: str, state: Path):
        self.ns = ns
        self.perm = state / "perm"
        self.run_dir = state / "run"
        self.log = state / "client.log"
        self.lease_file = self.perm / "dhcp6" / "wire" / "lease.json"
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 (kept open for the child)
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                *router7_argv("dhcp6", self.perm, self.run_dir, *args),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()

    def lease(self) -> dict | None:
        try:
            return json.loads(self.lease_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait_lease(
        self, what: str, predicate=lambda lease: True, timeout: float = 20.0, logs=()
    ) -> dict:
        return wait_for(
            lambda: (lease := self.lease()) is not None and predicate(lease) and lease,
            what,
            timeout,
            logs=(self.log, *logs),
        )

    def wait_newer_lease(self, lease: dict, what: str, **kw) -> dict:
        t0 = datetime.fromisoformat(lease["obtained_at"])
        return self.wait_lease(
            what, lambda new: datetime.fromisoformat(new["obtained_at"]) > t0, **kw
        )

    def sent(self) -> list[str]:
        """Message types the client logged as sent, in order."""
        text = self.log.read_text() if self.log.exists() else ""
        return re.findall(r"sent (\w+) #\d+", text)

    def stop(self, sig=signal.SIGTERM, timeout: float = 10) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def pair():
    skip_unless_root_with("ip", "kea-dhcp6")
    with Pair() as p:
        yield p


@pytest.fixture
def kea(pair, tmp_path):
    k = Kea(pair, tmp_path / "kea")
    yield k
    k.stop()


@pytest.fixture
def client(pair, tmp_path):
    c = Client(pair.cli, tmp_path / "client")
    yield c
    c.stop(signal.SIGKILL)


def prefixes(lease: dict) -> list[str]:
    return [p["prefix"] for p in lease["prefixes"]]


def test_obtain_renew_and_restart_rebinds_without_solicit(kea, client):
    kea.start(t1=2, t2=3, preferred=6, valid=10)
    client.start()
    lease = client.wait_lease("a lease", logs=(kea.log,))
    (prefix,) = prefixes(lease)
    net = IPv6Network(prefix)
    assert net.prefixlen == 48 and net.subnet_of(IPv6Network(POOL_A))
    assert lease["dns"] == ["2001:db8:1::53", "2001:db8:1::54"]
    assert lease["addresses"][0]["address"].startswith("2001:db8:1::1")
    assert (lease["t1"], lease["t2"]) == (2, 3)
    # Without a duid file the client made a DUID-LL from the uplink MAC and kept it.
    duid = (client.perm / "dhcp6" / "duid").read_bytes()
    assert duid[:4] == bytes.fromhex("00030001") and len(duid) == 10
    assert lease["client_duid"] == duid.hex()
    assert kea.received()[:2] == ["SOLICIT", "REQUEST"]

    renewed = client.wait_newer_lease(lease, "a renewal at T1")
    assert prefixes(renewed) == [prefix]
    assert "RENEW" in kea.received()
    assert "SOLICIT" not in kea.received()[1:]

    assert client.stop() == 0
    stopped = client.lease()  # possibly renewed again since
    mark = kea.mark()
    client.start()
    after = client.wait_newer_lease(stopped, "a lease after the restart", logs=(kea.log,))
    assert prefixes(after) == [prefix]
    assert (client.perm / "dhcp6" / "duid").read_bytes() == duid
    seen = kea.received(mark)
    assert seen[0] == "REBIND"
    assert "SOLICIT" not in seen


def test_rapid_commit_pd_only_binds_with_two_messages(kea, client):
    kea.start(t1=600, t2=900, preferred=1200, valid=2400, rapid_commit=True)
    client.start("--rapid-commit", "--pd-only")
    lease = client.wait_lease("a lease", logs=(kea.log,))
    assert IPv6Network(prefixes(lease)[0]).subnet_of(IPv6Network(POOL_A))
    assert lease["addresses"] == []  # --pd-only: no IA_NA asked for
    assert kea.received() == ["SOLICIT"]  # Solicit + Reply, no Advertise/Request
    assert client.sent() == ["solicit"]
    assert "DHCP6_LEASE_ALLOC" not in kea.log.read_text()  # no IA_NA address allocated
    assert "DHCP6_PD_LEASE_ALLOC" in kea.log.read_text()


def test_renew_is_unicast_only_when_server_unicast_is_usable(pair, kea, client):
    """Server Unicast: the first Renew goes to the server's address when the uplink can
    reach it; without a global source address the send fails and multicast takes over."""
    kea.start(t1=2, t2=30, preferred=40, valid=60, unicast=True)
    client.start()
    lease = client.wait_lease("a lease", logs=(kea.log,))
    assert lease["server_unicast"] == "2001:db8:1::1"
    mark = kea.mark()
    renewed = client.wait_newer_lease(lease, "a renewal without a global address")
    assert "send to 2001:db8:1::1 failed" in client.log.read_text()
    assert re.search(
        r"RENEW \(type 5\) received from fe80::\S+ to ff02::1:2", kea.log.read_text()[mark:]
    )
    # What netconfigd would do: the IA_NA address on the uplink. Now unicast works.
    sh(
        "ip",
        "-n",
        pair.cli,
        "addr",
        "add",
        f"{renewed['addresses'][0]['address']}/64",
        "dev",
        "uplink0",
        "nodad",
    )
    try:
        mark = kea.mark()
        client.wait_newer_lease(renewed, "a unicast renewal", logs=(kea.log,))
        seen = kea.log.read_text()[mark:]
        assert re.search(r"RENEW \(type 5\) received from 2001:db8:1::\S+ to 2001:db8:1::1 ", seen)
    finally:
        sh("ip", "-n", pair.cli, "addr", "flush", "dev", "uplink0", "scope", "global")


def test_server_outage_keeps_lease_retries_with_backoff_and_recovers(kea, client):
    kea.start(t1=2, t2=3, preferred=4, valid=5)
    client.start("--sol-max-rt", "4")
    lease = client.wait_lease("a lease", logs=(kea.log,))
    kea.stop()
    bound = len(client.sent())
    # Renew at T1, Rebind at T2, and after the valid lifetime Solicits again.
    wait_for(
        lambda: client.sent()[bound:].count("solicit") >= 4,
        "Solicits after expiry",
        30,
        logs=(client.log,),
    )
    during = client.sent()[bound:]
    assert during.index("renew") < during.index("rebind") < during.index("solicit")
    text = client.log.read_text()
    text = text[text.index("lease ran out") :]  # only the Solicits after expiry
    times = [
        datetime.strptime(m, "%Y-%m-%d %H:%M:%S,%f")
        for m in re.findall(r"^(\S+ \S+) DEBUG .*sent solicit #", text, re.M)
    ]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[-1] > gaps[0] * 1.5  # exponential backoff ...
    assert max(gaps) <= 4 * 1.1 + 0.3  # ... capped by --sol-max-rt
    # Connectivity first: the expired lease stays on disk, untouched.
    assert client.lease() == lease
    kea.start(t1=2, t2=3, preferred=4, valid=5)
    recovered = client.wait_newer_lease(
        lease, "recovery after the server returned", timeout=15, logs=(kea.log,)
    )
    assert IPv6Network(prefixes(recovered)[0]).subnet_of(IPv6Network(POOL_A))


def test_cable_back_rebinds_at_once_and_keeps_the_prefix(pair, kea, client):
    # Keep the ISP side's addresses while its link is down: kea's socket stays usable.
    sh("ip", "netns", "exec", pair.srv, "sysctl", "-qw", "net.ipv6.conf.down0.keep_addr_on_down=1")
    kea.start(t1=2, t2=3, preferred=30, valid=60)
    client.start()
    lease = client.wait_lease("a lease", logs=(kea.log,))
    sh("ip", "-n", pair.srv, "link", "set", "down0", "down")  # uplink0 loses its carrier
    try:
        client.wait_lease(
            "the client to rebind while the cable is out",
            lambda _: "rebind" in client.sent()[len(client.sent()) - 1 :],
            logs=(kea.log,),
        )
        out = client.lease()
        mark = kea.mark()
    finally:
        sh("ip", "-n", pair.srv, "link", "set", "down0", "up")
    back = client.wait_newer_lease(out, "a lease once the cable is back", logs=(kea.log,))
    assert prefixes(back) == prefixes(lease)
    # The carrier set off a new Rebind exchange (#1), not a retransmission of the old one.
    log = client.log.read_text()
    after = log[log.index("uplink0 has carrier again") :]
    assert re.findall(r"sent (\w+ #\d+)", after)[:1] == ["rebind #1"], after[:2000]
    assert "SOLICIT" not in kea.received(mark)


def test_isp_changes_delegated_prefix_records_previous_prefix(kea, client):
    kea.start(pool=POOL_A, t1=2, t2=3, preferred=30, valid=60)
    client.start()
    lease = client.wait_lease("a lease from pool A", logs=(kea.log,))
    (old,) = prefixes(lease)
    # The ISP renumbers: a new PD pool and no memory of our binding.
    kea.stop()
    kea.start(pool=POOL_B, t1=2, t2=3, preferred=30, valid=60, fresh=True)
    new = client.wait_lease(
        "a prefix from pool B",
        lambda lease: (
            lease["prefixes"]
            and all(IPv6Network(p).subnet_of(IPv6Network(POOL_B)) for p in prefixes(lease))
        ),
        logs=(kea.log,),
    )
    (previous,) = new["previous_prefixes"]
    assert previous["prefix"] == old
    assert previous["valid_until"] == lease["prefixes"][0]["valid_until"]
    assert previous["preferred_until"] == lease["prefixes"][0]["preferred_until"]


def test_lab_kea_delegates_a_routed_48_and_release_withdraws_it(lab, wait_until, tmp_path):
    c = Client(lab.ns("router"), tmp_path)
    c.start()
    try:
        lease = c.wait_lease("a lease from the lab's kea", timeout=30)
        (prefix,) = prefixes(lease)
        assert lab.addr.is_delegated_prefix(prefix)
        assert set(lease["dns"]) == set(lab.addr.isp_dns_v6)
        wait_until(
            lambda: prefix in [r["prefix"] for r in lab.pd_routes()],
            10,
            what=f"an ISP route to {prefix}",
        )
        assert c.stop(signal.SIGUSR2) == 125  # RELEASE, then "don't restart me"
        assert not c.lease_file.exists()
        assert "release" in c.sent()
        wait_until(
            lambda: prefix not in [r["prefix"] for r in lab.pd_routes()],
            10,
            what=f"the route to {prefix} to go",
        )
    finally:
        c.stop(signal.SIGKILL)
