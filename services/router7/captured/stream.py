"""The capture hub: the ring, its counters, and the clients streaming from it.

Each client (SSH channel or HTTP response) gets a PcapngStream: the pcapng
header, the ring as it was when the client connected, then every new packet.
A stream is a Twisted push producer, so a client that reads slowly pauses it
instead of making the server buffer without bound; while it is paused, new
packets queue up to a limit and beyond that are dropped (and counted) for
that client only.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from router7.captured import pcapng
from router7.captured.ring import Packet, Ring

log = logging.getLogger(__name__)

BATCH = 256  # packets per transport write: fewer, larger writes
# The ring's byte bound (frame data): 16 MiB, about 10 000 full-size frames.
RING_BYTES = 16 << 20


class Capture:
    """The ring plus everyone following it. Pure: no sockets, no reactor."""

    def __init__(
        self,
        interfaces: Iterable[str],
        ring_size: int = 50_000,
        snaplen: int = 1600,
        ring_bytes: int | None = RING_BYTES,
    ):
        self.interfaces = tuple(interfaces)
        self.ids = {name: i for i, name in enumerate(self.interfaces)}
        self.snaplen = snaplen
        self.ring = Ring(ring_size, ring_bytes)
        self.streams: set[PcapngStream] = set()
        self.packets: Counter[tuple[str, str]] = Counter()  # (interface, direction)
        self.truncated: Counter[str] = Counter()
        self.client_drops = 0  # live packets not sent to a client that was too slow

    def add(self, packet: Packet) -> None:
        if packet.ifname not in self.ids:
            return
        if len(packet.data) > self.snaplen:
            packet = packet._replace(data=packet.data[: self.snaplen])
        if packet.orig_len > len(packet.data):
            self.truncated[packet.ifname] += 1
        self.packets[(packet.ifname, "out" if packet.outgoing else "in")] += 1
        self.ring.append(packet)
        for stream in list(self.streams):
            stream.offer(packet)

    def open_stream(
        self,
        write: Callable[[bytes], object],
        *,
        live: bool = True,
        kind: str = "http",
        on_done: Callable[[], object] = lambda: None,
    ) -> PcapngStream:
        """A stream writing to ``write``; call its start() once the transport is ready.

        ``live=False`` sends only the ring and then calls ``on_done``.
        """
        stream = PcapngStream(self, write, live=live, kind=kind, on_done=on_done)
        self.streams.add(stream)
        return stream

    def close_stream(self, stream: PcapngStream) -> None:
        stream.stopped = True
        stream.pending.clear()
        self.streams.discard(stream)

    def clients(self) -> Counter[str]:
        return Counter(s.kind for s in self.streams)


@implementer(IPushProducer)
class PcapngStream:
    """One client's pcapng stream (see the module docstring)."""

    def __init__(
        self,
        capture: Capture,
        write: Callable[[bytes], object],
        *,
        live: bool,
        kind: str,
        on_done: Callable[[], object],
        limit: int | None = None,
    ):
        self.capture = capture
        self.write = write
        self.live = live
        self.kind = kind
        self.on_done = on_done
        # The ring itself plus as many again of live packets may wait.
        self.limit = limit if limit is not None else 2 * capture.ring.capacity
        # The ring as it is now; packets offer()ed before start() queue behind it.
        self.pending: deque[Packet] = deque(capture.ring.snapshot())
        self.paused = False
        self.stopped = False
        self.started = False
        self.done = False
        self.sent = 0
        self.dropped = 0

    def start(self) -> None:
        if self.started or self.stopped:
            return
        self.started = True
        self.write(pcapng.header(self.capture.interfaces, self.capture.snaplen))
        self._flush()

    def offer(self, packet: Packet) -> None:
        if self.stopped or not self.live:
            return
        if len(self.pending) >= self.limit:
            self.dropped += 1
            self.capture.client_drops += 1
            return
        self.pending.append(packet)
        if self.started and not self.paused:
            self._flush()

    def _flush(self) -> None:
        ids = self.capture.ids
        # write() may call pauseProducing() (transport buffer full) or even
        # stopProducing() (connection gone): look at the flags after each write.
        while self.pending and not self.paused and not self.stopped:
            n = min(BATCH, len(self.pending))
            batch = [self.pending.popleft() for _ in range(n)]
            self.write(b"".join(pcapng.enhanced_packet(ids[p.ifname], p) for p in batch))
            self.sent += n
        if not self.live and not self.pending and not self.stopped and not self.done:
            self.done = True
            self.capture.close_stream(self)
            self.on_done()

    # IPushProducer
    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        if self.started:
            self._flush()

    def stopProducing(self) -> None:
        self.capture.close_stream(self)
