"""Every state file, in the Go router7's format and in ours, through every consumer.

Each file has one owner module with one reader (docs/state-files.md); each consumer
reads through it. This test feeds both formats of each file to each consumer's
reading path and checks that they all see the same lease: what a migrated /perm
looks like to netconfigd must be what statusd, diagd, dnsd, radvd and the DHCP
clients see too.
"""

from __future__ import annotations

import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from scapy.layers import dhcp6 as dhcp6_layers
from twisted.internet import task

from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp4 import service as dhcp4_service
from router7.dhcp4 import wire as dhcp4_wire
from router7.dhcp4.client import Dhcp4Core, Listener, State
from router7.dhcp4d import store as dhcp4d_store
from router7.dhcp4d.leases import Lease as LanLease
from router7.dhcp6 import lease as dhcp6_lease
from router7.dhcp6 import wire as dhcp6_wire
from router7.dhcp6.client import ClientConfig, Dhcp6Machine, Transmit
from router7.dhcp6.client import Listener as Dhcp6Listener
from router7.dhcp6.client import State as Dhcp6State
from router7.diagd import leases as diagd_leases
from router7.dnsd.local import read_leases
from router7.dnsd.service import DnsService
from router7.dnsd.upstreams import lease_resolvers
from router7.lab import router as lab_router
from router7.netconfigd.config import ConfigStore, InterfacesReader
from router7.radvd import inputs as radvd_inputs
from router7.runtime.netlink import NetState
from router7.runtime.statefile import write_bytes_atomic, write_json_atomic
from router7.statusd import collect
from tests.unit.test_dhcp6_client import FIBER7_DUID, server_msg

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# In the Go files, valid_until is router7's renew time (T1), with nanoseconds and a zone.
GO_T1 = "2026-11-23T13:30:00.429895261+01:00"  # 12:30:00.43 UTC, after NOW

# --- the files, one lease each, in both formats -----------------------------------

ADDRESS, ROUTER = "85.195.207.62/25", "85.195.207.1"
DNS4 = ["77.109.128.2", "213.144.129.20"]
PREFIX, DNS6 = "2a02:168:4a00::/48", ["2001:1620:2777:1::10", "2001:1620:2777:2::20"]
LAN = [("10.0.0.76", "02:73:53:00:ca:fe", "midna"), ("10.0.0.2", "02:73:53:00:ca:01", "laptop")]


def dhcp4_go(perm: Path) -> None:
    write_json_atomic(
        dhcp4_lease.lease_path(perm),
        {
            "valid_until": GO_T1,
            "client_ip": "85.195.207.62",
            "subnet_mask": "255.255.255.128",
            "router": ROUTER,
            "dns": DNS4,
        },
    )


def dhcp4_ours(perm: Path) -> None:
    lease = dhcp4_lease.Lease(
        address=ipaddress.IPv4Interface(ADDRESS),
        server=ipaddress.IPv4Address("213.144.129.5"),
        lease_time=3600,
        obtained_at=NOW - timedelta(minutes=10),
        renew_at=NOW + timedelta(minutes=20),
        rebind_at=NOW + timedelta(minutes=42),
        expires_at=NOW + timedelta(minutes=50),
        router=ipaddress.IPv4Address(ROUTER),
        dns=tuple(ipaddress.IPv4Address(a) for a in DNS4),
    )
    write_json_atomic(dhcp4_lease.lease_path(perm), lease.to_json())


def dhcp6_go(perm: Path) -> None:
    write_json_atomic(
        dhcp6_lease.lease_path(perm),
        {
            "valid_until": GO_T1,
            "prefixes": [{"IP": "2a02:168:4a00::", "Mask": "////////AAAAAAAAAAAAAA=="}],
            "dns": DNS6,
        },
    )


def dhcp6_ours(perm: Path) -> None:
    obtained = NOW - timedelta(minutes=10)
    held = dhcp6_lease.Held(
        ipaddress.IPv6Network(PREFIX),
        3600,
        7200,
        obtained + timedelta(seconds=3600),
        obtained + timedelta(seconds=7200),
    )
    lease = dhcp6_lease.Lease(
        prefixes=(held,),
        addresses=(),
        dns=tuple(ipaddress.IPv6Address(a) for a in DNS6),
        server_duid=bytes.fromhex("0001000122439e23525400faac14"),
        client_duid=bytes.fromhex("000a000300014c5e0c43bf39"),
        t1=1800,
        t2=2880,
        obtained_at=obtained,
        renew_at=obtained + timedelta(seconds=1800),
        rebind_at=obtained + timedelta(seconds=2880),
    )
    dhcp6_lease.save(dhcp6_lease.lease_path(perm), lease)


