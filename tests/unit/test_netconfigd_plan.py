"""netconfigd's plan: inputs -> desired links, addresses, routes, sysctls (pure)."""

import ipaddress

from router7.netconfigd.config import (
    Dhcp4Lease,
    Dhcp6Lease,
    Inputs,
    parse_interfaces,
    parse_wireguard,
)
from router7.netconfigd.plan import (
    RTPROT_DHCP,
    AddrSpec,
    RouteSpec,
    build,
    lan_address_for,
)

IF = parse_interfaces(
    {
        "interfaces": [
            {"hardware_addr": "02:73:53:00:ca:fe", "name": "uplink0"},
            {
                "hardware_addr": "02:73:53:00:b0:0c",
                "spoof_hardware_addr": "02:73:53:00:b0:aa",
                "name": "lan0",
                "addr": "192.168.42.1/24",
                "mtu": 1492,
                "extra_addrs": ["192.168.23.1/24"],
            },
        ]
    },
    "x",
)
LEASE4 = Dhcp4Lease(
    ipaddress.ip_interface("85.195.207.62/25"), ipaddress.ip_address("85.195.207.1")
)
LEASE6 = Dhcp6Lease((ipaddress.ip_network("2a02:168:4a00::/48"),))


def net(s):
    return ipaddress.ip_network(s)


def test_links_match_by_mac_and_spoofed_mac():
    p = build(Inputs(interfaces=IF))
    lan = next(lk for lk in p.links if lk.name == "lan0")
    assert lan.macs == ("02:73:53:00:b0:0c", "02:73:53:00:b0:aa")
    assert lan.mtu == 1492 and lan.spoof_mac == "02:73:53:00:b0:aa"


def test_static_addresses_only_without_leases():
    p = build(Inputs(interfaces=IF))
    assert p.addresses == (
        AddrSpec("lan0", ipaddress.ip_interface("192.168.42.1/24")),
        AddrSpec("lan0", ipaddress.ip_interface("192.168.23.1/24")),
    )
    assert p.routes == () and p.exclusive == ()
    assert p.internal_v4 == (net("192.168.42.0/24"), net("192.168.23.0/24"))


def test_dhcp4_lease_gives_address_host_route_and_default():
    p = build(Inputs(interfaces=IF, dhcp4=LEASE4))
    assert AddrSpec("uplink0", ipaddress.ip_interface("85.195.207.62/25")) in p.addresses
    src = ipaddress.ip_address("85.195.207.62")
    gw = ipaddress.ip_address("85.195.207.1")
    # router7's expected routes: "85.195.207.1 proto dhcp scope link src …" and the default.
    assert p.routes == (
        RouteSpec(net("85.195.207.1/32"), "uplink0", None, src, RTPROT_DHCP, scope="link"),
        RouteSpec(net("0.0.0.0/0"), "uplink0", gw, src, RTPROT_DHCP),
    )
    assert ("uplink0", 4) in p.exclusive  # an old lease's address is removed


def test_dhcp6_prefix_gives_lan_address_and_unreachable_rest():
    p = build(Inputs(interfaces=IF, dhcp6=LEASE6))
    assert AddrSpec("lan0", ipaddress.ip_interface("2a02:168:4a00::1/64")) in p.addresses
    assert (
        RouteSpec(net("2a02:168:4a00::/48"), None, None, None, RTPROT_DHCP, kind="unreachable")
        in p.routes
    )


def test_lan_address_for_prefix_lengths():
    assert str(lan_address_for(net("2001:db8:100::/48"))) == "2001:db8:100::1/64"
    assert str(lan_address_for(net("2001:db8:100:5500::/56"))) == "2001:db8:100:5500::1/64"
    assert str(lan_address_for(net("2001:db8:100:7::/64"))) == "2001:db8:100:7::1/64"


def test_a_64_needs_no_unreachable_route_and_ia_na_goes_on_the_uplink():
    lease = Dhcp6Lease((net("2001:db8:100:7::/64"),), (ipaddress.ip_address("2001:db8:1::1000"),))
    p = build(Inputs(dhcp6=lease))
    assert [r for r in p.routes if r.kind == "unreachable"] == []
    assert AddrSpec("uplink0", ipaddress.ip_interface("2001:db8:1::1000/128")) in p.addresses


def test_sysctls_forwarding_first_then_accept_ra_on_the_uplink():
    p = build(Inputs(), uplink="uplink0")
    keys = [k for k, _ in p.sysctls]
    assert dict(p.sysctls)["net/ipv6/conf/uplink0/accept_ra"] == "2"
    assert keys.index("net/ipv6/conf/all/forwarding") < keys.index(
        "net/ipv6/conf/uplink0/accept_ra"
    )
    assert dict(p.sysctls)["net/ipv4/ip_forward"] == "1"


def test_wireguard_default_route_replaces_the_dhcp_default():
    key = "YNqHwpcAmVj0lVzPSt3oUnL7cRPKB/geVU+X5ytKLjI="
    ifaces = parse_interfaces(
        {"interfaces": [{"name": "wg0", "extra_routes": [{"destination": "0.0.0.0/0"}]}]}, "x"
    )
    wg = parse_wireguard(
        {
            "interfaces": [
                {
                    "name": "wg0",
                    "private_key": key,
                    "peers": [{"public_key": key, "endpoint": "198.51.100.7:51820"}],
                }
            ]
        },
        "x",
    )
    p = build(Inputs(interfaces=ifaces, wireguard=wg, dhcp4=LEASE4))
    dhcp = [r for r in p.routes if r.proto == RTPROT_DHCP]
    assert [str(r.dst) for r in dhcp] == ["85.195.207.1/32", "198.51.100.7/32"]
    assert dhcp[1].gateway == ipaddress.ip_address("85.195.207.1")
    # The tunnel's own default route is a static extra route on wg0.
    assert RouteSpec(net("0.0.0.0/0"), "wg0") in p.routes


def test_plan_is_deterministic():
    a = build(Inputs(interfaces=IF, dhcp4=LEASE4, dhcp6=LEASE6))
    b = build(Inputs(interfaces=IF, dhcp4=LEASE4, dhcp6=LEASE6))
    assert a == b
