"""What radvd needs of the runtime's netlink view: lan0's facts and the uplink's default route."""

from __future__ import annotations

from router7.runtime.netlink import NetState
from router7.runtime.uplink import is_backup_uplink

from .plan import LanFacts


class NoInterface(LookupError):
    """The interface does not exist or has no usable link-local address yet."""


def lan_facts(net: NetState, ifname: str) -> LanFacts:
    """Index, MAC, MTU and the (non-tentative) link-local address of ``ifname``."""
    link = net.link(ifname)
    if link is None:
        raise NoInterface(f"{ifname} does not exist")
    link_local = net.link_local(ifname)
    if link_local is None:
        raise NoInterface(f"{ifname} has no usable link-local address (yet)")
    return LanFacts(
        ifname=ifname, ifindex=link.index, mac=link.mac, mtu=link.mtu, link_local=link_local
    )


def has_default_route(net: NetState, uplink: str) -> bool:
    """True if the main table has an IPv6 default route out of ``uplink`` (e.g. from its RAs),
    or out of a backup uplink (failover: uplink1, ...), which routes LAN traffic as well."""
    names = [uplink, *(lk.name for lk in net.links.values() if is_backup_uplink(lk.name))]
    return any(net.default_routes(6, name) for name in dict.fromkeys(names))
