"""The socket-free netlink core, fed messages as the kernel would send them."""

import contextlib
import ipaddress
import sys

from router7.runtime import rtnl
from router7.runtime.netlink import CarrierEdge, NetState, _done
from tests.helpers import netlink


def test_links_addresses_and_their_changes():
    net = NetState()
    changes = net.feed(netlink.link(3, "lan0", mac="02:73:53:00:ca:fe", mtu=1492))
    assert [(c.kind, c.new) for c in changes] == [("link", True)]
    assert net.link("lan0").mac == "02:73:53:00:ca:fe" and net.link("lan0").mtu == 1492
    changes = net.feed(netlink.addr(3, "192.168.42.1/24") + netlink.addr(3, "fe80::1/64"))
    assert [c.item.interface for c in changes] == [
        ipaddress.ip_interface("192.168.42.1/24"),
        ipaddress.ip_interface("fe80::1/64"),
    ]
    assert net.ipv4("lan0") == ipaddress.IPv4Interface("192.168.42.1/24")
    assert net.link_local("lan0") == ipaddress.IPv6Address("fe80::1")
    assert net.feed(netlink.addr(3, "192.168.42.1/24")) == []  # a repeat changes nothing
    changes = net.feed(netlink.addr(3, "192.168.42.1/24", new=False))
    assert [(c.kind, c.new) for c in changes] == [("address", False)]
    assert net.ipv4("lan0") is None


def test_a_tentative_address_is_not_usable_until_dad_is_done():
    net = netlink.state({"lan0": []})
    net.feed(netlink.addr(1, "fe80::1/64", flags=0x40))
    assert net.link_local("lan0") is None
    assert [c.item.usable for c in net.feed(netlink.addr(1, "fe80::1/64"))] == [True]
    assert net.link_local("lan0") == ipaddress.IPv6Address("fe80::1")


def test_default_routes_appear_and_vanish_with_their_events():
    net = netlink.state({"uplink0": [], "lan0": []})
    route = netlink.route("::/0", 1, gateway="fe80::1")
    assert [c.kind for c in net.feed(route)] == ["route"]
    assert [r.gateway for r in net.default_routes(6, "uplink0")] == ["fe80::1"]
    assert net.default_routes(6, "lan0") == [] and net.default_routes(4, "uplink0") == []
    net.feed(netlink.route("::/0", 1, gateway="fe80::1", new=False))
    assert net.default_routes(6, "uplink0") == []


def test_unreachable_and_other_tables_do_not_count_as_default_routes():
    net = netlink.state({"uplink0": []})
    net.feed(netlink.route("::/0", 1, rtype=7))  # RTN_UNREACHABLE
    net.feed(netlink.route("::/0", 1, table=100))
    assert net.default_routes(6, "uplink0") == []


def test_a_link_going_down_takes_its_routes_along():
    """IPv4 routes of a downed link vanish without an RTM_DELROUTE."""
    net = netlink.state({"uplink0": ["192.0.2.2/24"]})
    net.feed(netlink.route("0.0.0.0/0", 1, gateway="192.0.2.1"))
    assert net.default_routes(4, "uplink0")
    net.feed(netlink.link(1, "uplink0", up=False))
    assert net.default_routes(4, "uplink0") == []


def test_deleting_a_link_forgets_its_addresses_and_a_rename_renames_them():
    net = netlink.state({"eth1": ["192.168.42.1/24"], "eth2": ["10.0.0.1/8"]})
    net.feed(netlink.link(1, "lan0"))
    assert [a.ifname for a in net.addresses()] == ["lan0", "eth2"]
    changes = net.feed(netlink.link(2, "eth2", new=False))
    assert [(c.kind, c.new) for c in changes] == [("link", False)]
    assert [a.ifname for a in net.addresses()] == ["lan0"]


def test_a_bridge_port_leaving_its_bridge_is_not_a_link_removal():
    net = netlink.state({"lan0": ["192.168.42.1/24"]})
    port = bytearray(netlink.link(1, "lan0", new=False))
    port[16] = 7  # ifi_family AF_BRIDGE
    assert net.feed(bytes(port)) == []
    assert net.link("lan0") is not None and net.ipv4("lan0") is not None


