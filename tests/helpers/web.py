"""One DummyRequest helper for the HTTP tests (twisted.web's own test double)."""

from __future__ import annotations

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.resource import getChildForRequest
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest


def request(
    path: bytes, client: str = "192.168.42.10", headers=(), method=b"GET", args=None
) -> DummyRequest:
    """A request for ``path`` from ``client`` (v4 or v6) with ``headers`` (name, value)
    and query/form ``args`` (name -> value, bytes)."""
    req = DummyRequest(path.lstrip(b"/").split(b"/"))
    req.method = method
    req.client = (IPv6Address if ":" in client else IPv4Address)("TCP", client, 40000)
    for name, value in headers:
        req.requestHeaders.addRawHeader(name, value)
    for name, value in (args or {}).items():
        req.addArg(name, value)
    return req


def resolve(root, path: bytes, client: str = "192.168.42.10", headers=(), **kw):
    """(the leaf resource that would render, the request): ``root`` is a Site or a Resource."""
    req = request(path, client, headers, **kw)
    return getChildForRequest(getattr(root, "resource", root), req), req


def get(root, path: bytes, client: str = "192.168.42.10", headers=(), **kw):
    """Render ``path``; returns (request, body). A deferred render must finish by itself
    (on a task.Clock the test advances it before looking)."""
    leaf, req = resolve(root, path, client, headers, **kw)
    body = leaf.render(req)
    if body is not NOT_DONE_YET:
        req.write(body)
        req.finish()
    return req, b"".join(req.written)