def lan_path(perm: Path) -> Path:
    return perm / "dhcp4d" / "leases.json"


def lan_go(perm: Path) -> None:
    # router7's dhcp4d: tab-indented, nanoseconds, the zero time for a static lease.
    entries = [
        {"num": 74, "addr": LAN[0][0], "hardware_addr": LAN[0][1], "hostname": "midna",
         "hostname_override": "", "expiry": "2026-11-23T14:00:00.429895261+01:00",
         "last_ack": "2026-11-23T12:00:00.429895261+01:00"},
        {"num": 1, "addr": LAN[1][0], "hardware_addr": LAN[1][1], "hostname": "dev",
         "hostname_override": "laptop", "expiry": "0001-01-01T00:00:00Z",
         "last_ack": "0001-01-01T00:00:00Z"},
    ]  # fmt: skip
    write_bytes_atomic(lan_path(perm), json.dumps(entries, indent="\t").encode())


def lan_ours(perm: Path) -> None:
    leases = [
        LanLease(ipaddress.IPv4Address(LAN[0][0]), LAN[0][1], "midna", "", NOW.timestamp() + 3600),
        LanLease(ipaddress.IPv4Address(LAN[1][0]), LAN[1][1], "dev", "laptop", None),
    ]
    dhcp4d_store.save(lan_path(perm), leases)


FILES = {
    "dhcp4": {"go": dhcp4_go, "ours": dhcp4_ours},
    "dhcp6": {"go": dhcp6_go, "ours": dhcp6_ours},
    "lan": {"go": lan_go, "ours": lan_ours},
}

# What every consumer must see in either format: the lease is valid at NOW.
EXPECTED = {
    "dhcp4": {"address": ADDRESS, "router": ROUTER, "dns": DNS4, "valid": True},
    "dhcp6": {"prefixes": [PREFIX], "dns": DNS6, "valid": True},
    "lan": {"leases": sorted(LAN)},
}

# --- each consumer's reading path, reduced to what it saw ---------------------------


def _lease4_view(lease) -> dict:
    return {
        "address": str(lease.address),
        "router": str(lease.router),
        "dns": [str(a) for a in lease.dns],
        "valid": lease.expires_at > NOW,
    }


def dhcp4_client(perm: Path) -> dict:
    """router7-dhcp4 resumes: it asks for the stored address again (INIT-REBOOT)."""
    stored = dhcp4_lease.LeaseStore(perm).load()
    sent = []
    listener = Listener()
    listener.send = sent.append
    clock = task.Clock()
    clock.advance(NOW.timestamp())
    core = Dhcp4Core(dhcp4_wire.Identity(b"\x02\x00\x00\x00\x00\x01", None), clock, listener)
    core.start(stored)
    assert core.state is State.REBOOTING
    # option 50, requested IP address
    assert bytes([50, 4]) + stored.address.ip.packed in sent[0].payload
    return _lease4_view(stored)


def netconfigd_dhcp4(perm: Path) -> dict:
    inputs, errors = ConfigStore(perm).load()
    assert errors == []
    return {"address": str(inputs.dhcp4.address), "router": str(inputs.dhcp4.router)}


def dnsd_resolvers(kind: str):
    def read(perm: Path) -> dict:
        return {"dns": [u.host for u in lease_resolvers(perm)]}

    read.__name__ = f"dnsd_{kind}"
    return read


def diagd_dhcp4(perm: Path) -> dict:
    status = diagd_leases.dhcp4_status(dhcp4_lease.lease_path(perm), NOW)
    return {"address": status.split(",")[0], "valid": "expires in" in status}


def statusd_uplink4(perm: Path) -> dict:
    s = collect.uplink4(perm, NOW)
    assert s["state"] == "ok", s
    return {
        "address": s["address"],
        "router": s["gateway"],
        "dns": s["dns"],
        "valid": not s["expired"],
    }


def lab_wan(perm: Path) -> dict:
    wan = lab_router._wan(perm)
    return {"address": wan["address"], "router": wan["router"]}


class _Sent(Dhcp6Listener):
    def __init__(self):
        self.sent: list[Transmit] = []

    def send(self, tx: Transmit) -> bool:
        self.sent.append(tx)
        return True