def test_dump_end_is_recognised():
    done = (20).to_bytes(4, sys.byteorder) + (3).to_bytes(2, sys.byteorder) + bytes(14)
    assert _done(netlink.link(1, "lo") + done)
    assert not _done(netlink.link(1, "lo"))


def test_carrier_edge_reports_each_return_of_the_cable_once():
    net = NetState()
    net.feed(netlink.link(2, "uplink0"))
    edge = CarrierEdge(net, "uplink0")
    net.feed(netlink.link(2, "uplink0", mtu=1492))  # an attribute change while the cable is in
    assert not edge.returned()
    net.feed(netlink.link(2, "uplink0", carrier=False))
    assert not edge.returned()
    net.feed(netlink.link(3, "lan0"))
    assert not edge.returned()  # another link's carrier
    net.feed(netlink.link(2, "uplink0"))
    assert edge.returned()
    assert not edge.returned()


def test_carrier_edge_counts_a_missing_or_down_link_as_no_carrier():
    net = NetState()
    edge = CarrierEdge(net, "uplink0")
    net.feed(netlink.link(2, "uplink0", up=False, carrier=True))
    assert not edge.returned()  # administratively down: no traffic yet
    net.feed(netlink.link(2, "uplink0"))
    assert edge.returned()
    net.feed(netlink.link(2, "uplink0", new=False))
    assert not edge.returned()
    net.feed(netlink.link(4, "uplink0"))  # the link is back (a USB NIC replugged)
    assert edge.returned()


# --- router7.runtime.rtnl agrees with pyroute2 ------------------------------------


def _pyroute2_parse(data: bytes) -> list:
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl

    return list(MarshalRtnl().parse(data))


def _kernel_dump() -> bytes:
    """This host's links, addresses and routes as the kernel sends them (read only)."""
    import socket as sk

    out = b""
    with sk.socket(sk.AF_NETLINK, sk.SOCK_RAW, sk.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        for seq, msg_type in enumerate((rtnl.RTM_GETLINK, rtnl.RTM_GETADDR, rtnl.RTM_GETROUTE), 1):
            s.send(rtnl.dump_request(msg_type, seq))
            while True:
                data = s.recv(1 << 20)
                out += data
                if _done(data):
                    break
    return out


ATTRS = ["IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_CARRIER", "IFA_ADDRESS", "IFA_LOCAL",
         "IFA_LABEL", "IFA_FLAGS", "RTA_DST", "RTA_OIF", "RTA_GATEWAY", "RTA_PRIORITY",
         "RTA_TABLE"]  # fmt: skip
FIELDS = ["family", "index", "flags", "prefixlen", "table", "type", "proto", "tos"]


def test_rtnl_reads_what_pyroute2_reads():
    data = b"".join(
        [
            netlink.link(2, "uplink0", mac="02:aa:bb:cc:dd:ee", mtu=1492),
            netlink.addr(2, "192.0.2.10/25"),
            netlink.addr(2, "2001:db8::5/64", flags=0x40),
            netlink.route("0.0.0.0/0", 2, gateway="192.0.2.1"),
            netlink.route("2001:db8:100::/48", 3, rtype=7, table=200, new=False),
        ]
    )
    with contextlib.suppress(OSError):  # no netlink here: the built messages still compare
        data += _kernel_dump()
    ours = list(rtnl.parse(data))
    theirs = [m for m in _pyroute2_parse(data) if m.get("event") in rtnl.EVENTS.values()]
    assert len(ours) == len(theirs) >= 5
    for a, b in zip(ours, theirs, strict=True):
        assert a["event"] == b.get("event")
        assert {f: a.get(f) for f in FIELDS if f in b} == {f: b[f] for f in FIELDS if f in b}
        assert {n: a.get_attr(n) for n in ATTRS} == {n: b.get_attr(n) for n in ATTRS}


def test_rtnl_dump_request_is_what_pyroute2_encodes():
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    for cls, msg_type in ((ifinfmsg, 18), (ifaddrmsg, 22), (rtmsg, 26)):
        msg = cls()
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = rtnl.NLM_F_REQUEST | rtnl.NLM_F_DUMP
        msg["header"]["sequence_number"] = 7
        msg["family"] = 0
        msg.encode()
        assert rtnl.dump_request(msg_type, 7) == bytes(msg.data[: msg["header"]["length"]])
