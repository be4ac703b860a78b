"""Management HTTP sites: for private clients only, with /metrics.

Where they listen is listeners.py's job (private addresses off the uplinks);
this is the second fence, for traffic that reaches a LAN address anyway.
"""

from __future__ import annotations

import ipaddress
import logging

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from twisted.web import pages, resource, server

from router7.runtime.private import EXCLUDED_NETS, is_private  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


def private_client(request) -> bool:
    """Whether an HTTP request comes from a private (LAN, loopback) address.

    A loopback client with X-Forwarded-For is a local reverse proxy: judge the
    client it names (as router7 does).
    """
    try:
        ip = ipaddress.ip_address(request.getClientAddress().host.split("%")[0])
        forwarded = request.getHeader(b"x-forwarded-for")
        if ip.is_loopback and forwarded:
            ip = ipaddress.ip_address(forwarded.split(b",")[0].strip().decode())
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False
    return is_private(ip)


class _Forbidden(resource.Resource):
    isLeaf = True

    def render(self, request):
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"forbidden: not a private address\n"


class _PrivateOnly(resource.Resource):
    """Refuses non-private clients before any child of ``inner`` is looked up.

    Defence in depth on top of binding LAN addresses only: traffic that reaches a
    LAN address through the uplink (Linux accepts it on any interface) is refused.
    Every request passes through here, because a path always has one segment.
    """

    def __init__(self, inner: resource.Resource):
        super().__init__()
        self.inner = inner

    def getChildWithDefault(self, path, request):
        if not private_client(request):
            return _Forbidden()
        return self.inner.getChildWithDefault(path, request)


class Pages(resource.Resource):
    """A service's pages: ``index`` at ``/``, ``children`` by name, /metrics added by
    management_site; anything else is 404."""

    def __init__(self, index: resource.Resource, children: dict[bytes, resource.Resource]):
        super().__init__()
        self.index = index
        for name, child in children.items():
            self.putChild(name, child)

    def getChildWithDefault(self, path, request):
        if path == b"":
            return self.index
        return super().getChildWithDefault(path, request)

    def getChild(self, path, request):
        return pages.notFound()


class MetricsPage(resource.Resource):
    """/metrics rendered in the reactor thread: a router's few metrics need no WSGI thread pool."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self.registry = registry

    def render_GET(self, request):
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self.registry)


def management_site(
    root: resource.Resource | None = None,
    registry: CollectorRegistry = REGISTRY,
    quiet: bool = False,
    perm=None,
) -> server.Site:
    """A Site serving ``root`` to private clients only, with Prometheus metrics under /metrics.

    ``quiet``: no access log (pages reloaded or scraped every few seconds).
    ``perm``: every state-changing request (any method but GET/HEAD/OPTIONS) needs
    the admin credential of ``<perm>/admin/token`` and a same-origin page (auth.Guarded).
    """
    root = root if root is not None else _Index()
    if b"metrics" not in root.children:
        root.putChild(b"metrics", MetricsPage(registry))
    if perm is not None:
        from router7.runtime import auth  # only sites that change state need it

        root = auth.Guarded(root, perm)
    site = server.Site(_PrivateOnly(root))
    site.displayTracebacks = False
    if quiet:
        site.log = lambda request: None
        site.noisy = False
    return site


class _Index(resource.Resource):
    def getChild(self, path, request):
        return self if path == b"" else super().getChild(path, request)

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"router7 management: see /metrics\n"
