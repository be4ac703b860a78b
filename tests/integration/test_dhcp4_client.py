"""router7-dhcp4 as a real process against kea-dhcp4 and dnsmasq in network namespaces.

Most scenarios need server settings the shared lab does not have (20 s leases,
T1/T2 of a few seconds, a server that vanishes), so this module builds its own
pair of namespaces: ``srv`` (down0, 192.0.2.1/25, the DHCP server) and ``cli``
(uplink0, no address: the client does not configure addresses). One test runs
against the shared lab's kea as well. Assertions are on the client's files and
on what the servers logged (message type, source and destination).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers.netns import UplinkPair, router7_argv, skip_unless_root_with, unique_tag
from tests.helpers.peers import dnsmasq_dhcp
from tests.helpers.polling import wait_for
from tests.helpers.shell import sh

pytestmark = [pytest.mark.root, pytest.mark.slow]

SERVER_IP = "192.0.2.1"


class Pair(UplinkPair):
    """srv/down0 (192.0.2.1/25) and cli/uplink0, plus netconfigd's part and a filter."""

    def __init__(self):
        super().__init__(unique_tag("d4t"), f"{SERVER_IP}/25")

    def configure(self, lease: dict) -> None:
        """Do netconfigd's part: put the leased address on uplink0."""
        sh("ip", "-n", self.cli, "addr", "replace", lease["address"], "dev", "uplink0")

    def block_unicast_to_server(self) -> None:
        """Drop unicast to the server's port 67 on the way out (broadcast still passes).

        Filtering in the server's namespace would not do: kea reads through a
        packet socket, which sees frames before any netfilter hook.
        """
        self.nft(
            "-f",
            "-",
            input=(
                "table netdev d4test {\n"
                "  chain out {\n"
                '    type filter hook egress device "uplink0" priority 0;\n'
                f"    ip daddr {SERVER_IP} udp dport 67 counter drop\n"
                "  }\n"
                "}\n"
            ),
        )

    def blocked_packets(self) -> int:
        out = self.nft("list", "table", "netdev", "d4test")
        m = re.search(r"counter packets (\d+)", out)
        return int(m.group(1)) if m else 0

    def unblock(self) -> None:
        self.nft("delete", "table", "netdev", "d4test", check=False)

    def nft(self, *args: str, **kw) -> str:
        return sh("ip", "netns", "exec", self.cli, "nft", *args, **kw)


@pytest.fixture(scope="module")
def pair():
    skip_unless_root_with("ip", "kea-dhcp4", "dnsmasq", "nft")
    with Pair() as p:
        yield p


@pytest.fixture
def net(pair):
    yield pair
    pair.unblock()
    sh("ip", "-n", pair.cli, "addr", "flush", "dev", "uplink0", check=False)


# --- servers ---------------------------------------------------------------------

KEA_PACKET = re.compile(
    r"DHCP4_PACKET_RECEIVED .*tid=0x([0-9a-f]+): DHCP(\w+) \(type \d+\) received from (\S+) to (\S+) on"
)


