"""The daemon's edges: spoofed MAC, files after a lease, notify, release, metrics."""

from __future__ import annotations

import json
import signal

from prometheus_client import REGISTRY
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from twisted.internet.testing import MemoryReactorClock

from router7.dhcp4 import wire
from router7.dhcp4.client import State
from router7.dhcp4.service import Dhcp4Client
from router7.runtime import notify
from router7.runtime.service import EXIT_DONT_RESTART
from tests.helpers import captures

IFACE_MAC = bytes.fromhex("02735300cafe")
SPOOF = "d8:58:d7:00:4e:df"


class FakeTransport:
    def __init__(self, on_packet):
        self.on_packet = on_packet
        self.mac = IFACE_MAC
        self.sent: list[tuple[bytes, bytes]] = []
        self.closed = False

    def open(self):
        pass

    def close(self):
        self.closed = True

    def send(self, packet, dst_mac):
        self.sent.append((packet, dst_mac))


class Client(Dhcp4Client):
    def make_transport(self):
        return FakeTransport(self._packet)


def make(tmp_path, *extra) -> Client:
    args = Client.parser().parse_args(
        ["--perm", str(tmp_path / "perm"), "--run-dir", str(tmp_path / "run"), *extra]
    )
    (tmp_path / "run").mkdir(exist_ok=True)
    reactor = MemoryReactorClock()
    reactor.advance(1_526_680_000)
    return Client(args, reactor)


def server_reply(index: int, xid: int, mac: bytes) -> bytes:
    ip = captures.frames(captures.DHCP4)[index][IP]
    ip[BOOTP].xid, ip[BOOTP].chaddr = xid, mac + b"\x00" * 10
    return bytes(ip)


def sent_options(client) -> dict:
    packet, _ = client.transport.sent[-1]
    return {o[0]: o[1] for o in IP(packet)[DHCP].options if isinstance(o, tuple)}


def metric(name, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_uses_the_spoofed_mac_from_interfaces_json(tmp_path):
    (tmp_path / "perm").mkdir()
    (tmp_path / "perm/interfaces.json").write_text(
        json.dumps(
            {
                "interfaces": [
                    {"hardware_addr": "00:0d:b9:49:70:18", "name": "lan0", "addr": "10.0.0.1/24"},
                    {
                        "hardware_addr": "02:73:53:00:ca:fe",
                        "spoof_hardware_addr": SPOOF,
                        "name": "uplink0",
                    },
                ]
            }
        )
    )
    client = make(tmp_path, "--hostname", "gw")
    client.start()
    o = sent_options(client)
    assert o["client_id"] == b"\x01" + wire.parse_mac(SPOOF)
    assert IP(client.transport.sent[-1][0])[BOOTP].chaddr[:6] == wire.parse_mac(SPOOF)
    assert o["hostname"] == b"gw"


def test_interface_mac_without_spoofing(tmp_path):
    client = make(tmp_path, "--hostname", "")
    client.start()
    o = sent_options(client)
    assert o["client_id"] == b"\x01" + IFACE_MAC and "hostname" not in o
    packet, dst_mac = client.transport.sent[-1]
    assert dst_mac == wire.BROADCAST_MAC
    assert (IP(packet).src, IP(packet).dst, IP(packet)[UDP].dport) == (
        "0.0.0.0",
        "255.255.255.255",
        67,
    )


def test_lease_writes_files_notifies_netconfigd_and_release_exits_125(tmp_path):
    client = make(tmp_path)
    # Pose as netconfigd of the same run dir and record its SIGUSR1.
    notify.register(tmp_path / "run", "netconfigd")
    got = []
    old = signal.signal(signal.SIGUSR1, lambda *_: got.append("USR1"))
    try:
        client.start()
        mac = client.core.ident.mac
        acks = metric("dhcp4_packets_received_total", type="ack")
        client._packet(server_reply(0, client.core.xid, mac), bytes.fromhex("002414ef72ff"))
        client._packet(server_reply(1, client.core.xid, mac), bytes.fromhex("002414ef72ff"))
        assert client.core.state is State.BOUND
        assert got == ["USR1"]
    finally:
        signal.signal(signal.SIGUSR1, old)
        notify.unregister(tmp_path / "run", "netconfigd")
    wire_dir = tmp_path / "perm/dhcp4/wire"
    lease = json.loads((wire_dir / "lease.json").read_text())
    assert lease["address"] == "85.195.207.62/25" and lease["lease_time"] == 1608
    assert wire.decode((wire_dir / "ack").read_bytes()).server_id == wire.IPv4Address(
        "213.144.129.5"
    )
    assert metric("dhcp4_packets_received_total", type="ack") == acks + 1
    expiry = metric("dhcp4_lease_expiry_timestamp_seconds")
    assert expiry == 1_526_680_000 + 1608
    assert metric("dhcp4_state", dhcp4_state="bound") == 1

    # A restarted daemon asks for the same address again, without DISCOVER.
    restarted = make(tmp_path)
    restarted.start()
    o = sent_options(restarted)
    assert o["message-type"] == wire.REQUEST and o["requested_addr"] == "85.195.207.62"
    assert "server_id" not in o
    restarted.stop()

    client.release()
    packet, dst_mac = client.transport.sent[-1]
    o = sent_options(client)
    assert o["message-type"] == wire.RELEASE and o["server_id"] == "213.144.129.5"
    assert IP(packet).dst == "213.144.129.5" and dst_mac == bytes.fromhex("002414ef72ff")
    assert client.exit_code == EXIT_DONT_RESTART
    assert not (wire_dir / "lease.json").exists() and not (wire_dir / "ack").exists()


def test_send_errors_are_counted_not_raised(tmp_path):
    client = make(tmp_path)

    class Down(FakeTransport):
        def send(self, packet, dst_mac):
            raise OSError(100, "Network is down")

    client.make_transport = lambda: Down(client._packet)
    before = metric("dhcp4_send_errors_total")
    client.start()
    client.reactor.advance(5)  # the retransmission timer keeps going
    assert metric("dhcp4_send_errors_total") == before + 2
    assert client.core.state is State.SELECTING


def test_a_backup_uplinks_client_has_its_own_pid_file_and_port(tmp_path):
    primary, backup = make(tmp_path), make(tmp_path, "--uplink", "uplink1")
    assert (primary.instance, primary.args.http_port) == ("dhcp4", 8069)
    assert (backup.instance, backup.args.http_port) == ("dhcp4-uplink1", 8169)
    assert make(tmp_path, "--uplink", "uplink1", "--http-port", "9000").args.http_port == 9000