def dhcp6_client(perm: Path) -> dict:
    """router7-dhcp6 resumes from the stored lease: it rebinds it, no new Solicit."""
    stored = dhcp6_lease.load(dhcp6_lease.lease_path(perm))
    assert stored is not None, "the stored lease was ignored"
    clock = task.Clock()
    clock.advance(NOW.timestamp())
    edge = _Sent()
    config = ClientConfig(duid=bytes.fromhex("000a000300014c5e0c43bf39"), iaid_na=1)
    machine = Dhcp6Machine(config, clock, edge, rng=random.Random(1), lease=stored)
    machine.start()
    clock.advance(1)
    assert machine.state is Dhcp6State.REBIND
    [rebind] = {tx.payload[0] for tx in edge.sent}
    assert rebind == dhcp6_wire.REBIND
    msg = dhcp6_wire.decode(edge.sent[0].payload)
    return {
        "prefixes": [str(b.network) for ia in msg.ia_pd for b in ia.bindings],
        "dns": [str(a) for a in stored.dns],
        "valid": stored.valid_until > NOW,
    }


def netconfigd_dhcp6(perm: Path) -> dict:
    inputs, errors = ConfigStore(perm).load()
    assert errors == []
    return {"prefixes": [str(p) for p in inputs.dhcp6.prefixes]}


def radvd_lease(perm: Path) -> dict:
    lease = radvd_inputs.read_lease(perm)
    valid = [p.valid_until is None or p.valid_until > NOW.timestamp() for p in lease.prefixes]
    return {"prefixes": [str(p.prefix) for p in lease.prefixes], "valid": all(valid)}


def diagd_dhcp6(perm: Path) -> dict:
    status = diagd_leases.dhcp6_status(dhcp6_lease.lease_path(perm), NOW)
    return {"prefixes": [status.split(" ")[0]], "valid": "(valid " in status}


def statusd_uplink6(perm: Path) -> dict:
    s = collect.uplink6(perm, NOW)
    assert s["state"] == "ok", s
    prefixes = s["prefixes"]
    return {"prefixes": [p["prefix"] for p in prefixes], "dns": s["dns"]}


def lab_ipv6(perm: Path) -> dict:
    return {"prefixes": [p["prefix"] for p in lab_router._ipv6(perm)["prefixes"]]}


def dhcp4d_own(perm: Path) -> dict:
    leases = dhcp4d_store.load(lan_path(perm))
    return {
        "leases": sorted(
            (str(x.addr), x.hardware_addr, x.hostname_override or x.hostname) for x in leases
        )
    }


def dnsd_local(perm: Path) -> dict:
    leases = read_leases(lan_path(perm))
    macs = dict((addr, mac) for addr, mac, _ in LAN)  # dnsd has no use for MACs
    return {"leases": sorted((str(x.addr), macs[str(x.addr)], x.hostname) for x in leases)}


def statusd_lan(perm: Path) -> dict:
    s = collect.lan_leases(perm, NOW, vendors=SimpleNamespace(vendor=lambda mac: None))
    assert s["state"] == "ok" and "errors" not in s, s
    assert all(x["active"] for x in s["leases"])
    return {"leases": sorted((x["addr"], x["hardware_addr"], x["hostname"]) for x in s["leases"])}


def lab_clients(perm: Path) -> dict:
    return {
        "leases": sorted(
            (c["addr"], c["hardware_addr"], c["hostname"]) for c in lab_router._clients(perm)
        )
    }


CONSUMERS = {
    "dhcp4": [
        dhcp4_client,
        netconfigd_dhcp4,
        dnsd_resolvers("dhcp4"),
        diagd_dhcp4,
        statusd_uplink4,
        lab_wan,
    ],
    "dhcp6": [
        dhcp6_client,
        netconfigd_dhcp6,
        radvd_lease,
        dnsd_resolvers("dhcp6"),
        diagd_dhcp6,
        statusd_uplink6,
        lab_ipv6,
    ],
    "lan": [dhcp4d_own, dnsd_local, statusd_lan, lab_clients],
}