class Kea:
    def __init__(self, pair: Pair, dir: Path, lifetime: int):
        self.pair, self.dir = pair, dir
        self.log = dir / "kea.log"
        self.conf = dir / "kea.json"
        self.proc: subprocess.Popen | None = None
        dir.mkdir(parents=True, exist_ok=True)
        conf = {
            "Dhcp4": {
                "interfaces-config": {"interfaces": ["down0"], "dhcp-socket-type": "raw"},
                "lease-database": {
                    "type": "memfile",
                    "persist": True,
                    "name": str(dir / "kea.leases"),
                    "lfc-interval": 0,
                },
                "valid-lifetime": lifetime,
                "subnet4": [
                    {
                        "id": 1,
                        "subnet": "192.0.2.0/25",
                        "pools": [{"pool": "192.0.2.10 - 192.0.2.100"}],
                        "option-data": [
                            {"name": "routers", "data": SERVER_IP},
                            {"name": "domain-name-servers", "data": "198.51.100.53, 198.51.100.54"},
                        ],
                    }
                ],
                "loggers": [
                    {
                        "name": "kea-dhcp4",
                        "output_options": [{"output": str(self.log), "flush": True}],
                        "severity": "DEBUG",
                        "debuglevel": 99,  # DHCP4_PACKET_RECEIVED: type, source, destination
                    }
                ],
            }
        }
        self.conf.write_text(json.dumps(conf, indent=2))

    def start(self) -> Kea:
        env = {**os.environ, "KEA_PIDFILE_DIR": str(self.dir), "KEA_LOCKFILE_DIR": str(self.dir)}
        (self.dir / "kea.kea-dhcp4.pid").unlink(missing_ok=True)
        with open(self.dir / "kea.stderr", "ab") as err:
            self.proc = self.pair.popen(
                self.pair.srv,
                "kea-dhcp4",
                "-c",
                str(self.conf),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_for(
            lambda: self.log.exists() and "DHCP4_STARTED" in self.log.read_text(),
            "kea to start",
            logs=[self.dir / "kea.stderr"],
        )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def received(self) -> list[tuple[str, str, str]]:
        """(type, from, to) of every message kea received."""
        text = self.log.read_text() if self.log.exists() else ""
        return [(m[2], m[3], m[4]) for m in KEA_PACKET.finditer(text)]


DNSMASQ_LINE = re.compile(r"DHCP(DISCOVER|OFFER|REQUEST|ACK|NAK|RELEASE|DECLINE)\(down0\)")


class Dnsmasq:
    def __init__(self, pair: Pair, dir: Path, t1: int, t2: int):
        self.pair, self.dir = pair, dir
        dir.mkdir(parents=True, exist_ok=True)
        self.log = dir / "dnsmasq.log"
        # dnsmasq's shortest lease is 2 min; T1/T2 options make it renew sooner.
        options = (
            f"--dhcp-option=58,{t1}",
            f"--dhcp-option=59,{t2}",
            "--dhcp-option=6,198.51.100.53",
        )
        self.argv = dnsmasq_dhcp(
            "down0", "192.0.2.10,192.0.2.100,255.255.255.128,2m", dir, *options
        )
        self.proc = None

    def start(self) -> Dnsmasq:
        self.proc = self.pair.popen(self.pair.srv, *self.argv, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.log.exists() and "started" in self.log.read_text(), "dnsmasq")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def actions(self) -> list[str]:
        text = self.log.read_text() if self.log.exists() else ""
        return DNSMASQ_LINE.findall(text)


# --- the client --------------------------------------------------------------------


class Client:
    def __init__(self, ns: str, dir: Path, uplink: str = "uplink0"):
        self.ns, self.dir, self.uplink = ns, dir, uplink
        self.perm, self.run = dir / "perm", dir / "run"
        self.lease_path = self.perm / "dhcp4/wire/lease.json"
        self.ack_path = self.perm / "dhcp4/wire/ack"
        self.log = dir / "client.log"
        self.proc: subprocess.Popen | None = None
        dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        extra = ("--uplink", self.uplink, "--hostname", "r7test")
        return ["ip", "netns", "exec", self.ns, *router7_argv("dhcp4", self.perm, self.run, *extra)]

    def start(self) -> Client:
        argv = self.argv()
        # The log is appended to across restarts: wait for one more "ready" line.
        readies = self.log.read_text().count(" ready\n") if self.log.exists() else 0
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(argv, stderr=err)
        wait_for(
            lambda: (
                self.log.read_text().count(" ready\n") > readies or self.proc.poll() is not None
            ),
            "the client to start",
            logs=[self.log],
        )
        assert self.proc.poll() is None, self.log.read_text()
        return self

    def lease(self) -> dict | None:
        try:
            return json.loads(self.lease_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def wait_lease(self, newer_than: str = "", timeout: float = 30.0) -> dict:
        """The first lease.json whose obtained_at is later than ``newer_than``."""

        def fresh():
            lease = self.lease()
            return lease if lease and lease["obtained_at"] > newer_than else None

        return wait_for(fresh, f"a lease obtained after {newer_than!r}", timeout, logs=[self.log])

    def signal(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(15)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def cleanup():
    things = []
    yield things.append
    for thing in reversed(things):
        thing.stop()


def seconds_until(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() - time.time()


# --- scenarios ---------------------------------------------------------------------


def kea_and_client(net, tmp_path, cleanup, lifetime: int) -> tuple[Kea, Client]:
    """kea on srv with ``lifetime`` s leases, router7-dhcp4 on cli; both stopped after."""
    kea = Kea(net, tmp_path / "kea", lifetime=lifetime).start()
    cleanup(kea)
    client = Client(net.cli, tmp_path / "client").start()
    cleanup(client)
    return kea, client


def test_kea_obtain_renew_restart_release(net, tmp_path, cleanup):
    kea, client = kea_and_client(net, tmp_path, cleanup, lifetime=20)

    lease = client.wait_lease()
    ip = lease["address"].split("/")[0]
    assert lease["address"].endswith("/25") and lease["client_ip"] == ip
    assert lease["router"] == SERVER_IP and lease["server"] == SERVER_IP
    assert lease["dns"] == ["198.51.100.53", "198.51.100.54"]
    assert lease["lease_time"] == 20 and lease["valid_until"] == lease["renew_at"]
    assert client.ack_path.stat().st_size >= 240
    assert [t for t, _, _ in kea.received()] == ["DISCOVER", "REQUEST"]
    assert all(dst == "255.255.255.255" for _, _, dst in kea.received())

    # SIGUSR1 (netconfigd's "inputs changed") must not kill it: the renewal below needs it.
    client.proc.send_signal(signal.SIGUSR1)

    # Renewal at T1 (10 s) is unicast from the leased address to the server.
    seen = len(kea.received())
    renewed = client.wait_lease(newer_than=lease["obtained_at"], timeout=25)
    assert renewed["address"] == lease["address"]
    assert kea.received()[seen:][:1] == [("REQUEST", ip, SERVER_IP)]

    # A restart asks for the same address (INIT-REBOOT): no DISCOVER.
    client.stop()
    assert client.proc.returncode == 0
    assert client.lease() == renewed  # SIGTERM keeps the files
    seen = len(kea.received())
    client.start()
    rebooted = client.wait_lease(newer_than=renewed["obtained_at"])
    assert rebooted["address"] == lease["address"]
    assert kea.received()[seen:][0] == ("REQUEST", "0.0.0.0", "255.255.255.255")
    assert "DISCOVER" not in [t for t, _, _ in kea.received()[seen:]]

    # SIGUSR2: RELEASE (unicast, from the leased address), files removed, exit 125.
    seen = len(kea.received())
    assert client.signal(signal.SIGUSR2) == 125
    assert not client.lease_path.exists() and not client.ack_path.exists()
    wait_for(
        lambda: ("RELEASE", ip, SERVER_IP) in kea.received()[seen:],
        "kea to see RELEASE",
        logs=[kea.log],
    )


def test_kea_rebind_when_the_server_no_longer_answers_unicast(net, tmp_path, cleanup):
    kea, client = kea_and_client(net, tmp_path, cleanup, lifetime=20)
    lease = client.wait_lease()
    ip = lease["address"].split("/")[0]
    net.block_unicast_to_server()
    seen = len(kea.received())

    # T1 (10 s): the unicast RENEW is dropped; T2 (17.5 s): broadcast REBIND is answered.
    rebound = client.wait_lease(newer_than=lease["obtained_at"], timeout=30)
    assert rebound["address"] == lease["address"]
    assert net.blocked_packets() >= 1  # the client did try unicast first
    after = kea.received()[seen:]
    assert after[0] == ("REQUEST", ip, "255.255.255.255")
    assert (("REQUEST", ip, SERVER_IP)) not in after
    assert "rebinding" in client.log.read_text()
    assert rebound["obtained_at"] >= lease["rebind_at"]


def test_cable_back_while_rebinding_confirms_with_init_reboot_at_once(net, tmp_path, cleanup):
    kea = Kea(net, tmp_path / "kea", lifetime=32).start()  # T2 28 s, end 32 s
    cleanup(kea)
    client = Client(net.cli, tmp_path / "client").start()
    cleanup(client)
    lease = client.wait_lease()
    sh("ip", "-n", net.srv, "link", "set", "down0", "down")  # uplink0 loses its carrier
    try:
        wait_for(
            lambda: "rebinding" in client.log.read_text(),
            "the client to rebind while the cable is out",
            seconds_until(lease["rebind_at"]) + 5,
            logs=[client.log],
        )
        seen = len(kea.received())
    finally:
        sh("ip", "-n", net.srv, "link", "set", "down0", "up")
    back = client.wait_lease(newer_than=lease["obtained_at"], timeout=20)
    assert back["address"] == lease["address"]
    # INIT-REBOOT (from 0.0.0.0, no server id) set off by the carrier: a rebinding
    # REQUEST would come from the leased address, and only a minute later.
    assert kea.received()[seen:][:1] == [("REQUEST", "0.0.0.0", "255.255.255.255")]
    assert "DISCOVER" not in [t for t, _, _ in kea.received()[seen:]]


def test_kea_outage_longer_than_the_lease_keeps_the_files_and_recovers(net, tmp_path, cleanup):
    kea, client = kea_and_client(net, tmp_path, cleanup, lifetime=12)
    lease = client.wait_lease()
    kea.stop()

    # Wait until the lease has run out (its own expiry, plus a margin for the timer).
    wait_for(
        lambda: "expired" in client.log.read_text(),
        "the lease to expire",
        seconds_until(lease["expires_at"]) + 10,
        logs=[client.log],
    )
    assert client.lease() == lease  # lease.json and the ACK stay: netconfigd keeps the config
    assert client.ack_path.exists()
    log = client.log.read_text()
    expired_at = log.index("expired")
    wait_for(
        lambda: client.log.read_text()[expired_at:].count("sent discover") >= 2,
        "DISCOVERs after expiry",
        15,
        logs=[client.log],
    )
    assert client.proc.poll() is None

    kea.start()  # the server comes back (with its lease file)
    back = client.wait_lease(newer_than=lease["obtained_at"], timeout=40)
    assert back["address"] == lease["address"]  # the DISCOVER asked for the old address
    types = [t for t, _, _ in kea.received()]
    assert types[-2:] == ["DISCOVER", "REQUEST"]


def test_dnsmasq_obtain_renew_restart_release(net, tmp_path, cleanup):
    """router7's own integration test, with dnsmasq's log as the witness."""
    dnsmasq = Dnsmasq(net, tmp_path / "dnsmasq", t1=4, t2=7).start()
    cleanup(dnsmasq)
    client = Client(net.cli, tmp_path / "client").start()
    cleanup(client)
    lease = client.wait_lease()
    assert lease["lease_time"] == 120  # T1 comes from option 58, not from 50 %
    assert seconds_until(lease["renew_at"]) <= 4 and lease["dns"] == ["198.51.100.53"]
    # dnsmasq answers a RENEW with a plain UDP socket: it needs the address configured.
    net.configure(lease)
    renewed = client.wait_lease(newer_than=lease["obtained_at"], timeout=15)
    assert renewed["address"] == lease["address"]
    client.stop()
    before_restart = dnsmasq.actions()
    client.start()
    client.wait_lease(newer_than=renewed["obtained_at"])
    assert client.signal(signal.SIGUSR2) == 125
    wait_for(
        lambda: dnsmasq.actions()[-1:] == ["RELEASE"], "dnsmasq to log RELEASE", logs=[dnsmasq.log]
    )

    assert before_restart[:4] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    renewals = before_restart[4:]
    assert renewals and renewals == ["REQUEST", "ACK"] * (len(renewals) // 2)
    after = dnsmasq.actions()[len(before_restart) :]
    assert after[:2] == ["REQUEST", "ACK"] and after[-1] == "RELEASE"
    assert "DISCOVER" not in after and "NAK" not in after
    assert "client provides name: r7test" in dnsmasq.log.read_text()


def test_against_the_lab_isp(lab, tmp_path, cleanup):
    """The shared lab's kea (120 s leases): obtain, then release."""
    from router7.lab import ADDR

    client = Client(lab.ns("router"), tmp_path / "client").start()
    cleanup(client)
    lease = client.wait_lease()
    ip = lease["address"].split("/")[0]
    assert ADDR.in_dhcp4_pool(ip) and lease["address"].endswith("/25")
    assert lease["router"] == ADDR.isp_access_v4
    assert lease["dns"] == list(ADDR.isp_dns_v4)
    assert lease["lease_time"] == ADDR.dhcp4_valid_lifetime
    assert any(row.get("address") == ip for row in lab.leases4())
    assert client.signal(signal.SIGUSR2) == 125
    wait_for(
        lambda: not any(row.get("address") == ip for row in lab.leases4()),
        "the lab's kea to drop the released lease",
        20,
    )


RECEIVER = """
import socket, struct
from router7.dhcp4.transport import ETH_P_IP, UDP_DPORT_68, attach_filter
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
attach_filter(s, UDP_DPORT_68)
s.bind(("uplink0", ETH_P_IP))
s.settimeout(10)
print("ready", flush=True)
while True:
    data, _ = s.recvfrom(65535)
    hdr = (data[0] & 0xF) * 4
    payload = data[hdr + 8:]
    print(data[9], struct.unpack("!H", data[hdr + 2: hdr + 4])[0], payload.decode(), flush=True)
    if payload == b"end":
        break
"""

SENDER = """
import socket
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
u.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"down0")
for port, text in [(69, "tftp"), (67, "server"), (68, "one"), (53, "dns"), (68, "end")]:
    u.sendto(text.encode(), ("255.255.255.255", port))
"""


def test_the_socket_filter_passes_only_udp_to_port_68(net):
    """The hand-written BPF program, on a real packet socket."""
    rx = net.popen(net.cli, sys.executable, "-c", RECEIVER, stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        sh("ip", "netns", "exec", net.srv, sys.executable, "-c", SENDER)
        out, _ = rx.communicate(timeout=15)
    finally:
        if rx.poll() is None:
            rx.kill()
    assert out.splitlines() == ["17 68 one", "17 68 end"]


def test_a_missing_uplink_fails_the_start(net, tmp_path):
    client = Client(net.cli, tmp_path / "client", uplink="nosuch0")
    p = subprocess.run(client.argv(), capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert "start failed" in p.stderr and "No such device" in p.stderr
    assert not client.lease_path.exists()
