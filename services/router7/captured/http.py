"""The HTTP face of captured: /capture.pcapng (streamed, chunked) and /metrics."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web import resource, server

from router7.captured.stream import Capture

log = logging.getLogger(__name__)

_FALSE = {b"0", b"false", b"no", b"off"}


class CaptureResource(resource.Resource):
    """GET streams the ring and then live packets; ?live=0 only the ring."""

    isLeaf = True

    def __init__(self, capture: Capture):
        super().__init__()
        self.capture = capture

    def render_GET(self, request):
        live = request.args.get(b"live", [b"1"])[0].lower() not in _FALSE
        request.setHeader(b"content-type", b"application/x-pcapng")
        request.setHeader(b"content-disposition", b'inline; filename="router7.pcapng"')
        request.setHeader(b"cache-control", b"no-store")
        if request.method == b"HEAD":
            return b""

        def done():
            request.unregisterProducer()
            request.finish()

        stream = self.capture.open_stream(request.write, live=live, kind="http", on_done=done)
        # No content-length: HTTP/1.1 clients get chunked encoding.
        request.registerProducer(stream, True)
        request.notifyFinish().addBoth(lambda _: self.capture.close_stream(stream))
        stream.start()
        return server.NOT_DONE_YET


class Index(resource.Resource):
    def __init__(self, capture: Capture):
        super().__init__()
        self.capture = capture

    def getChild(self, path, request):
        return self if path == b"" else super().getChild(path, request)

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        c = self.capture
        return (
            "router7-captured: DHCPv4, DHCPv6, ICMPv6 ND/RA and ARP on "
            f"{', '.join(c.interfaces)}; {len(c.ring)} of the last {c.ring.capacity} packets kept.\n"
            "\n"
            "  /capture.pcapng          the kept packets, then live ones (curl ... | wireshark -k -i -)\n"
            "  /capture.pcapng?live=0   only the kept packets, as a file\n"
            "  /metrics                 Prometheus metrics\n"
        ).encode()


def root(capture: Capture) -> resource.Resource:
    index = Index(capture)
    index.putChild(b"capture.pcapng", CaptureResource(capture))
    return index


class CapturedCollector:
    """Prometheus view of the capture; ``service`` supplies sniffers and the SSH checker."""

    def __init__(self, capture: Capture, sniffers=(), ssh_checker=None):
        self.capture = capture
        self.sniffers = sniffers
        self.ssh_checker = ssh_checker

    def collect(self):
        c = self.capture
        packets = CounterMetricFamily(
            "captured_packets",
            "Packets captured, by interface and direction (in, out)",
            labels=["interface", "direction"],
        )
        for iface in c.interfaces:
            for direction in ("in", "out"):
                packets.add_metric([iface, direction], c.packets[(iface, direction)])
        yield packets
        truncated = CounterMetricFamily(
            "captured_truncated_packets",
            "Packets longer than the snaplen, stored truncated",
            labels=["interface"],
        )
        for iface in c.interfaces:
            truncated.add_metric([iface], c.truncated[iface])
        yield truncated
        yield GaugeMetricFamily(
            "captured_ring_packets", "Packets in the ring buffer", value=len(c.ring)
        )
        yield GaugeMetricFamily(
            "captured_ring_capacity", "Size of the ring buffer", value=c.ring.capacity
        )
        yield GaugeMetricFamily(
            "captured_ring_bytes", "Bytes of packet data in the ring", value=c.ring.bytes
        )
        clients = GaugeMetricFamily(
            "captured_clients", "Clients streaming the capture", labels=["protocol"]
        )
        counts = c.clients()
        for kind in ("http", "ssh"):
            clients.add_metric([kind], counts[kind])
        yield clients
        yield CounterMetricFamily(
            "captured_client_dropped_packets",
            "Live packets not sent to a client because it read too slowly",
            value=c.client_drops,
        )
        capturing = GaugeMetricFamily(
            "captured_interface_capturing",
            "1 if the interface's capture socket is open",
            labels=["interface"],
        )
        errors = CounterMetricFamily(
            "captured_receive_errors",
            "Errors reading capture sockets, by interface and errno",
            labels=["interface", "error"],
        )
        for s in self.sniffers:
            capturing.add_metric([s.ifname], 1 if s.capturing else 0)
            for err, n in sorted(s.errors.items()):
                errors.add_metric([s.ifname, err], n)
        yield capturing
        yield errors
        if self.ssh_checker is not None:
            yield CounterMetricFamily(
                "captured_ssh_rejected_keys",
                "SSH public key logins refused (key not in authorized_keys)",
                value=self.ssh_checker.rejected,
            )


def registry_for(
    capture: Capture, sniffers=(), ssh_checker=None, registry: CollectorRegistry | None = None
) -> CollectorRegistry:
    """``registry`` (a new one if None) with the capture's metrics in it."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(CapturedCollector(capture, sniffers, ssh_checker))
    return registry
