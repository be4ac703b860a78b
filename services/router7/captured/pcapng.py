"""A streaming pcapng encoder (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html).

Written by hand because scapy's PcapNgWriter cannot serve here: its constructor
opens a file name (no writing to a Twisted transport), it always starts with an
unnamed interface 0 and adds named interfaces lazily in the middle of the
stream, and its snaplen and microsecond timestamps are fixed. The format is a
handful of length-prefixed blocks, so the encoder is short; tests parse its
output with scapy and tshark.

All blocks are little-endian, as tcpdump and Wireshark write them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from router7.captured.ring import (
    PACKET_BROADCAST,
    PACKET_HOST,
    PACKET_MULTICAST,
    PACKET_OTHERHOST,
    PACKET_OUTGOING,
    Packet,
)

LINKTYPE_ETHERNET = 1

_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

_OPT_END = 0
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_TSRESOL = 9
_EPB_FLAGS = 2

# epb_flags: bits 0-1 direction (1 inbound, 2 outbound), bits 2-4 reception type.
_RECEPTION = {
    PACKET_HOST: 1 << 2,  # unicast
    PACKET_MULTICAST: 2 << 2,
    PACKET_BROADCAST: 3 << 2,
    PACKET_OTHERHOST: 4 << 2,  # promiscuous
}


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)  # body is already a multiple of 4
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def section_header(application: str = "router7-captured") -> bytes:
    body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)  # v1.0, length unknown
    body += _option(_SHB_USERAPPL, application.encode()) + _option(_OPT_END, b"")
    return _block(_SHB, body)


def interface_description(ifname: str, snaplen: int, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    body = struct.pack("<HHI", linktype, 0, snaplen)
    body += _option(_IF_NAME, ifname.encode())
    body += _option(_IF_TSRESOL, bytes([9]))  # timestamps in nanoseconds
    body += _option(_OPT_END, b"")
    return _block(_IDB, body)


def header(interfaces: Iterable[str], snaplen: int) -> bytes:
    """Section header plus one interface description per interface (IDs 0, 1, ...)."""
    return section_header() + b"".join(interface_description(i, snaplen) for i in interfaces)


def enhanced_packet(interface_id: int, packet: Packet) -> bytes:
    ts = packet.ts_ns
    flags = 2 if packet.pkttype == PACKET_OUTGOING else 1 | _RECEPTION.get(packet.pkttype, 0)
    body = struct.pack(
        "<IIIII",
        interface_id,
        (ts >> 32) & 0xFFFFFFFF,
        ts & 0xFFFFFFFF,
        len(packet.data),
        max(packet.orig_len, len(packet.data)),
    )
    body += _pad(packet.data)
    body += _option(_EPB_FLAGS, struct.pack("<I", flags)) + _option(_OPT_END, b"")
    return _block(_EPB, body)
