"""Netlink messages as the kernel sends them, built with pyroute2's message classes.

The unit tests feed these bytes to router7.runtime.netlink.NetState, the same
path a real event takes (socket bytes -> NetState.feed).
"""

from __future__ import annotations

import ipaddress
import socket

from pyroute2.netlink.rtnl import (
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from router7.runtime.netlink import NetState

IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


def _encode(msg, msg_type: int) -> bytes:
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = 0
    msg.encode()
    return bytes(msg.data[: msg["header"]["length"]])


def link(
    index: int, name: str, *, mac="02:00:00:00:00:01", mtu=1500, up=True, carrier=None, new=True
) -> bytes:
    """A link; ``carrier`` defaults to ``up`` (a cable is in)."""
    msg = ifinfmsg()
    msg["index"] = index
    carrier = up if carrier is None else carrier
    msg["flags"] = (IFF_UP if up else 0) | (IFF_LOWER_UP if carrier else 0)
    msg["attrs"] = [("IFLA_IFNAME", name), ("IFLA_ADDRESS", mac), ("IFLA_MTU", mtu)]
    return _encode(msg, RTM_NEWLINK if new else RTM_DELLINK)


def addr(index: int, cidr: str, *, flags: int = 0x80, new=True) -> bytes:
    """An address; ``flags`` 0x40 is IFA_F_TENTATIVE (DAD running), 0x80 permanent."""
    iface = ipaddress.ip_interface(cidr)
    msg = ifaddrmsg()
    msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    msg["flags"] = flags & 0xFF
    attrs = [("IFA_ADDRESS", str(iface.ip)), ("IFA_FLAGS", flags)]
    if iface.version == 4:
        attrs.append(("IFA_LOCAL", str(iface.ip)))
    msg["attrs"] = attrs
    return _encode(msg, RTM_NEWADDR if new else RTM_DELADDR)


def route(
    dst: str, oif: int, *, gateway=None, table=254, rtype=1, priority=1024, new=True
) -> bytes:
    net = ipaddress.ip_network(dst)
    msg = rtmsg()
    msg["family"] = socket.AF_INET if net.version == 4 else socket.AF_INET6
    msg["dst_len"] = net.prefixlen
    msg["table"] = table
    msg["type"] = rtype
    msg["proto"] = 9  # from an RA
    attrs = [("RTA_TABLE", table), ("RTA_OIF", oif), ("RTA_PRIORITY", priority)]
    if net.prefixlen:
        attrs.append(("RTA_DST", str(net.network_address)))
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    msg["attrs"] = attrs
    return _encode(msg, RTM_NEWROUTE if new else RTM_DELROUTE)


def state(interfaces: dict[str, list[str]]) -> NetState:
    """A NetState with these interfaces (index 1, 2, ... in order) and addresses."""
    net = NetState()
    for index, (name, cidrs) in enumerate(interfaces.items(), start=1):
        net.feed(link(index, name, mac=f"02:00:00:00:00:{index:02x}"))
        for cidr in cidrs:
            net.feed(addr(index, cidr))
    return net
