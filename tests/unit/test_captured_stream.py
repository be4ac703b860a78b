"""Clients' pcapng streams: ring first, then live packets, with backpressure; HTTP and metrics."""

import io

from prometheus_client import generate_latest
from scapy.utils import PcapNgReader
from twisted.web.test.requesthelper import DummyRequest

from router7.captured import http
from router7.captured.ring import PACKET_OUTGOING, Packet
from router7.captured.stream import Capture


def pkt(i: int, ifname: str = "lan0", size: int = 60) -> Packet:
    return Packet(ts_ns=i * 1000, ifname=ifname, data=bytes([i % 256]) * size, orig_len=size)


def parse(data: bytes):
    return [(p.sniffed_on, p.original) for p in PcapNgReader(io.BytesIO(data))]


class Sink:
    """A transport stand-in that can say "buffer full" from write()."""

    def __init__(self, pause_after: int | None = None):
        self.chunks: list[bytes] = []
        self.pause_after = pause_after
        self.stream = None

    def write(self, data: bytes) -> None:
        self.chunks.append(data)
        if self.pause_after is not None and len(self.chunks) >= self.pause_after:
            self.stream.pauseProducing()

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def test_stream_sends_the_ring_then_live_packets():
    cap = Capture(["uplink0", "lan0"], ring_size=3)
    for i in range(5):
        cap.add(pkt(i, "uplink0" if i % 2 else "lan0"))
    sink = Sink()
    stream = cap.open_stream(sink.write)
    stream.start()
    cap.add(pkt(5))
    cap.add(pkt(6, "uplink0"))
    got = parse(sink.data)
    assert [d[0] for _, d in got] == [2, 3, 4, 5, 6]
    assert [name for name, _ in got] == ["lan0", "uplink0", "lan0", "lan0", "uplink0"]


def test_packets_between_open_and_start_are_not_lost_or_doubled():
    cap = Capture(["lan0"], ring_size=10)
    cap.add(pkt(1))
    sink = Sink()
    stream = cap.open_stream(sink.write)
    cap.add(pkt(2))  # e.g. while the SSH success reply is on its way
    stream.start()
    assert [d[0] for _, d in parse(sink.data)] == [1, 2]


def test_ring_only_stream_finishes_and_gets_no_live_packets():
    cap = Capture(["lan0"], ring_size=10)
    cap.add(pkt(1))
    sink, done = Sink(), []
    stream = cap.open_stream(sink.write, live=False, on_done=lambda: done.append(True))
    stream.start()
    cap.add(pkt(2))
    assert done == [True]
    assert [d[0] for _, d in parse(sink.data)] == [1]
    assert stream not in cap.streams


def test_paused_stream_resumes_where_it_stopped():
    cap = Capture(["lan0"], ring_size=1000)
    for i in range(600):
        cap.add(pkt(i))
    sink = Sink(pause_after=2)  # header, then one batch of packets
    sink.stream = stream = cap.open_stream(sink.write)
    stream.start()
    assert stream.paused and len(sink.chunks) == 2
    cap.add(pkt(600))  # queued, not written while paused
    assert len(sink.chunks) == 2
    sink.pause_after = None
    stream.resumeProducing()
    assert [d[0] for _, d in parse(sink.data)] == [i % 256 for i in range(601)]


def test_a_stuck_client_drops_live_packets_beyond_its_limit():
    cap = Capture(["lan0"], ring_size=2)
    sink = Sink(pause_after=1)
    sink.stream = stream = cap.open_stream(sink.write)
    stream.start()  # header written, then paused
    for i in range(10):
        cap.add(pkt(i))
    assert len(stream.pending) == 4  # 2 x ring size
    assert stream.dropped == 6 and cap.client_drops == 6


def test_closed_stream_gets_nothing_more():
    cap = Capture(["lan0"], ring_size=2)
    sink = Sink()
    stream = cap.open_stream(sink.write)
    stream.start()
    stream.stopProducing()
    cap.add(pkt(1))
    assert len(sink.chunks) == 1 and not cap.streams


def test_counters_and_snaplen():
    cap = Capture(["uplink0", "lan0"], ring_size=5, snaplen=20)
    cap.add(pkt(1, "uplink0", size=100))
    cap.add(pkt(2, "lan0")._replace(pkttype=PACKET_OUTGOING))
    cap.add(pkt(3, "eth9"))  # not ours
    assert cap.packets == {("uplink0", "in"): 1, ("lan0", "out"): 1}
    assert cap.truncated == {"uplink0": 1, "lan0": 1}
    assert [len(p.data) for p in cap.ring] == [20, 20]
    assert [p.orig_len for p in cap.ring] == [100, 60]


# --- HTTP -------------------------------------------------------------------------


class Request(DummyRequest):
    """DummyRequest plus the producer and query-argument parts we use."""

    def __init__(self, path: bytes, args=None):
        super().__init__([path])
        self.args = args or {}
        self.producer = None

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def unregisterProducer(self):
        self.producer = None


def test_http_ring_only_download():
    cap = Capture(["uplink0", "lan0"], ring_size=10)
    cap.add(pkt(7, "uplink0"))
    req = Request(b"capture.pcapng", {b"live": [b"0"]})
    resource = http.CaptureResource(cap)
    result = resource.render_GET(req)
    assert result == 1  # NOT_DONE_YET
    assert req.finished
    assert req.responseHeaders.getRawHeaders(b"content-type") == [b"application/x-pcapng"]
    assert parse(b"".join(req.written)) == [("uplink0", bytes([7]) * 60)]
    assert not cap.streams


def test_http_live_stream_follows_until_the_client_leaves():
    cap = Capture(["lan0"], ring_size=10)
    req = Request(b"capture.pcapng")
    http.CaptureResource(cap).render_GET(req)
    assert not req.finished and req.producer is not None
    assert cap.clients() == {"http": 1}
    cap.add(pkt(9))
    assert parse(b"".join(req.written)) == [("lan0", bytes([9]) * 60)]
    req.processingFailed(Exception("client went away"))  # fires notifyFinish's errback
    assert cap.clients() == {}


def test_index_and_metrics():
    cap = Capture(["uplink0", "lan0"], ring_size=10)
    cap.add(pkt(1, "uplink0"))
    cap.add(pkt(2, "lan0")._replace(pkttype=PACKET_OUTGOING))
    req = Request(b"")
    assert b"/capture.pcapng" in http.Index(cap).render_GET(req)
    text = generate_latest(http.registry_for(cap)).decode()
    assert 'captured_packets_total{direction="in",interface="uplink0"} 1.0' in text
    assert 'captured_packets_total{direction="out",interface="lan0"} 1.0' in text
    assert "captured_ring_packets 2.0" in text
    assert "captured_ring_capacity 10.0" in text
    assert "captured_ring_bytes 120.0" in text
    assert 'captured_clients{protocol="ssh"} 0.0' in text
