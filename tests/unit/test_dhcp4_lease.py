"""lease.json and the raw ACK: the file contract netconfigd and diagd rely on."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Interface

import pytest
from scapy.layers.inet import IP

from router7.dhcp4 import wire
from router7.dhcp4.lease import Lease, LeaseStore
from tests.helpers import captures

OBTAINED = datetime(2018, 5, 18, 21, 46, 4, tzinfo=UTC)


def fiber7_ack() -> wire.Message:
    frame = captures.frames(captures.DHCP4)[1]
    return wire.decode_ipv4(bytes(frame[IP]), bytes.fromhex("002414ef72ff"))


def test_lease_json_has_the_documented_fields(tmp_path):
    ack = fiber7_ack()
    store = LeaseStore(tmp_path)
    store.save(Lease.from_ack(ack, OBTAINED), ack.raw)
    obj = json.loads((tmp_path / "dhcp4/wire/lease.json").read_text())
    assert obj == {
        "address": "85.195.207.62/25",
        "client_ip": "85.195.207.62",
        "subnet_mask": "255.255.255.128",
        "router": "85.195.207.1",
        "dns": ["77.109.128.2", "213.144.129.20"],
        "domain": None,
        "broadcast": None,
        "mtu": None,
        "server": "213.144.129.5",
        "server_mac": "00:24:14:ef:72:ff",
        "lease_time": 1608,
        "obtained_at": "2018-05-18T21:46:04Z",
        "renew_at": "2018-05-18T21:59:28Z",  # + 13m24s
        "rebind_at": "2018-05-18T22:09:31Z",  # + 1407 s
        "expires_at": "2018-05-18T22:12:52Z",  # + 1608 s
        "valid_until": "2018-05-18T21:59:28Z",  # router7: the renew time
    }
    assert (tmp_path / "dhcp4/wire/ack").read_bytes() == ack.raw
    # Atomic writes leave no temp files behind.
    assert sorted(p.name for p in (tmp_path / "dhcp4/wire").iterdir()) == ["ack", "lease.json"]


def test_store_round_trip(tmp_path):
    ack = fiber7_ack()
    lease = Lease.from_ack(ack, OBTAINED)
    store = LeaseStore(tmp_path)
    store.save(lease, ack.raw)
    assert store.load() == lease


def test_an_ack_alone_is_enough_and_is_timed_from_its_mtime(tmp_path):
    """A router7 (Go) install has an ack file and a lease.json we cannot read."""
    ack = fiber7_ack()
    store = LeaseStore(tmp_path)
    store.ack_path.parent.mkdir(parents=True)
    store.ack_path.write_bytes(ack.raw)
    store.lease_path.write_text('{"valid_until": "2018-05-18T23:59:28.1234567+02:00"}')
    os.utime(store.ack_path, (OBTAINED.timestamp(), OBTAINED.timestamp()))
    lease = store.load()
    assert lease.address == IPv4Interface("85.195.207.62/25")
    assert lease.server == IPv4Address("213.144.129.5")
    assert lease.obtained_at == OBTAINED and lease.lease_time == 1608


def test_broken_files_are_ignored_not_fatal(tmp_path):
    store = LeaseStore(tmp_path)
    assert store.load() is None
    store.ack_path.parent.mkdir(parents=True)
    store.ack_path.write_bytes(b"garbage")
    store.lease_path.write_text("{not json")
    assert store.load() is None


def test_remove_deletes_both_files_and_tolerates_missing_ones(tmp_path):
    ack = fiber7_ack()
    store = LeaseStore(tmp_path)
    store.save(Lease.from_ack(ack, OBTAINED), ack.raw)
    store.remove()
    store.remove()
    assert not store.ack_path.exists() and not store.lease_path.exists()


@pytest.mark.parametrize(
    ("lease_time", "t1", "t2", "want"),
    [
        (1000, None, None, (500, 875, 1000)),
        (1000, 100, 200, (100, 200, 1000)),
        (1000, 900, 800, (500, 800, 1000)),  # T1 after T2: ignored
        (1000, None, 400, (228.57, 400, 1000)),  # an early T2 pulls the default T1 along
        (1000, None, 5000, (500, 875, 1000)),  # T2 past expiry: ignored
        (None, None, None, (300, 525, 600)),  # router7's default of 10 minutes
    ],
)
def test_renew_and_rebind_times(lease_time, t1, t2, want):
    ack = wire.Message(
        msg_type=wire.ACK,
        xid=1,
        chaddr=b"\x00" * 6,
        yiaddr=IPv4Address("192.0.2.10"),
        server_id=IPv4Address("192.0.2.1"),
        lease_time=lease_time,
        renewal_time=t1,
        rebinding_time=t2,
    )
    lease = Lease.from_ack(ack, OBTAINED)
    got = tuple(
        round((t - OBTAINED).total_seconds(), 2)
        for t in (lease.renew_at, lease.rebind_at, lease.expires_at)
    )
    assert got == want
    assert lease.address == IPv4Interface("192.0.2.10/32")  # no mask option: a host address
