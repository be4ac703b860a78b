"""CarrierTracker: which rtnetlink link messages mean "the cable is back"."""

from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from router7.runtime.carrier import IFF_LOWER_UP, CarrierTracker

IFF_UP = 0x1


def link(name: str, carrier: bool, event: int = RTM_NEWLINK) -> bytes:
    msg = ifinfmsg()
    msg["header"]["type"] = event
    msg["index"] = 2
    msg["flags"] = IFF_UP | (IFF_LOWER_UP if carrier else 0)
    msg["attrs"] = [("IFLA_IFNAME", name)]
    msg.encode()
    return bytes(msg.data)


def test_carrier_back_is_reported_once():
    t = CarrierTracker("uplink0")
    t.carrier = True
    assert not t.feed(link("uplink0", True))  # an attribute change while up
    assert not t.feed(link("uplink0", False))
    assert not t.feed(link("uplink0", False))
    assert t.feed(link("uplink0", True))
    assert not t.feed(link("uplink0", True))


def test_other_links_and_deletions_are_ignored():
    t = CarrierTracker("uplink0")
    t.carrier = False
    assert not t.feed(link("lan0", True))
    assert not t.feed(link("uplink0", True, RTM_DELLINK))
    assert t.carrier is False


def test_several_messages_in_one_read():
    t = CarrierTracker("uplink0")
    t.carrier = True
    assert t.feed(link("uplink0", False) + link("lan0", False) + link("uplink0", True))
    assert t.carrier is True


def test_unknown_start_is_not_a_return():
    t = CarrierTracker("uplink0")
    assert not t.feed(link("uplink0", True))
    assert t.carrier is True
