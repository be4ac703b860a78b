"""diagd's verdict for the status page: GET its /health.json with a short timeout.

diagd binds loopback (a private address of a non-uplink interface), so statusd
asks http://127.0.0.1:7733/health.json. The page must render even when diagd is
down or hangs, hence the timeout and a section that says so instead of an error.
"""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory, readBody
from twisted.web.http_headers import Headers

from router7.runtime import ports

DEFAULT_URL = f"http://127.0.0.1:{ports.HTTP['diagd']}/health.json"


def parse(body: bytes) -> dict:
    """The diag section from a /health.json body; raises ValueError when malformed."""
    data = json.loads(body)
    if not isinstance(data, dict) or not isinstance(data.get("healthy"), bool):
        raise ValueError("no 'healthy' flag")
    raw_checks = data.get("checks") or []
    if not isinstance(raw_checks, list):
        raise ValueError("'checks' is not a list")
    checks = []
    for c in raw_checks:
        if not isinstance(c, dict):
            raise ValueError("a check is not an object")
        checks.append(
            {
                "name": str(c.get("name", "?")),
                "ok": bool(c.get("ok")),
                "status": str(c.get("status", "")),
                "counts": bool(c.get("counts", True)),
                # Nesting level in the tree, if diagd says (0: a root check).
                "depth": _depth(c.get("depth")),
            }
        )
    return {
        "state": "ok",
        "healthy": data["healthy"],
        "first_error": str(data.get("first_error") or ""),
        "checks": checks,
    }


def _depth(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return min(max(value, 0), 8)


def unavailable(url: str, reason: str) -> dict:
    return {"state": "unavailable", "url": url, "reason": reason}


class _QuietFactory(_HTTP11ClientFactory):
    # Twisted logs "Starting factory" for every connection: one line per page view.
    noisy = False


class DiagClient:
    """Fetches diagd's health; ``fetch()`` never errbacks."""

    def __init__(self, reactor, url: str = DEFAULT_URL, timeout: float = 4.0, agent=None):
        self.reactor = reactor
        self.url = url
        self.timeout = timeout
        if agent is None:
            pool = HTTPConnectionPool(reactor, persistent=False)
            pool._factory = _QuietFactory
            agent = Agent(reactor, connectTimeout=timeout, pool=pool)
        self.agent = agent

    def fetch(self) -> defer.Deferred:
        d = self.agent.request(
            b"GET", self.url.encode(), Headers({b"user-agent": [b"router7-statusd"]})
        )
        d.addCallback(self._body)
        # A diagd evaluation can hang on an unreachable target; the page must not.
        d.addTimeout(self.timeout, self.reactor)
        d.addCallback(parse)
        d.addCallback(lambda section: {**section, "url": self.url})
        d.addErrback(lambda f: unavailable(self.url, _reason(f.value, self.timeout)))
        return d

    @staticmethod
    def _body(response):
        d = readBody(response)
        if response.code != 200:

            def refuse(_):
                raise ValueError(f"HTTP status {response.code}")

            d.addBoth(refuse)
        return d


def _reason(e: BaseException, timeout: float) -> str:
    if isinstance(e, defer.TimeoutError | defer.CancelledError):
        return f"no answer within {timeout:g}s"
    if isinstance(e, json.JSONDecodeError):
        return "not JSON"
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]
