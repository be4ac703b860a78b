"""diagd's LAN-only HTTP (:7733): the HTML tree, ``/health.json`` and ``/metrics``.

Every request evaluates the tree (or takes the evaluator's few-seconds-old
report), so what the owner sees is current. ``/health.json`` is what the update
tool gates on: ``{"healthy": bool, "first_error": "name: status", "checks": [...]}``,
always with status 200 like router7's (the body carries the verdict).
"""

from __future__ import annotations

import html
import json
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from twisted.python import log as twlog
from twisted.web import resource, server

from router7.diagd.tree import Evaluator, Report, Result
from router7.runtime.mgmt import Pages, management_site


class DiagCollector:
    """Prometheus view of the latest report (``/metrics`` refreshes it first)."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def collect(self):
        report = self.evaluator.last
        healthy = GaugeMetricFamily("diagd_healthy", "1 if every counted check passes, else 0")
        check = GaugeMetricFamily(
            "diagd_check_ok", "1 if the check passed, else 0", labels=["check"]
        )
        seconds = GaugeMetricFamily(
            "diagd_check_seconds", "how long the check's probe took", labels=["check"]
        )
        if report is not None:
            healthy.add_metric([], 1.0 if report.healthy else 0.0)
            for r in report.walk():
                check.add_metric([r.name], 1.0 if r.ok else 0.0)
                seconds.add_metric([r.name], r.seconds)
        yield healthy
        yield check
        yield seconds


def registry_for(
    evaluator: Evaluator, registry: CollectorRegistry | None = None
) -> CollectorRegistry:
    """``registry`` (a new one if None) with the check tree's metrics in it."""
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(DiagCollector(evaluator))
    return registry


class _Evaluated(resource.Resource):
    """A leaf that renders after the evaluator produced a report."""

    isLeaf = True

    def __init__(self, evaluator: Evaluator):
        super().__init__()
        self.evaluator = evaluator

    def render_GET(self, request):
        gone: list[bool] = []  # the client hung up while the checks ran
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def done(report):
            if not gone:
                request.write(self.body(request, report))
                request.finish()

        def failed(f):
            twlog.err(f, "diagd evaluation failed")
            if not gone:
                request.setResponseCode(500)
                request.finish()

        self.evaluator.report().addCallbacks(done, failed)
        return server.NOT_DONE_YET

    def body(self, request, report: Report) -> bytes:
        raise NotImplementedError


class HealthJson(_Evaluated):
    def body(self, request, report):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(report.to_json(), indent=2).encode() + b"\n"


class Metrics(_Evaluated):
    def __init__(self, evaluator, registry: CollectorRegistry):
        super().__init__(evaluator)
        self.registry = registry

    def body(self, request, report):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.registry)


_CSS = """
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1rem;
 background:#f6f7f9;color:#1d2430;max-width:48rem}
h1{font-size:1.25rem;margin:.2rem 0 .8rem}
.verdict{padding:.8rem 1rem;border-radius:.6rem;font-weight:600;margin-bottom:1rem}
.verdict.ok{background:#e3f6e8;color:#14532d}.verdict.bad{background:#fde8e8;color:#7f1d1d}
ul{list-style:none;margin:0;padding-left:1.1rem;border-left:2px solid #dde2ea}
body>ul{padding-left:0;border:0}
li{margin:.35rem 0}
.node{display:block;background:#fff;border-radius:.5rem;padding:.45rem .7rem;
 box-shadow:0 1px 2px rgba(0,0,0,.06);overflow-wrap:anywhere}
.mark{font-weight:700;margin-right:.35rem}.ok .mark{color:#15803d}.bad .mark{color:#b91c1c}
.skip .mark{color:#9ca3af}.name{font-weight:600}
.status{display:block;color:#4b5563;font-size:.9rem}
.muted{color:#6b7280;font-size:.85rem}.muted a{color:inherit}
"""


def _node(r: Result) -> str:
    cls = "ok" if r.ok else ("skip" if r.skipped else "bad")
    mark = "✔" if r.ok else ("–" if r.skipped else "✘")
    extra = "" if r.counts else ' <span class="muted">(not counted for health)</span>'
    out = (
        f'<li><span class="node {cls}"><span class="mark">{mark}</span>'
        f'<span class="name">{html.escape(r.name)}</span>{extra}'
        f'<span class="status">{html.escape(r.status)}</span></span>'
    )
    if r.children:
        out += "<ul>" + "".join(_node(c) for c in r.children) + "</ul>"
    return out + "</li>"


def render_html(report: Report, wall_time: float | None = None) -> bytes:
    when = time.strftime(
        "%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall_time if wall_time is not None else time.time())
    )
    if report.healthy:
        verdict = '<div class="verdict ok">✔ Healthy: everything checked works.</div>'
    else:
        verdict = f'<div class="verdict bad">✘ {html.escape(report.first_error)}</div>'
    tree = "<ul>" + "".join(_node(r) for r in report.results) + "</ul>"
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>router7 diagnostics</title><style>{_CSS}</style></head><body>"
        f"<h1>router7 diagnostics</h1>{verdict}{tree}"
        f'<p class="muted">Checked {when}. <a href="/">Check again</a> · '
        '<a href="/health.json">health.json</a> · <a href="/metrics">metrics</a></p>'
        "</body></html>\n"
    )
    return page.encode()


class TreePage(_Evaluated):
    def body(self, request, report):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        return render_html(report)


def make_site(evaluator: Evaluator, registry: CollectorRegistry | None = None) -> server.Site:
    registry = registry_for(evaluator, registry)
    root = Pages(TreePage(evaluator), {b"health.json": HealthJson(evaluator)})
    # management_site's /metrics would show the last report, however old; ours
    # evaluates (or takes the cached report) first.
    root.putChild(b"metrics", Metrics(evaluator, registry))
    return management_site(root, registry, quiet=True)  # scraped every few seconds
