"""Probes that can run without a network: the DNS client's matching and verdicts."""

from __future__ import annotations

import pytest
from dnslib import RCODE, RR, DNSRecord

from router7.diagd import probes
from router7.diagd.probes import DnsClient
from router7.diagd.tree import CheckFailed
from tests.helpers import netlink


class FakePort:
    def __init__(self):
        self.sent = []

    def write(self, data, addr):
        self.sent.append((DNSRecord.parse(data), addr))

    def stopListening(self):
        pass


class FakeReactor:
    def __init__(self):
        self.ports = []

    def listenUDP(self, port, proto, interface=""):
        self.ports.append((interface, FakePort()))
        return self.ports[-1][1]

    def seconds(self):
        return 0.0


def ask(server="198.51.100.53"):
    reactor = FakeReactor()
    client = DnsClient(reactor)
    results = []
    client.query(server, "www.example.test").addBoth(results.append)
    ((query, addr),) = reactor.ports[0][1].sent
    return client, query, addr, results


def test_answer_is_matched_by_server_and_id():
    client, query, addr, results = ask()
    assert addr == ("198.51.100.53", 53) and str(query.q.qname) == "www.example.test."
    reply = query.reply()
    reply.add_answer(*RR.fromZone("www.example.test. 60 A 203.0.113.10"))
    client.received(b"\x00garbage", addr)
    client.received(reply.pack(), ("198.51.100.54", 53))  # another server: not ours
    wrong = query.reply()
    wrong.header.id ^= 1
    client.received(wrong.pack(), addr)
    assert results == []
    client.received(reply.pack(), addr)
    assert results[0].startswith("198.51.100.53: www.example.test is 203.0.113.10")


def test_nxdomain_counts_as_answering_servfail_does_not():
    client, query, addr, results = ask()
    reply = query.reply()
    reply.header.rcode = RCODE.NXDOMAIN
    client.received(reply.pack(), addr)
    assert "NXDOMAIN" in results[0]

    client, query, addr, results = ask("2001:db8:1::53")
    reply = query.reply()
    reply.header.rcode = RCODE.SERVFAIL
    client.received(reply.pack(), ("2001:db8:1::53", 53, 0, 0))
    with pytest.raises(CheckFailed, match="SERVFAIL"):
        results[0].raiseException()


def test_cancel_forgets_the_question():
    client, query, addr, results = ask()
    d = client.pending[(addr[0], query.header.id)]
    d.cancel()
    assert client.pending == {}
    results[0].trap(Exception)


def test_link_route_and_lan_probes_read_the_netlink_view():
    net = netlink.state({"uplink0": ["192.0.2.2/24"], "lan0": ["192.168.42.1/24", "fe80::1/64"]})
    net.feed(netlink.route("0.0.0.0/0", 1, gateway="192.0.2.1"))
    assert probes.route_status(net, 4, "uplink0") == "via 192.0.2.1 dev uplink0 (from RA)"
    with pytest.raises(CheckFailed, match="no IPv6 default route via uplink0"):
        probes.route_status(net, 6, "uplink0")
    assert probes.lan_status(net, "lan0") == "192.168.42.1/24"
    assert probes.lan_ipv4(net, "lan0") == "192.168.42.1"
    assert probes.link_status(net, "uplink0").startswith("up")
    net.feed(netlink.link(1, "uplink0", up=False))
    with pytest.raises(CheckFailed, match="administratively down"):
        probes.link_status(net, "uplink0")
    with pytest.raises(CheckFailed, match="lan9 does not exist"):
        probes.lan_status(net, "lan9")


def test_dhcp4d_pool_fails_when_less_than_a_quarter_is_free(tmp_path):
    """Issue 16, case 6: a full pool shows in diagd."""
    import json as _json

    from router7.diagd.probes import dhcp4d_pool

    net = netlink.state({"lan0": ["192.168.42.1/24"]})
    (tmp_path / "dhcp4d").mkdir()
    (tmp_path / "dhcp4d/config.json").write_text(
        _json.dumps({"pool": {"start": "192.168.42.10", "end": "192.168.42.17"}})
    )
    assert dhcp4d_pool(tmp_path, net, "lan0") == "8 of 8 addresses free"
    leases = [{"num": i, "addr": f"192.168.42.{10 + i}", "hardware_addr": f"02:00:00:00:00:{i:02x}",
               "hostname": "", "expiry": "2099-01-01T00:00:00Z"} for i in range(7)]  # fmt: skip
    (tmp_path / "dhcp4d/leases.json").write_text(_json.dumps(leases))
    with pytest.raises(CheckFailed, match="1 of 8 addresses free"):
        dhcp4d_pool(tmp_path, net, "lan0")
