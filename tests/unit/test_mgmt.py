import ipaddress

from router7.runtime.mgmt import InterfaceAddress, ManagementListener, private_bind_addresses


def addrs(*pairs):
    return [InterfaceAddress(i, ipaddress.ip_address(a)) for i, a in pairs]


def test_only_private_addresses_off_the_uplink():
    got = private_bind_addresses(
        addrs(
            ("lo", "127.0.0.1"),
            ("lo", "::1"),
            ("lan0", "192.168.42.1"),
            ("lan0", "fe80::1"),
            ("lan0", "2a02:168:4a00::1"),  # public: not a management address
            ("lan0", "fd00::1"),
            ("uplink0", "10.0.0.2"),  # private but on the uplink
            ("uplink0", "fe80::2"),
            ("uplink1", "100.64.0.5"),
            ("wg0", "100.64.0.1"),
            ("lan0", "fdf5:3606:2a21::1"),  # gokrazy gdns ULA
            ("lan0", "8.8.8.8"),
        )
    )
    assert got == ["100.64.0.1", "127.0.0.1", "192.168.42.1", "::1", "fd00::1", "fe80::1%lan0"]


class FakeReactor:
    def __init__(self):
        self.open = {}

    def listenTCP(self, port, factory, interface):
        reactor = self

        class Port:
            def stopListening(self):
                del reactor.open[interface]

        self.open[interface] = Port()
        return self.open[interface]


def test_refresh_follows_address_changes():
    current = addrs(("lan0", "192.168.42.1"))
    reactor = FakeReactor()
    m = ManagementListener(reactor, site=None, port=8066, addresses=lambda: current)
    m.refresh()
    assert set(reactor.open) == {"192.168.42.1"}
    current = addrs(("lan0", "192.168.43.1"), ("uplink0", "192.168.1.2"))
    m.refresh()
    assert set(reactor.open) == {"192.168.43.1"}
    m.stop()
    assert reactor.open == {}
