"""lease.json (the contract netconfigd and radvd read), the DUID file, and the service's file handling."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from ipaddress import IPv6Address, IPv6Network

import pytest
from twisted.internet import task

from router7.dhcp6 import duid as duidmod
from router7.dhcp6 import lease as leasefile
from router7.dhcp6 import service as servicemod
from router7.dhcp6.lease import Held, Lease, PreviousPrefix
from router7.runtime.service import EXIT_DONT_RESTART

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def held(net: str, preferred: int, valid: int) -> Held:
    return Held(
        IPv6Network(net),
        preferred,
        valid,
        T0 + timedelta(seconds=preferred),
        T0 + timedelta(seconds=valid),
    )


def fiber7_lease() -> Lease:
    return Lease(
        prefixes=(held("2a02:168:4a00::/48", 3600, 86400),),
        addresses=(held("2a02:168:2000:5:add7:17aa:9163:8ef3/128", 3600, 86400),),
        dns=(IPv6Address("2001:1620:2777:1::10"), IPv6Address("2001:1620:2777:2::20")),
        domains=("example.net",),
        server_duid=bytes.fromhex("0001000122439e23525400faac14"),
        client_duid=bytes.fromhex("000a000300014c5e0c43bf39"),
        server_address="fe80::224:14ff:feef:72ff%uplink0",
        server_unicast=IPv6Address("2001:1620:2777:19:1::5"),
        t1=1200,
        t2=1800,
        obtained_at=T0,
        renew_at=T0 + timedelta(seconds=1200),
        rebind_at=T0 + timedelta(seconds=1800),
        previous_prefixes=(
            PreviousPrefix(IPv6Network("2a02:168:4b00::/48"), T0, T0 + timedelta(hours=2)),
        ),
    )


def test_lease_json_matches_the_documented_contract(tmp_path):
    path = leasefile.lease_path(tmp_path)
    assert path == tmp_path / "dhcp6" / "wire" / "lease.json"
    leasefile.save(path, fiber7_lease())
    doc = json.loads(path.read_text())
    assert doc["prefixes"] == [
        {
            "prefix": "2a02:168:4a00::/48",
            "preferred_lifetime": 3600,
            "valid_lifetime": 86400,
            "preferred_until": "2026-11-23T13:00:00Z",
            "valid_until": "2026-11-24T12:00:00Z",
        }
    ]
    assert doc["addresses"][0]["address"] == "2a02:168:2000:5:add7:17aa:9163:8ef3"
    assert doc["addresses"][0]["valid_lifetime"] == 86400
    assert doc["dns"] == ["2001:1620:2777:1::10", "2001:1620:2777:2::20"]
    assert doc["domains"] == ["example.net"]
    assert doc["server_duid"] == "0001000122439e23525400faac14"
    assert doc["client_duid"] == "000a000300014c5e0c43bf39"
    assert doc["server_unicast"] == "2001:1620:2777:19:1::5"
    assert doc["server_address"] == "fe80::224:14ff:feef:72ff%uplink0"
    assert (doc["t1"], doc["t2"]) == (1200, 1800)
    assert doc["obtained_at"] == "2026-11-23T12:00:00Z"
    assert doc["renew_at"] == "2026-11-23T12:20:00Z"
    assert doc["rebind_at"] == "2026-11-23T12:30:00Z"
    assert doc["valid_until"] == "2026-11-24T12:00:00Z"  # the real end, not T1 as in Go
    assert doc["previous_prefixes"] == [
        {
            "prefix": "2a02:168:4b00::/48",
            "preferred_until": "2026-11-23T12:00:00Z",
            "valid_until": "2026-11-23T14:00:00Z",
        }
    ]


def test_lease_round_trips(tmp_path):
    path = leasefile.lease_path(tmp_path)
    leasefile.save(path, fiber7_lease())
    assert leasefile.load(path) == fiber7_lease()


def test_missing_or_broken_lease_file_means_no_lease(tmp_path, caplog):
    path = leasefile.lease_path(tmp_path)
    assert leasefile.load(path) is None
    path.parent.mkdir(parents=True)
    doc = fiber7_lease().to_json()
    path.write_text(
        json.dumps(
            {**json.loads(json.dumps(doc, default=str)), "prefixes": [{"prefix": "1.2.3.0/24"}]}
        )
    )
    assert leasefile.load(path) is None
    assert "prefixes[0].prefix" in caplog.text


def test_held_remaining_counts_from_now():
    h = held("2001:db8::/48", 100, 200)
    r = h.remaining(T0 + timedelta(seconds=150))
    assert (r.preferred_lifetime, r.valid_lifetime) == (0, 50)
    assert r.valid_until == h.valid_until


def test_duid_file_is_used_verbatim(tmp_path):
    path = duidmod.duid_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes.fromhex("000a000300014c5e0c43bf39"))
    assert duidmod.load_or_create(path, b"\x02\x00\x00\x00\x00\x01") == bytes.fromhex(
        "000a000300014c5e0c43bf39"
    )


def test_duid_ll_is_created_once_and_persisted(tmp_path):
    path = duidmod.duid_path(tmp_path)
    mac = bytes.fromhex("0272370001ab")
    first = duidmod.load_or_create(path, mac)
    assert first == bytes.fromhex("00030001") + mac  # DUID-LL, hardware type Ethernet
    assert path.read_bytes() == first
    # A later start with another MAC (a replaced NIC) keeps the identity.
    assert duidmod.load_or_create(path, bytes.fromhex("020000000002")) == first


@pytest.mark.parametrize("content", [b"", b"\x00\x03", b"\x00" * 131])
def test_invalid_duid_file_is_an_error_not_replaced(tmp_path, content):
    path = duidmod.duid_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a DUID"):
        duidmod.load_or_create(path, bytes(6))
    assert path.read_bytes() == content


def test_iaid_is_the_last_four_bytes_of_the_mac():
    assert duidmod.iaid_from_mac(bytes.fromhex("4c5e0c43bf39")) == 0x0C43BF39


class FakeTransport:
    instances: list = []

    def __init__(self, reactor, ifname, on_datagram):
        self.on_datagram = on_datagram
        self.sent = []
        FakeTransport.instances.append(self)

    def open(self):
        pass

    def send(self, data, dest):
        self.sent.append((data, dest))
        return True

    def close(self):
        pass


class FakeReactor(task.Clock):
    running = True

    def __init__(self):
        super().__init__()
        self.advance(1_800_000_000)
        self.stopped = False

    def stop(self):
        self.stopped = True

    # runtime.carrier watches link events through the reactor.
    def addReader(self, reader):
        pass

    def removeReader(self, reader):
        pass


def test_service_writes_lease_keeps_it_on_expiry_and_removes_it_on_release(tmp_path, monkeypatch):
    """The Service glue: lease.json written on Reply, kept when the lease runs out,
    removed after RELEASE with exit code 125."""
    from scapy.layers import dhcp6 as s
    from scapy.packet import Raw

    monkeypatch.setattr(servicemod, "interface_mac", lambda ifname: bytes.fromhex("027237000001"))
    monkeypatch.setattr(servicemod, "UplinkTransport", FakeTransport)
    notified = []
    monkeypatch.setattr(servicemod.Dhcp6Client, "notify", lambda self, name: notified.append(name))
    args = servicemod.Dhcp6Client.parser().parse_args(
        ["--perm", str(tmp_path), "--run-dir", str(tmp_path / "run"), "--rapid-commit"]
    )
    reactor = FakeReactor()
    svc = servicemod.Dhcp6Client(args, reactor)
    svc.start()
    duid = (tmp_path / "dhcp6" / "duid").read_bytes()
    assert duid == bytes.fromhex("00030001027237000001")
    transport = FakeTransport.instances[-1]
    reactor.advance(2)
    tid = int.from_bytes(transport.sent[-1][0][1:4], "big")
    reply = (
        s.DHCP6_Reply(trid=tid)
        / s.DHCP6OptClientId(duid=Raw(duid))
        / s.DHCP6OptServerId(duid=Raw(b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x09"))
        / s.DHCP6OptRapidCommit()
        / s.DHCP6OptIA_PD(
            iaid=1,
            T1=10,
            T2=16,
            iapdopt=[s.DHCP6OptIAPrefix(preflft=20, validlft=30, plen=48, prefix="2001:db8:100::")],
        )
    )
    transport.on_datagram(bytes(reply), "fe80::1%uplink0")
    path = tmp_path / "dhcp6" / "wire" / "lease.json"
    assert json.loads(path.read_text())["prefixes"][0]["prefix"] == "2001:db8:100::/48"
    assert notified == ["netconfigd", "radvd"]
    # Nobody answers from now on: renew, rebind, expiry, solicit again.
    written = path.read_text()
    reactor.pump([1] * 60)
    assert svc.client.state.value == "solicit"
    assert path.read_text() == written
    # A datagram that makes the core fail must not escape into the reactor.
    monkeypatch.setattr(svc.client, "datagram_received", lambda *a: 1 / 0)
    transport.on_datagram(b"x", "fe80::1%uplink0")
    monkeypatch.undo()
    svc.release()
    reactor.pump([1] * 30)  # unanswered Release: REL_MAX_RC transmissions, then done
    assert not path.exists()
    assert svc.exit_code == EXIT_DONT_RESTART
    assert reactor.stopped
