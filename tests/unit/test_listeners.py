"""The listener pool: the management rule for addresses, and refresh on changes."""

from twisted.internet.testing import MemoryReactor, MemoryReactorClock

from router7.runtime.listeners import Endpoint, ListenerPool, bind_addresses
from tests.helpers import netlink

NET = {
    "lo": ["127.0.0.1/8", "::1/128"],
    "lan0": [
        "192.168.42.1/24",
        "fe80::1/64",
        "2a02:168:4a00::1/64",  # public: not a management address, but dnsd's
        "fd00::1/64",
        "fdf5:3606:2a21::1/64",  # gokrazy's gdns ULA, reachable from elsewhere
        "8.8.8.8/32",
    ],
    "uplink0": ["10.0.0.2/24", "fe80::2/64"],  # private, but the internet side
    "uplink1": ["100.64.0.5/10"],  # a second uplink
    "wg0": ["100.64.0.1/24"],
}


def test_management_rule_private_addresses_off_every_uplink():
    got = bind_addresses(netlink.state(NET).addresses(), "uplink0")
    assert got == ["100.64.0.1", "127.0.0.1", "192.168.42.1", "::1", "fd00::1", "fe80::1%lan0"]


def test_an_endpoint_may_also_take_every_lan_address():
    got = bind_addresses(netlink.state(NET).addresses(), "uplink0", lan="lan0")
    assert {"2a02:168:4a00::1", "8.8.8.8", "fdf5:3606:2a21::1"} <= set(got)
    assert "10.0.0.2" not in got and "100.64.0.5" not in got


def test_a_differently_named_uplink_is_an_uplink_too():
    net = netlink.state({"wan": ["192.168.1.2/24"], "lan0": ["192.168.42.1/24"]})
    assert bind_addresses(net.addresses(), "wan") == ["192.168.42.1"]


def test_tentative_addresses_wait_for_their_event():
    net = netlink.state({"lan0": []})
    net.feed(netlink.addr(1, "fd00::1/64", flags=0x40))
    assert bind_addresses(net.addresses(), "uplink0") == []


def test_refresh_follows_address_changes():
    net = netlink.state({"lan0": ["192.168.42.1/24"], "uplink0": []})
    reactor = MemoryReactor()
    pool = ListenerPool(reactor, net.addresses, "uplink0")
    http = pool.tcp(8066, factory=None)
    pool.refresh()
    assert pool.addresses(http) == ["192.168.42.1"]
    net.feed(netlink.addr(1, "192.168.42.1/24", new=False))
    net.feed(netlink.addr(1, "192.168.43.1/24"))
    net.feed(netlink.addr(2, "192.168.1.2/24"))
    pool.refresh()
    assert pool.addresses(http) == ["192.168.43.1"]
    assert [i for *_, i in reactor.tcpServers] == ["192.168.42.1", "192.168.43.1"]
    pool.stop()
    assert pool.listeners == {}


def test_a_failing_listener_is_retried_until_it_opens():
    net = netlink.state({"lan0": ["192.168.42.1/24"]})
    attempts = []

    def listen(address):
        attempts.append(address)
        if len(attempts) == 1:
            raise OSError(99, "Cannot assign requested address")
        return MemoryReactor().listenTCP(53, None, interface=address)

    clock = MemoryReactorClock()
    pool = ListenerPool(clock, net.addresses, "uplink0", retry=5.0)
    udp = pool.add(Endpoint("dns udp :53", listen))
    pool.refresh()
    assert pool.addresses(udp) == []
    clock.advance(5.0)
    assert pool.addresses(udp) == ["192.168.42.1"] and len(attempts) == 2
    clock.advance(60)
    assert len(attempts) == 2 and not clock.getDelayedCalls()  # nothing left to retry
