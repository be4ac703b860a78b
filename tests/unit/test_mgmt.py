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


def _resolve(site, path, client, headers=()):
    """The resource a request would be rendered by (metrics is WSGI: not rendered here)."""
    from twisted.internet.address import IPv4Address, IPv6Address
    from twisted.web.resource import getChildForRequest
    from twisted.web.test.requesthelper import DummyRequest

    request = DummyRequest(path.lstrip(b"/").split(b"/"))
    family = IPv6Address if ":" in client else IPv4Address
    request.client = family("TCP", client, 40000)
    for name, value in headers:
        request.requestHeaders.addRawHeader(name, value)
    return getChildForRequest(site.resource, request), request


def test_management_site_refuses_public_clients_everywhere():
    from prometheus_client import CollectorRegistry

    from router7.runtime.mgmt import _Forbidden, management_site

    site = management_site(registry=CollectorRegistry())
    for client in ("192.168.42.7", "127.0.0.1", "fe80::1%lan0", "::ffff:10.0.0.1", "fd00::7"):
        assert not isinstance(_resolve(site, b"/metrics", client)[0], _Forbidden), client

    def refused(path, client, headers=()):
        leaf, request = _resolve(site, path, client, headers)
        body = leaf.render(request)
        return request.responseCode == 403 and b"forbidden" in body

    for path in (b"/", b"/metrics", b"/no/such/page"):
        assert refused(path, "85.195.207.62")
    assert refused(b"/", "2a02:168:4a00::7")
    # a local reverse proxy forwarding a public client
    assert refused(b"/", "127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9")])
    assert not refused(b"/", "127.0.0.1")