@pytest.mark.parametrize("fmt", ["go", "ours"])
@pytest.mark.parametrize(
    "kind, consumer",
    [(kind, c) for kind, consumers in CONSUMERS.items() for c in consumers],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_consumer_reads_both_formats_alike(tmp_path, kind, consumer, fmt):
    FILES[kind][fmt](tmp_path)
    seen = consumer(tmp_path)
    assert seen, "the consumer saw nothing"
    assert seen == {k: EXPECTED[kind][k] for k in seen}


def test_interfaces_json_from_router7_reaches_dhcp4_and_dnsd(tmp_path):
    """interfaces.json (netconfigd's) through netconfigd's reader: dhcp4's spoofed MAC
    and dnsd's lan0 address come from the same parse."""
    (tmp_path / "interfaces.json").write_text(
        json.dumps(
            {
                "interfaces": [
                    {"hardware_addr": "00:0d:b9:49:70:18", "name": "uplink0",
                     "spoof_hardware_addr": "DC:9B:9C:EE:72:FD"},
                    {"hardware_addr": "00:0d:b9:49:70:1a", "name": "lan0",
                     "addr": "192.168.42.1/24"},
                ]
            }
        )
    )  # fmt: skip
    inputs, errors = ConfigStore(tmp_path).load()
    assert errors == []
    assert dhcp4_service.spoofed_mac(tmp_path, "uplink0") == bytes.fromhex("dc9b9cee72fd")
    dnsd = SimpleNamespace(
        args=SimpleNamespace(lan="lan0"),
        perm=tmp_path,
        net=NetState(),
        interfaces=InterfacesReader(tmp_path),
    )
    assert DnsService._router_addresses(dnsd) == [inputs.interfaces.by_name("lan0").addr.ip]


@pytest.mark.parametrize(
    "kind, broken, field",
    [
        ("dhcp4", {"client_ip": "85.195.207.62", "valid_until": GO_T1}, "subnet_mask"),
        ("dhcp6", {"prefixes": [{"IP": "2a02:168:4a00::", "Mask": "//8AAA=="}]}, "prefixes[0]"),
        ("dhcp6", {"prefixes": [{"prefix": "10.0.0.0/8"}]}, "prefixes[0].prefix"),
    ],
)
def test_a_bad_file_is_reported_alike_with_path_and_field(tmp_path, kind, broken, field):
    owner = {"dhcp4": dhcp4_lease, "dhcp6": dhcp6_lease}[kind]
    path = owner.lease_path(tmp_path)
    write_json_atomic(path, broken)
    statusd = collect.uplink4 if kind == "dhcp4" else collect.uplink6
    assert statusd(tmp_path, NOW)["error"]["field"] == field
    assert statusd(tmp_path, NOW)["error"]["file"] == str(path)
    inputs, [error] = ConfigStore(tmp_path).load()
    assert (error.path, error.field) == (str(path), field)
    diagd = diagd_leases.dhcp4_status if kind == "dhcp4" else diagd_leases.dhcp6_status
    with pytest.raises(
        diagd_leases.CheckFailed, match=f"{path}: field '{field}'".replace("[", r"\[")
    ):
        diagd(path, NOW)


def test_dhcp6_releases_nothing_for_a_go_lease_whose_server_it_does_not_know(tmp_path):
    dhcp6_go(tmp_path)
    stored = dhcp6_lease.load(dhcp6_lease.lease_path(tmp_path))
    clock = task.Clock()
    clock.advance(NOW.timestamp())
    edge = _Sent()
    config = ClientConfig(duid=bytes.fromhex("000a000300014c5e0c43bf39"), iaid_na=1)
    machine = Dhcp6Machine(config, clock, edge, rng=random.Random(1), lease=stored)
    released = []
    machine.release(lambda: released.append(True))
    clock.advance(10)
    assert released == [True] and machine.state is Dhcp6State.STOPPED
    assert edge.sent == []  # no Release with an empty Server Identifier


def test_dhcp6_deprecates_a_go_prefix_the_isp_no_longer_delegates(tmp_path):
    """RFC 9096 after a migration: the Go file's prefix, replaced by another, is kept in
    previous_prefixes until the Go file's valid_until (its T1, the least we know)."""
    dhcp6_go(tmp_path)
    stored = dhcp6_lease.load(dhcp6_lease.lease_path(tmp_path))
    clock = task.Clock()
    clock.advance(NOW.timestamp())
    edge = _Sent()
    leases = []
    edge.lease_changed = leases.append
    config = ClientConfig(duid=FIBER7_DUID, iaid_na=1, pd_only=True)
    machine = Dhcp6Machine(config, clock, edge, lease=stored)
    machine.start()
    clock.advance(1)
    tid = int.from_bytes(edge.sent[-1].payload[1:4], "big")
    reply = server_msg(dhcp6_layers.DHCP6_Reply, tid)  # delegates 2001:db8:100::/48
    machine.datagram_received(reply, "fe80::1%uplink0")
    [lease] = leases
    assert [str(h.network) for h in lease.prefixes] == ["2001:db8:100::/48"]
    [previous] = lease.previous_prefixes
    assert str(previous.prefix) == PREFIX
    assert previous.valid_until == stored.renew_at  # Go's valid_until
