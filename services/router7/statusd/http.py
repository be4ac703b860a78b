"""statusd's HTTP resources: ``/`` (the page), ``/status.json`` and ``/metrics``.

Both views are built from one ``gather()``: the file sections are read on each
request (they are small, and the page must show the current state), diagd's
health is fetched with a timeout. Broken state files are part of the page; only
a bug in statusd itself gives a 500, with a one-line body (the traceback goes to
the log, not to the browser).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter
from twisted.internet import defer
from twisted.web import resource, server

from router7.runtime import auth
from router7.runtime.mgmt import Pages, management_site
from router7.statusd import collect, render
from router7.statusd.links import Links, url_host

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "statusd_requests", "requests served, by page", ["page"], registry=registry
        )
        self.file_errors = Counter(
            "statusd_state_file_errors",
            "requests that found a state file broken, by section",
            ["section"],
            registry=registry,
        )
        self.diagd_unavailable = Counter(
            "statusd_diagd_unavailable",
            "requests for which diagd did not answer",
            registry=registry,
        )


class Status:
    """Gathers the data of one request: state files now, diagd's health fetched."""

    def __init__(
        self,
        perm,
        run_dir,
        diag_client,
        clock,
        metrics: Metrics | None = None,
        services=collect.SERVICES,
        links: Callable[[object], Links] | None = None,
    ):
        self.perm = perm
        self.run_dir = run_dir
        self.diag = diag_client
        self.clock = clock
        self.metrics = metrics
        self.services = services
        self.links = links

    def gather(self) -> defer.Deferred:
        """Deferred[dict]; never errbacks for broken files or a silent diagd."""
        now = datetime.fromtimestamp(int(self.clock.seconds()), UTC)
        status = collect.collect(self.perm, self.run_dir, now, self.services)
        if self.metrics is not None:
            for key in ("uplink4", "uplink6", "lan"):
                if status[key]["state"] == "error" or status[key].get("errors"):
                    self.metrics.file_errors.labels(key).inc()

        def add(diag: dict) -> dict:
            status["diag"] = diag
            if self.metrics is not None and diag["state"] != "ok":
                self.metrics.diagd_unavailable.inc()
            return status

        return self.diag.fetch().addCallback(add)


class _Page(resource.Resource):
    isLeaf = True
    page = ""

    def __init__(self, status: Status):
        super().__init__()
        self.status = status

    def render_GET(self, request):
        if self.status.metrics is not None:
            self.status.metrics.requests.labels(self.page).inc()
        gone: list[bool] = []  # the client hung up while diagd was asked
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def send(body: bytes):
            if not gone:
                request.setHeader(b"cache-control", b"no-store")
                request.write(body)
                request.finish()

        def failed(f):
            log.error("%s failed: %s", request.uri.decode(errors="replace"), f.getTraceback())
            if not gone:
                request.setResponseCode(500)
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                request.write(b"internal error; see router7-statusd's log\n")
                request.finish()

        d = defer.maybeDeferred(self.status.gather)
        d.addCallback(lambda status: self.body(request, status))  # a rendering bug -> failed
        d.addCallbacks(send, failed)
        return server.NOT_DONE_YET

    def body(self, request, status: dict) -> bytes:
        raise NotImplementedError


class HtmlPage(_Page):
    page = "html"

    def body(self, request, status):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        links = self.status.links(request) if self.status.links else _links_for(request, 80)
        page = render.page(status, links)
        token = auth.take_for_display(self.status.perm)
        if token is not None:  # first boot: the owner's one look at the admin credential
            page = page.replace(b"<body>", render.credential_banner(token), 1)
        return page


class JsonPage(_Page):
    page = "json"

    def body(self, request, status):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(status, indent=2, sort_keys=True).encode() + b"\n"


def _links_for(request, port: int, **kw) -> Links:
    return Links(url_host(request.getHeader(b"host"), request.getHost().host), port, **kw)


def make_site(status: Status, registry: CollectorRegistry) -> server.Site:
    # quiet: a page reloaded on a phone is not worth a log line
    root = Pages(HtmlPage(status), {b"status.json": JsonPage(status)})
    return management_site(root, registry, quiet=True)


def links_factory(port: int, **kw) -> Callable[[object], Links]:
    return lambda request: _links_for(request, port, **kw)
