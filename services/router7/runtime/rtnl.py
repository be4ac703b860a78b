"""rtnetlink messages (link, address, route), decoded and requested with struct.

The daemons read about fifteen attributes of three message types. pyroute2's
marshal read them before; importing pyroute2 costs each of the ten processes
about 10 MiB and 0.08 s of start-up (bench/memory.py), so this module reads them
itself. Only netconfigd, which configures links, still imports pyroute2. The unit
tests build their messages with pyroute2, so the two agree.

A decoded message answers the questions the old pyroute2 objects did:
``msg["family"]``, ``msg.get("event")``, ``msg.get_attr("IFLA_IFNAME")``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys

# Message types (linux/rtnetlink.h) and their names, as pyroute2 called them.
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
EVENTS = {
    RTM_NEWLINK: "RTM_NEWLINK",
    RTM_DELLINK: "RTM_DELLINK",
    RTM_NEWADDR: "RTM_NEWADDR",
    RTM_DELADDR: "RTM_DELADDR",
    RTM_NEWROUTE: "RTM_NEWROUTE",
    RTM_DELROUTE: "RTM_DELROUTE",
}
# Multicast groups (bits of the bind address).
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300

_BO = "<" if sys.byteorder == "little" else ">"  # netlink is in host byte order
_NLMSGHDR = struct.Struct(_BO + "IHHII")
_RTATTR = struct.Struct(_BO + "HH")
_U32 = struct.Struct(_BO + "I")
# The fixed header after nlmsghdr of each message type: its fields and layout.
_IFINFOMSG = (struct.Struct(_BO + "BxHiII"), ("family", "ifi_type", "index", "flags", "change"))
_IFADDRMSG = (struct.Struct(_BO + "BBBBI"), ("family", "prefixlen", "flags", "scope", "index"))
_RTMSG = (
    struct.Struct(_BO + "BBBBBBBBI"),
    ("family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type", "flags"),
)
_RTNEXTHOP = struct.Struct(_BO + "HBBi")


def _u8(b: bytes) -> int:
    return b[0]


def _u32(b: bytes) -> int:
    return _U32.unpack_from(b)[0]


def _text(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _ip(b: bytes) -> str:
    return str(ipaddress.ip_address(b))


def _multipath(b: bytes) -> list[dict]:
    hops, offset = [], 0
    while offset + _RTNEXTHOP.size <= len(b):
        length, _flags, _hops, oif = _RTNEXTHOP.unpack_from(b, offset)
        if length < _RTNEXTHOP.size:
            break
        hops.append({"oif": oif})
        offset += (length + 3) & ~3
    return hops


# name, decoder of each attribute we read, per family of messages.
_LINK_ATTRS = {
    1: ("IFLA_ADDRESS", _mac),
    3: ("IFLA_IFNAME", _text),
    4: ("IFLA_MTU", _u32),
    33: ("IFLA_CARRIER", _u8),
}
_ADDR_ATTRS = {
    1: ("IFA_ADDRESS", _ip),
    2: ("IFA_LOCAL", _ip),
    3: ("IFA_LABEL", _text),
    8: ("IFA_FLAGS", _u32),
}
_ROUTE_ATTRS = {
    1: ("RTA_DST", _ip),
    4: ("RTA_OIF", _u32),
    5: ("RTA_GATEWAY", _ip),
    6: ("RTA_PRIORITY", _u32),
    9: ("RTA_MULTIPATH", _multipath),
    15: ("RTA_TABLE", _u32),
}
_LAYOUT = {
    RTM_NEWLINK: (_IFINFOMSG, _LINK_ATTRS),
    RTM_DELLINK: (_IFINFOMSG, _LINK_ATTRS),
    RTM_NEWADDR: (_IFADDRMSG, _ADDR_ATTRS),
    RTM_DELADDR: (_IFADDRMSG, _ADDR_ATTRS),
    RTM_NEWROUTE: (_RTMSG, _ROUTE_ATTRS),
    RTM_DELROUTE: (_RTMSG, _ROUTE_ATTRS),
}


class Message(dict):
    """One link, address or route message: header fields as items, plus its attributes."""

    def __init__(self, fields: dict, attrs: dict):
        super().__init__(fields)
        self.attrs = attrs

    def get_attr(self, name: str):
        return self.attrs.get(name)


def _attrs(data: bytes, offset: int, end: int, known: dict) -> dict:
    attrs: dict = {}
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > end:
            break
        spec = known.get(kind & 0x3FFF)  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
        if spec is not None and spec[0] not in attrs:
            # a value of an unexpected size counts as absent
            with contextlib.suppress(ValueError, IndexError, struct.error):
                attrs[spec[0]] = spec[1](data[offset + _RTATTR.size : offset + length])
        offset += (length + 3) & ~3
    return attrs


def parse(data: bytes):
    """The link, address and route messages in one recv's worth of netlink bytes."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            break
        layout = _LAYOUT.get(msg_type)
        body = offset + _NLMSGHDR.size
        if layout is not None:
            (fixed, names), known = layout
            if body + fixed.size <= offset + length:
                fields = dict(zip(names, fixed.unpack_from(data, body), strict=True))
                fields["event"] = EVENTS[msg_type]
                yield Message(fields, _attrs(data, body + fixed.size, offset + length, known))
        offset += (length + 3) & ~3


def dump_request(msg_type: int, seq: int) -> bytes:
    """A dump request (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE) for every family."""
    body = {
        RTM_GETLINK: _IFINFOMSG[0].pack(socket.AF_UNSPEC, 0, 0, 0, 0),
        RTM_GETADDR: _IFADDRMSG[0].pack(socket.AF_UNSPEC, 0, 0, 0, 0),
        RTM_GETROUTE: _RTMSG[0].pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0),
    }[msg_type]
    header = _NLMSGHDR.pack(
        _NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    )
    return header + body
