"""The Service base class without processes: flags, the listener pool, netlink events."""

from prometheus_client import Counter
from twisted.internet import defer

from router7.runtime import ports
from router7.runtime.service import Service
from tests.helpers import netlink
from tests.helpers.service import listening, net_event, started

NET = {"lo": ["127.0.0.1/8"], "lan0": ["192.168.42.1/24"], "uplink0": ["10.0.0.2/24"]}


class Plain(Service):
    name = "plain"
    http_port = 18069


class Dnsd(Service):
    """The port default comes from runtime.ports; a service flag --port stays its own."""

    name = "dnsd"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--port", type=int, default=53)


def argv(*more):
    return ["--perm", "/nonexistent", "--run-dir", "/nonexistent", *more]


def test_management_port_on_private_addresses_off_the_uplink():
    svc = started(Plain, argv(), netlink.state(NET))
    assert listening(svc.reactor) == [(18069, "127.0.0.1"), (18069, "192.168.42.1")]
    assert started(Plain, argv("--http-port", "0"), netlink.state(NET)).reactor.tcpServers == []


def test_one_flag_name_with_the_old_names_as_aliases():
    assert Dnsd.parser().parse_args([]).http_port == ports.HTTP["dnsd"]
    assert Dnsd.parser().parse_args(["--metrics-port", "9"]).http_port == 9
    args = Dnsd.parser().parse_args(["--port", "5353"])
    assert (args.port, args.http_port) == (5353, ports.HTTP["dnsd"])
    assert Plain.parser().parse_args(["--port", "7"]).http_port == 7


def test_listeners_follow_address_events_and_close_on_stop():
    svc = started(Plain, argv(), netlink.state(NET))
    net_event(svc, netlink.addr(2, "192.168.42.1/24", new=False))
    net_event(svc, netlink.addr(2, "fd00::1/64", flags=0x40))  # tentative: DAD still running
    assert set(svc.listeners.addresses(svc.listeners.endpoints[0])) == {"127.0.0.1"}
    net_event(svc, netlink.addr(2, "fd00::1/64"))  # DAD done
    assert set(svc.listeners.addresses(svc.listeners.endpoints[0])) == {"127.0.0.1", "fd00::1"}
    svc._stopping()
    assert svc.listeners.listeners == {}


def test_one_registry_served_on_metrics():
    svc = started(Plain, argv(), netlink.state(NET))
    Counter("plain_things", "things", registry=svc.registry).inc()
    assert svc.registry.get_sample_value("plain_things_total") == 1.0
    site = svc.listeners.endpoints[0]
    assert site.name == "http :18069"


class SlowStart(Service):
    """start() returns a Deferred: netlink changes reach net_changed only once it fired."""

    name = "slow"
    http_port = 0

    def start(self):
        self.heard = []
        self.started = defer.Deferred()
        return self.started

    def net_changed(self, changes):
        self.heard.append(len(changes))


def test_net_changed_waits_for_start():
    svc = started(SlowStart, argv(), netlink.state(NET))
    net_event(svc, netlink.addr(2, "192.168.42.2/24"))
    assert svc.heard == []
    svc.started.callback(None)
    net_event(svc, netlink.addr(2, "192.168.42.3/24"))
    assert svc.heard == [1]
