"""updated's LAN-only HTTP (:8078). Reads are open; every upload and the trial need
the admin credential (router7.runtime.auth.Guarded).

    GET  /status.json             running slot and version, boot default, last update
    PUT  /update/manifest.json    the image's manifest.json: starts an upload
    PUT  /update/vmlinuz          the kernel, checked against the manifest (size, sha256)
    PUT  /update/initrd           the initrd, likewise
    POST /update/trial?deadline=S install the slot, kexec into it; it must commit
                                  within S seconds of its boot (default 600)

Errors are ``{"error": "..."}`` with 400 (bad input), 401/403 (credential),
404, 409 (not now), 507 (boot partition full).
"""

from __future__ import annotations

import json
import logging

from twisted.internet import threads
from twisted.web import resource, server

from router7.runtime import auth
from router7.runtime.mgmt import Pages
from router7.updated.trial import DEFAULT_DEADLINE
from router7.updated.updater import UpdateError

log = logging.getLogger(__name__)


def _json(request, code: int, obj) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    return json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"


def _finish(request, code: int, obj) -> None:
    if not request.finished and not getattr(request, "_disconnected", False):
        request.write(_json(request, code, obj))
        request.finish()


def _failed(request, failure) -> None:
    if failure.check(UpdateError):
        e = failure.value
        _finish(request, e.code, {"error": e.message})
    else:
        log.error("update request failed: %s", failure.getTraceback())
        _finish(request, 500, {"error": failure.getErrorMessage()})


class StatusJson(resource.Resource):
    isLeaf = True

    def __init__(self, status):
        super().__init__()
        self.status = status  # () -> dict

    def render_GET(self, request):
        return _json(request, 200, self.status())


class Index(resource.Resource):
    isLeaf = True

    def __init__(self, status):
        super().__init__()
        self.status = status

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        s = self.status()
        last = s.get("last_update") or {}
        lines = [
            "router7-updated",
            f"running slot {s.get('running_slot')}, version {s.get('version')}",
            f"boot default {s.get('default_slot')}, state {s.get('state')}",
            f"last update: {last.get('result', 'none')} {last.get('reason', '')}".rstrip(),
            "status.json: this as JSON; router7-safe-update does updates",
        ]
        return ("\n".join(lines) + "\n").encode()


class UpdateResource(resource.Resource):
    """/update/<step>: the steps of an upload and the trial."""

    isLeaf = True

    def __init__(self, updater, start_trial):
        super().__init__()
        self.updater = updater
        self.start_trial = start_trial  # entry -> Deferred (fires once kexec is loaded)

    def _step(self, request) -> str:
        return b"/".join(request.postpath).decode("utf-8", "replace")

    def render_PUT(self, request):
        step = self._step(request)
        request.content.seek(0)
        if step == "manifest.json":
            d = threads.deferToThread(lambda: self.updater.begin(request.content.read(1 << 20)))
        else:
            d = threads.deferToThread(self.updater.receive, step, request.content)
        d.addCallbacks(lambda r: _finish(request, 200, r), lambda f: _failed(request, f))
        return server.NOT_DONE_YET

    def render_POST(self, request):
        if self._step(request) != "trial":
            return _json(request, 404, {"error": "POST /update/trial starts the trial"})
        raw = request.args.get(b"deadline", [b""])[0]
        try:
            deadline = float(raw) if raw else DEFAULT_DEADLINE
        except ValueError:
            return _json(request, 400, {"error": f"deadline: {raw!r} is not a number"})
        d = threads.deferToThread(self.updater.prepare_trial, deadline)
        d.addCallback(self.start_trial)
        d.addCallbacks(lambda r: _finish(request, 202, r), lambda f: _failed(request, f))
        return server.NOT_DONE_YET


def root(perm, updater, status, start_trial) -> resource.Resource:
    return Pages(
        Index(status),
        {
            b"status.json": StatusJson(status),
            b"update": auth.Guarded(UpdateResource(updater, start_trial), perm),
        },
    )
