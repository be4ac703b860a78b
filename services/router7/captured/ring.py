"""The captured packets: a fixed-size ring of the most recent ones."""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

# Linux packet types (sll_pkttype, <linux/if_packet.h>).
PACKET_HOST = 0
PACKET_BROADCAST = 1
PACKET_MULTICAST = 2
PACKET_OTHERHOST = 3
PACKET_OUTGOING = 4


class Packet(NamedTuple):
    """One captured frame (a NamedTuple: 50 000 of them should stay small)."""

    ts_ns: int  # capture time, ns since the epoch
    ifname: str
    data: bytes  # the frame from the Ethernet header on, at most snaplen bytes
    orig_len: int  # the frame's length on the wire
    pkttype: int = PACKET_HOST

    @property
    def outgoing(self) -> bool:
        return self.pkttype == PACKET_OUTGOING


class Ring:
    """The last ``capacity`` packets, oldest first, and at most ``max_bytes`` of frame
    data (None: no byte bound); append is O(1) amortised.

    Bounded by bytes as well: 50 000 packets of a 1600-byte snaplen would be 80 MB,
    where typical DHCP/ND/ARP traffic averages a few hundred bytes a packet.
    """

    def __init__(self, capacity: int, max_bytes: int | None = None):
        if capacity < 1:
            raise ValueError(f"ring capacity must be at least 1, not {capacity}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"ring byte bound must be at least 1, not {max_bytes}")
        self._packets: deque[Packet] = deque(maxlen=capacity)
        self.max_bytes = max_bytes
        self.bytes = 0  # sum of the stored frames' lengths, for /metrics

    @property
    def capacity(self) -> int:
        return self._packets.maxlen or 0

    def __len__(self) -> int:
        return len(self._packets)

    def __iter__(self):
        return iter(self._packets)

    def append(self, packet: Packet) -> None:
        if len(self._packets) == self._packets.maxlen:
            self.bytes -= len(self._packets[0].data)  # the deque drops it below
        self._packets.append(packet)
        self.bytes += len(packet.data)
        if self.max_bytes is not None:
            while self.bytes > self.max_bytes and len(self._packets) > 1:
                self.bytes -= len(self._packets.popleft().data)

    def snapshot(self) -> list[Packet]:
        """A copy for a new client: later appends do not change it."""
        return list(self._packets)
