"""router7-captured as a real process in the lab's router namespace.

    isp (kea) ── uplink0 ─ router (router7-captured, dnsmasq on lan0) ─ lan0 ── sw ── lan1

The router namespace gets 192.168.42.1/24 on lan0 and lan1 192.168.42.10/24;
clients (curl, ssh, dhclient) run in lan1, the uplink DHCP client (dhclient,
hook-less) in the router namespace against the lab's kea.
"""

from __future__ import annotations

import io
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from scapy.layers.dhcp import DHCP
from scapy.layers.inet import ICMP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.utils import PcapNgReader

from router7.lab import PEER_NAMES, Lab
from tests.helpers.peers import dnsmasq_dhcp
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

ROUTER_LAN = "192.168.42.1"
ROUTER_LAN2 = "192.168.42.2"  # added later, to test SIGUSR1
LAN1 = "192.168.42.10"
UPLINK = "192.0.2.120"  # outside kea's pool
SSH_PORT, HTTP_PORT = 5022, 5080
URL = f"http://{ROUTER_LAN}:{HTTP_PORT}"
MESSAGES = {1: "discover", 2: "offer", 3: "request", 5: "ack"}


class Captured:
    """The service, its perm dir, and SSH keys (one authorized, one not)."""

    def __init__(self, lab: Lab, root: Path):
        self.lab, self.root = lab, root
        self.perm = root / "perm"
        (self.perm / "captured").mkdir(parents=True)
        self.key, self.stranger = root / "owner_key", root / "stranger_key"
        for key in (self.key, self.stranger):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True
            )
        (self.perm / "captured" / "authorized_keys").write_bytes(
            b"# the owner\n" + Path(f"{self.key}.pub").read_bytes()
        )
        self.log = root / "captured.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = self.lab.popen(
                "router",
                sys.executable,
                "-m",
                "router7.captured.service",
                f"--perm={self.perm}",
                f"--run-dir={self.root / 'run'}",
                "--ring-size=5000",
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: (
                self.lab.exec("lan1", "curl", "-sf", f"{URL}/metrics", check=False).returncode == 0
            ),
            "captured's HTTP on lan0",
            logs=[self.log],
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def metrics(self) -> str:
        return self.lab.exec("lan1", "curl", "-sf", f"{URL}/metrics").stdout

    def ssh_argv(self, key: Path, *command: str, host: str = ROUTER_LAN) -> list[str]:
        return [
            "ssh",
            "-p",
            str(SSH_PORT),
            "-i",
            str(key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            f"owner@{host}",
            *command,
        ]


@pytest.fixture(scope="module")
def captured(lab_session: Lab, tmp_path_factory):
    lab = lab_session
    if not all(lab.peer_running(p) for p in PEER_NAMES):
        lab.up()
    missing = [t for t in ("ssh", "ssh-keygen", "tshark", "rdisc6") if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt: openssh-client, tshark, ndisc6)")
    for node in ("router", "lan1"):
        lab.reset_node(node)
    lab.exec("router", "ip", "addr", "add", f"{ROUTER_LAN}/24", "dev", "lan0")
    lab.exec("lan1", "ip", "addr", "add", f"{LAN1}/24", "dev", "eth0")
    service = Captured(lab, tmp_path_factory.mktemp("captured"))
    try:
        service.start()
        yield service
    finally:
        service.stop()
        for node in ("router", "lan1"):
            lab.reset_node(node)


class LiveReader:
    """Parses a pcapng byte stream from a pipe as it arrives (in a thread)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.buf = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        fd = self.proc.stdout.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                if self.proc.poll() is not None:
                    return
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            with self.lock:
                self.buf += chunk

    def packets(self) -> list[tuple[str, int, Ether]]:
        """(interface, direction 1=in 2=out, frame) of every complete packet so far."""
        with self.lock:
            data = self.buf
        return parse_pcapng(complete_blocks(data))

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.thread.join(5)


def complete_blocks(data: bytes) -> bytes:
    offset = 0
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset + 4 : offset + 8], "little")
        if length < 12 or offset + length > len(data):
            break
        offset += length
    return data[:offset]


def parse_pcapng(data: bytes) -> list[tuple[str, int, Ether]]:
    if not data:
        return []
    try:
        reader = PcapNgReader(io.BytesIO(data))
    except Exception:  # not even the header yet
        return []
    return [(p.sniffed_on, p.direction, p) for p in reader]


def dhcp_messages(packets, ifname: str) -> list[tuple[str, int]]:
    out = []
    for name, direction, p in packets:
        if name == ifname and DHCP in p:
            kinds = [
                o[1] for o in p[DHCP].options if isinstance(o, tuple) and o[0] == "message-type"
            ]
            kind = kinds[0] if kinds else None
            if kind in MESSAGES:
                out.append((MESSAGES[kind], direction))
    return out


def nd_messages(packets, ifname: str) -> set[tuple[int, int]]:
    """{(ICMPv6 type, direction)} seen on ifname."""
    return {
        (p[IPv6].payload.type, direction)
        for name, direction, p in packets
        if name == ifname and IPv6 in p and hasattr(p[IPv6].payload, "type")
    }


def has_full_exchange(messages: list[tuple[str, int]], client_side: bool) -> bool:
    """DISCOVER, OFFER, REQUEST, ACK, with the right directions, in this order."""
    out, inn = (2, 1) if client_side else (1, 2)
    want = [("discover", out), ("offer", inn), ("request", out), ("ack", inn)]
    it = iter(messages)
    return all(any(m == w for m in it) for w in want)


def dhclient(lab: Lab, node: str, ifname: str, tmp: Path, *flags: str):
    """ISC dhclient without hook script (-sf /bin/true): the exchange, no config."""
    family = "6" if "-6" in flags else "4"
    conf = tmp / f"dhclient-{node}{family}.conf"
    conf.write_text("request subnet-mask, routers;\n" if family == "4" else "")
    return lab.exec(
        node,
        "timeout",
        "25",
        "dhclient",
        *(flags or ("-4",)),
        "-1",
        "-cf",
        str(conf),
        "-lf",
        str(tmp / f"lease-{node}{family}"),
        "-pf",
        str(tmp / f"pid-{node}{family}"),
        "-sf",
        "/bin/true",
        ifname,
        timeout=30,
    )


def udp_ports(packets, ifname: str) -> set[tuple[int, int, int]]:
    """{(sport, dport, direction)} of UDP packets seen on ifname."""
    return {
        (p[UDP].sport, p[UDP].dport, direction)
        for name, direction, p in packets
        if name == ifname and UDP in p
    }


@pytest.fixture
def lan_dhcp_server(captured: Captured, tmp_path: Path):
    """dnsmasq as the LAN's DHCP server on the router's lan0, for a LAN client."""
    log = tmp_path / "dnsmasq.log"
    argv = dnsmasq_dhcp("lan0", "192.168.42.50,192.168.42.99,255.255.255.0,2m", tmp_path)
    proc = captured.lab.popen("router", *argv, "--bind-interfaces", stderr=subprocess.DEVNULL)
    wait_for(lambda: log.exists() and "started" in log.read_text(), "dnsmasq")
    yield
    proc.terminate()
    proc.wait(10)


def test_dhcp_exchanges_appear_in_the_live_http_stream(
    captured: Captured, lan_dhcp_server, tmp_path: Path
):
    lab = captured.lab
    live = LiveReader(
        lab.popen("lan1", "curl", "-sN", f"{URL}/capture.pcapng", stdout=subprocess.PIPE)
    )
    try:
        wait_for(lambda: complete_blocks(live.buf)[:4] == b"\x0a\x0d\x0d\x0a", "pcapng header")
        # The router's uplink DHCP client against the ISP's kea, and a LAN
        # client against the router's DHCP server: both directions on both.
        dhclient(lab, "router", "uplink0", tmp_path)
        dhclient(lab, "router", "uplink0", tmp_path, "-6", "-N", "-P")
        dhclient(lab, "lan1", "eth0", tmp_path)
        ping(lab, "lan1", ROUTER_LAN)  # ICMP: must not show
        lab.exec("router", "rdisc6", "-1", "-r", "3", "uplink0")  # RS out, radvd's RA in
        wait_for(
            lambda: (
                has_full_exchange(dhcp_messages(live.packets(), "uplink0"), client_side=True)
                and has_full_exchange(dhcp_messages(live.packets(), "lan0"), client_side=False)
                and {(133, 2), (134, 1)} <= nd_messages(live.packets(), "uplink0")
                and {(546, 547, 2), (547, 546, 1)} <= udp_ports(live.packets(), "uplink0")
            ),
            "DHCPv4 on both sides, DHCPv6 and RS/RA on the uplink in the live stream",
        )
        packets = live.packets()
    finally:
        live.close()
        # Give the /48 back: kea would keep it (and the isp its route) for an hour.
        dhclient(lab, "router", "uplink0", tmp_path, "-6", "-N", "-P", "-r")
    assert {name for name, _, _ in packets} <= {"uplink0", "lan0"}
    # The kernel filter dropped the stream's own TCP connection and the ping.
    assert not [p for _, _, p in packets if TCP in p or ICMP in p]

    # The same, retroactively, through tshark reading the HTTP stream on stdin.
    fields = "-e frame.interface_name -e frame.packet_flags_direction -e dhcp.option.dhcp"
    out = lab.exec(
        "lan1",
        "sh",
        "-c",
        f"curl -sf '{URL}/capture.pcapng?live=0' | tshark -r - -Y dhcp -T fields {fields}",
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    for ifname, client_side in (("uplink0", True), ("lan0", False)):
        seen = [(MESSAGES.get(int(r[2]), r[2]), int(r[1], 16)) for r in rows if r[0] == ifname]
        assert has_full_exchange(seen, client_side), (ifname, seen)

    metrics = captured.metrics()
    for ifname in ("uplink0", "lan0"):
        for direction in ("in", "out"):
            m = re.search(
                rf'captured_packets_total{{direction="{direction}",interface="{ifname}"}} (\S+)',
                metrics,
            )
            assert m and float(m.group(1)) >= 2, (ifname, direction, metrics)
    assert "captured_ring_capacity 5000.0" in metrics


def test_ssh_with_an_authorized_key_streams_the_ring_and_live_packets(captured: Captured):
    lab = captured.lab
    lab.exec("lan1", "ip", "neigh", "flush", "dev", "eth0")
    ping(lab, "lan1", ROUTER_LAN)  # an ARP exchange for the ring
    proc = lab.popen("lan1", *captured.ssh_argv(captured.key, "ring"), stdout=subprocess.PIPE)
    ring, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    reader = PcapNgReader(io.BytesIO(ring))
    got = list(reader)
    assert [opts.get("name") for _, _, opts in reader.interfaces] == [b"uplink0", b"lan0"]
    assert any(ARP in p and p[ARP].psrc == LAN1 and p.sniffed_on == "lan0" for p in got)

    # Live, as `ssh -p 5022 router7 | wireshark -k -i -` from a terminal does it
    # (pty-req, then shell): a new ARP exchange shows up while connected.
    argv = captured.ssh_argv(captured.key)
    argv.insert(1, "-tt")
    proc = lab.popen("lan1", *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    live = LiveReader(proc)
    try:
        wait_for(lambda: len(live.packets()) >= len(got), "the ring over live SSH")
        before = len(live.packets())
        lab.exec("lan1", "ip", "neigh", "flush", "dev", "eth0")
        ping(lab, "lan1", ROUTER_LAN)
        wait_for(
            lambda: any(
                ARP in p and p[ARP].psrc == LAN1 and p[ARP].op == 1
                for _, _, p in live.packets()[before:]
            ),
            "lan1's fresh ARP request in the live SSH stream",
        )
        assert 'captured_clients{protocol="ssh"} 1.0' in captured.metrics()
        proc.stdin.write(b"\x03")  # Ctrl-C in the raw terminal ends the session
        proc.stdin.flush()
        proc.wait(10)
        wait_for(
            lambda: 'captured_clients{protocol="ssh"} 0.0' in captured.metrics(),
            "the SSH client to be gone",
        )
    finally:
        live.close()


def test_ssh_with_an_unknown_key_is_refused(captured: Captured):
    proc = captured.lab.exec(
        "lan1", *captured.ssh_argv(captured.stranger, "ring"), check=False, timeout=30
    )
    assert proc.returncode == 255
    assert "Permission denied (publickey)" in proc.stderr
    assert proc.stdout == ""
    m = re.search(r"^captured_ssh_rejected_keys_total (\S+)$", captured.metrics(), re.M)
    assert m and float(m.group(1)) >= 1


def ping(lab: Lab, node: str, host: str) -> None:
    """One ICMP echo request and its reply (there is no ping binary in the image)."""
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "s.settimeout(3)\n"
        "s.sendto(bytes.fromhex('0800f7fe00000001'), (sys.argv[1], 0))\n"
        "while s.recv(1500)[20] != 0:\n"
        "    pass\n"
    )
    lab.exec(node, sys.executable, "-c", code, host)


def connects(lab: Lab, node: str, host: str, port: int) -> bool:
    code = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()\n"
        "except OSError:\n"
        "    sys.exit(1)\n"
    )
    return lab.exec(node, sys.executable, "-c", code, host, str(port), check=False).returncode == 0


def test_listeners_are_lan_only_and_follow_sigusr1(captured: Captured):
    lab = captured.lab
    lab.exec("router", "ip", "addr", "add", f"{UPLINK}/25", "dev", "uplink0")
    lab.exec("router", "ip", "addr", "add", f"{ROUTER_LAN2}/24", "dev", "lan0")
    try:
        captured.proc.send_signal(signal.SIGUSR1)
        wait_for(
            lambda: connects(lab, "lan1", ROUTER_LAN2, HTTP_PORT),
            "a listener on the new LAN address after SIGUSR1",
            logs=[captured.log],
        )
        assert connects(lab, "lan1", ROUTER_LAN2, SSH_PORT)
        uplink_ll = lab.link_local("router", "uplink0")
        for port in (SSH_PORT, HTTP_PORT):
            assert not connects(lab, "isp", UPLINK, port)
            assert not connects(lab, "isp", f"{uplink_ll}%down0", port)
    finally:
        lab.exec("router", "ip", "addr", "del", f"{UPLINK}/25", "dev", "uplink0", check=False)
        lab.exec("router", "ip", "addr", "del", f"{ROUTER_LAN2}/24", "dev", "lan0", check=False)
