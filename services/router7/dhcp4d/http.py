"""LAN-only HTTP on :8067: the lease status page, ``/lease/<hostname>``,
``POST /sethostname`` and ``/metrics``.

The runtime's listener pool binds only private addresses off the uplinks; on top of that
every handler refuses non-private clients, which router7 forgot for /lease/ and
/sethostname (reference §17.2).
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web import resource

from router7.dhcp4d.leases import Lease
from router7.dhcp4d.store import to_json


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


class StatusPage(resource.Resource):
    """``/``: every lease, static ones first, then the newest expiry first."""

    def __init__(self, app):
        super().__init__()
        self.app = app  # has .server (or None), .vendors, .clock, .set_hostname()
        self.putChild(b"lease", LeaseByName(app))
        self.putChild(b"sethostname", SetHostname(app))

    def getChild(self, path, request):
        return self if path == b"" else super().getChild(path, request)

    def render_GET(self, request):
        now = self.app.clock.seconds()
        leases = self.app.leases()
        static = sorted((lease for lease in leases if lease.static), key=lambda x: x.addr)
        dynamic = sorted(
            (lease for lease in leases if not lease.static),
            key=lambda x: x.expiry or 0.0,
            reverse=True,
        )
        active = sum(1 for lease in leases if not lease.expired(now))
        rows = [self._row(lease, now) for lease in static + dynamic]
        server = self.app.server
        head = (
            f"lan0 {server.pool.interface}, pool {server.pool.start}–{server.pool.end}"
            if server
            else "lan0 has no IPv4 address yet: not serving"
        )
        warning = ""
        if server:
            free = server.table.free(now)
            head += f", {free} of {server.pool.size} free"
            if server.gate.low(free, server.pool.size):
                warning = (
                    '<p class="full"><b>The address pool is (nearly) full</b>: new devices '
                    "get an address at most every "
                    f"{server.gate.interval:.0f} s; leases not renewed at T1 are reclaimed.</p>"
                )
        body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>DHCPv4 status</title>
<style>body{{font-family:sans-serif}} td,th{{padding:2px 8px;text-align:left}}
.expired{{color:#999}} .override{{color:orange}} .full{{color:#b00}}</style></head>
<body><h1>DHCPv4 status</h1><p>{html.escape(head)}; {active} active of {len(leases)}</p>
{warning}
<table><tr><th>IP</th><th>hostname</th><th>MAC</th><th>vendor</th><th>last ACK</th>
<th>expiry</th><th>state</th></tr>
{"".join(rows)}
</table></body></html>
"""
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return body.encode()

    def _row(self, lease: Lease, now: float) -> str:
        state = "static" if lease.static else ("expired" if lease.expired(now) else "active")
        vendor = self.app.vendors.vendor(lease.hardware_addr) or lease.vendor_class
        mark = (
            ' <span class="override" title="set by the owner">!</span>'
            if lease.hostname_override
            else ""
        )
        e = html.escape
        form = (
            f'<form method="post" action="/sethostname" style="display:inline">'
            f'<input type="hidden" name="hardwareaddr" value="{e(lease.hardware_addr)}">'
            f'<input name="hostname" value="{e(lease.hostname)}" size="16"></form>{mark}'
        )
        return (
            f'<tr class="{state}"><td>{lease.addr}</td><td>{form}</td>'
            f"<td>{e(lease.hardware_addr)}</td><td>{e(vendor)}</td>"
            f"<td>{_when(lease.last_ack)}</td>"
            f"<td>{'never' if lease.static else _when(lease.expiry)}</td><td>{state}</td></tr>\n"
        )


class LeaseByName(resource.Resource):
    """``/lease/<hostname>``: that lease as JSON; X-Lease-Active when renewed recently."""

    isLeaf = True

    def __init__(self, app):
        super().__init__()
        self.app = app

    def render_GET(self, request):
        name = b"/".join(request.postpath).decode("utf-8", "replace").lower()
        match = [lease for lease in self.app.leases() if lease.hostname == name]
        if not name or not match:
            request.setResponseCode(404)
            return b"no such lease\n"
        lease = max(match, key=lambda x: x.last_ack or 0.0)
        now = self.app.clock.seconds()
        # router7: active = expiry more than 2/3 of the lease period ahead
        period = self.app.lease_time()
        active = lease.static or (lease.expiry or 0.0) > now + period * 2 / 3
        request.setHeader(b"x-lease-active", b"true" if active else b"false")
        request.setHeader(b"content-type", b"application/json")
        return (json.dumps(to_json([lease])[0]) + "\n").encode()


class SetHostname(resource.Resource):
    """``POST /sethostname`` (hardwareaddr, hostname): the owner renames a device."""

    isLeaf = True

    def __init__(self, app):
        super().__init__()
        self.app = app

    def render_POST(self, request):
        args = request.args
        mac = (args.get(b"hardwareaddr") or [b""])[0].decode("utf-8", "replace")
        name = (args.get(b"hostname") or [b""])[0].decode("utf-8", "replace")
        if not self.app.set_hostname(mac, name):
            request.setResponseCode(404)
            return b"no unexpired lease for that hardware address\n"
        request.redirect(b"/")
        return b""


class Dhcp4dCollector:
    """Prometheus view of the server's counters and the lease table, read at scrape time."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []

    def collect(self):
        server = self.app.server
        now = self.app.clock.seconds()
        leases = self.app.leases()
        active = sum(1 for lease in leases if not lease.expired(now))
        g = GaugeMetricFamily("dhcp4d_leases_active", "Leases not expired (static included)")
        g.add_metric([], active)
        yield g
        g = GaugeMetricFamily("non_expired_leases", "router7's name for dhcp4d_leases_active")
        g.add_metric([], active)
        yield g
        g = GaugeMetricFamily("dhcp4d_leases", "Leases known, expired included")
        g.add_metric([], len(leases))
        yield g
        g = GaugeMetricFamily("dhcp4d_pool_size", "Addresses in the pool")
        g.add_metric([], server.pool.size if server else 0)
        yield g
        g = GaugeMetricFamily(
            "dhcp4d_pool_free", "Pool addresses without an unexpired lease, offer or decline"
        )
        g.add_metric([], server.table.free(now) if server else 0)
        yield g
        stats = self.app.stats()
        for name, doc, counter, label in (
            ("received", "DHCP requests received by message type", stats.received, "type"),
            ("sent", "DHCP replies sent by message type", stats.sent, "type"),
            ("dropped", "Requests dropped as malformed or unanswerable", stats.dropped, "reason"),
            ("ignored", "Valid requests not meant for us", stats.ignored, "reason"),
        ):
            c = CounterMetricFamily(f"dhcp4d_packets_{name}", doc, labels=[label])
            for key, value in sorted(counter.items()):
                c.add_metric([key], value)
            yield c
        c = CounterMetricFamily(
            "dhcp4d_pool_exhausted", "DISCOVERs left unanswered because the pool was full"
        )
        c.add_metric([], stats.pool_exhausted)
        yield c


def registry_for(app, registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """``registry`` (a new one if None) with the server's metrics in it."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(Dhcp4dCollector(app))
    return registry
