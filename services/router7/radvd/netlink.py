"""What radvd asks the kernel (via pyroute2): lan0's facts and the uplink's default route."""

from __future__ import annotations

import ipaddress
import logging
import socket

from .plan import LanFacts

# pyroute2 logs every netlink message at debug level, drowning radvd's own lines.
logging.getLogger("pyroute2").setLevel(logging.INFO)

IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
RT_TABLE_MAIN = 254
RTN_UNICAST = 1


class NoInterface(LookupError):
    """The interface does not exist or has no usable link-local address yet."""


def lan_facts(ifname: str) -> LanFacts:
    """Index, MAC, MTU and the (non-tentative) link-local address of ``ifname``."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=ifname)
        if not links:
            raise NoInterface(f"{ifname} does not exist")
        index = links[0]
        link = ipr.get_links(index)[0]
        link_local = None
        for msg in ipr.get_addr(family=socket.AF_INET6, index=index):
            addr = ipaddress.IPv6Address(msg.get_attr("IFA_ADDRESS"))
            flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
            if addr.is_link_local and not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED):
                link_local = addr
                break
        if link_local is None:
            raise NoInterface(f"{ifname} has no usable link-local address (yet)")
        return LanFacts(
            ifname=ifname,
            ifindex=index,
            mac=link.get_attr("IFLA_ADDRESS"),
            mtu=link.get_attr("IFLA_MTU"),
            link_local=link_local,
        )


def has_default_route(uplink: str) -> bool:
    """True if the main table has an IPv6 default route out of ``uplink`` (e.g. from its RAs)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname=uplink)
        if not links:
            return False
        index = links[0]
        for route in ipr.get_routes(family=socket.AF_INET6, dst_len=0, table=RT_TABLE_MAIN):
            if route.get_attr("RTA_TABLE", route["table"]) != RT_TABLE_MAIN:
                continue
            if route["type"] != RTN_UNICAST:  # unreachable/blackhole defaults route nothing
                continue
            if route.get_attr("RTA_OIF") == index:
                return True
            for hop in route.get_attr("RTA_MULTIPATH") or ():
                if hop["oif"] == index:
                    return True
        return False
