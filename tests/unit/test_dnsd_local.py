"""dnsd's local names: the router, DHCP clients, localhost and private reverse zones."""

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest
from dnslib import EDNS0, QTYPE, DNSRecord

from router7.dnsd.local import Lease, LocalNames, private_reverse_apex, read_leases
from router7.dnsd.wire import parse_query

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
IP = ipaddress.ip_address


def lease(name, addr, hours=1):
    return Lease(name, IP(addr), None if hours is None else NOW + timedelta(hours=hours))


@pytest.fixture
def names():
    return LocalNames(
        "Router7",
        [IP("192.168.42.1"), IP("fd00::1")],
        [
            lease("midna", "192.168.42.23"),
            lease("old", "192.168.42.50", hours=-1),  # expired
            lease("twin", "192.168.42.60", hours=1),
            lease("twin", "192.168.42.61", hours=2),  # newer: wins
            lease("router7", "192.168.42.99", hours=5),  # tries to take the router's name
            lease("printer", "192.168.42.5", hours=None),  # static
            lease("bad name!", "192.168.42.70"),
        ],
        NOW,
    )


def ask(names, name, qtype="A", edns=False):
    q = DNSRecord.question(name, qtype)
    if edns:
        q.add_ar(EDNS0(udp_len=1232, flags="do"))
    packed = names.answer(parse_query(q.pack()))
    return None if packed is None else DNSRecord.parse(packed)


def rdata(reply):
    return [str(rr.rdata) for rr in reply.rr]


@pytest.mark.parametrize("name", ["midna", "midna.lan", "MIDNA.LAN", "Midna"])
def test_dhcp_name_a(names, name):
    reply = ask(names, name)
    assert reply.header.rcode == 0 and reply.header.aa
    assert rdata(reply) == ["192.168.42.23"]
    assert str(reply.q.qname) == name + "."  # spelled as asked


def test_ptr_of_dhcp_client(names):
    assert rdata(ask(names, "23.42.168.192.in-addr.arpa", "PTR")) == ["midna.lan."]


def test_expired_lease_skipped(names):
    assert ask(names, "old.lan").header.rcode == 3
    assert ask(names, "50.42.168.192.in-addr.arpa", "PTR").header.rcode == 3
    assert ask(names, "old") is None  # a bare unknown name is the internet's business


def test_newest_lease_wins(names):
    assert rdata(ask(names, "twin.lan")) == ["192.168.42.61"]


def test_router_name_protected(names):
    assert rdata(ask(names, "router7.lan")) == ["192.168.42.1"]
    assert rdata(ask(names, "router7", "AAAA")) == ["fd00::1"]
    assert rdata(ask(names, "1.42.168.192.in-addr.arpa", "PTR")) == ["router7.lan."]
    fd00_1 = "1" + ".0" * 29 + ".d.f.ip6.arpa"
    assert rdata(ask(names, fd00_1, "PTR")) == ["router7.lan."]
    # the client that tried to take the name gets no PTR either
    assert ask(names, "99.42.168.192.in-addr.arpa", "PTR").header.rcode == 3


def test_static_lease_and_invalid_hostname(names):
    assert rdata(ask(names, "printer.lan")) == ["192.168.42.5"]
    assert ask(names, "70.42.168.192.in-addr.arpa", "PTR").header.rcode == 3


def test_aaaa_and_other_types_of_dhcp_names_are_empty_noerror(names):
    for qtype in ("AAAA", "MX", "TXT"):
        reply = ask(names, "midna.lan", qtype)
        assert reply.header.rcode == 0 and reply.rr == []
        assert reply.auth[0].rtype == QTYPE.SOA  # negative-cacheable
        assert reply.auth[0].rdata.times[4] == 60


def test_unknown_lan_name_nxdomain_with_soa(names):
    reply = ask(names, "nobody.lan")
    assert reply.header.rcode == 3
    assert str(reply.auth[0].rname) == "lan."
    assert str(reply.auth[0].rdata.mname) == "router7.lan."


def test_localhost(names):
    assert rdata(ask(names, "localhost")) == ["127.0.0.1"]
    assert rdata(ask(names, "LocalHost.", "AAAA")) == ["::1"]
    assert rdata(ask(names, "1.0.0.127.in-addr.arpa", "PTR")) == ["localhost."]
    assert rdata(ask(names, "1" + ".0" * 31 + ".ip6.arpa", "PTR")) == ["localhost."]


@pytest.mark.parametrize(
    "name",
    [
        "4.3.2.10.in-addr.arpa",
        "1.1.16.172.in-addr.arpa",
        "1.1.31.172.in-addr.arpa",
        "9.9.168.192.in-addr.arpa",
        "1.1.254.169.in-addr.arpa",
        "1.1.64.100.in-addr.arpa",
        "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa",
    ],
)
def test_private_reverse_unknown_is_nxdomain_locally(names, name):
    reply = ask(names, name, "PTR")
    assert reply is not None and reply.header.rcode == 3


@pytest.mark.parametrize(
    "name",
    [
        "8.8.8.8.in-addr.arpa",
        "1.1.15.172.in-addr.arpa",
        "1.1.32.172.in-addr.arpa",
        "1.1.128.100.in-addr.arpa",
        "192.in-addr.arpa",  # above the private zone: public delegation
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
        "www.example.com",
        "lan.example.com",
    ],
)
def test_public_names_are_forwarded(names, name):
    assert ask(names, name, "PTR") is None


def test_private_reverse_apex():
    assert private_reverse_apex((b"5", b"16", b"172", b"in-addr", b"arpa")) == (
        b"16",
        b"172",
        b"in-addr",
        b"arpa",
    )
    assert private_reverse_apex((b"16", b"172", b"in-addr", b"arpa")) == (
        b"16",
        b"172",
        b"in-addr",
        b"arpa",
    )
    assert private_reverse_apex((b"x", b"172", b"in-addr", b"arpa")) is None
    assert private_reverse_apex((b"016", b"172", b"in-addr", b"arpa")) is None  # not canonical


def test_edns_answer_carries_opt(names):
    reply = ask(names, "midna.lan", edns=True)
    opts = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    assert len(opts) == 1 and opts[0].rclass == 1232


def test_other_classes_are_not_local(names):
    q = DNSRecord.question("midna.lan", "A", "CH")
    assert names.answer(parse_query(q.pack())) is None


def test_read_leases_router7_format(tmp_path):
    path = tmp_path / "leases.json"
    path.write_text(
        json.dumps(
            [
                {"num": 74, "addr": "10.0.0.76", "hardware_addr": "02:73:53:00:ca:fe", "hostname": "midna",
                 "hostname_override": "", "expiry": "2018-05-18T23:46:04.429895261+02:00"},
                {"num": 1, "addr": "10.0.0.2", "hardware_addr": "02:73:53:00:ca:01", "hostname": "dev",
                 "hostname_override": "laptop", "expiry": "0001-01-01T00:00:00Z"},
                {"addr": "not an address", "hostname": "broken"},
                "garbage",
            ]
        )
    )  # fmt: skip
    leases = read_leases(path)
    assert [(lease.hostname, str(lease.addr)) for lease in leases] == [
        ("midna", "10.0.0.76"),
        ("laptop", "10.0.0.2"),
    ]
    assert leases[0].expiry == datetime(2018, 5, 18, 21, 46, 4, 429895, tzinfo=UTC)
    assert leases[1].expiry is None  # Go's zero time: a static lease
    assert read_leases(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text("{")
    assert read_leases(tmp_path / "bad.json") == []
