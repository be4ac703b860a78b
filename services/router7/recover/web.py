"""HTTP on the laptop: image files and the backup (twisted.web.static.File:
streaming, ranges), the plan, the boot scripts, and the router's progress posts."""

from __future__ import annotations

import json
from collections.abc import Callable

from twisted.web import pages, resource, static

from router7.recover.progress import BadReport, Report, parse_report
from router7.recover.served import Served


class _Text(resource.Resource):
    isLeaf = True

    def __init__(self, make: Callable[[], str], content_type: str):
        super().__init__()
        self.make, self.content_type = make, content_type

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", self.content_type.encode())
        request.setHeader(b"cache-control", b"no-store")
        return self.make().encode()


class _Progress(resource.Resource):
    isLeaf = True

    def __init__(self, on_report: Callable[[Report], None]):
        super().__init__()
        self.on_report = on_report

    def render_POST(self, request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        try:
            report = parse_report(request.content.read(64 * 1024))
        except BadReport as e:
            request.setResponseCode(400)
            return f"bad report: {e}\n".encode()
        self.on_report(report)
        return b"ok\n"


class Root(resource.Resource):
    def __init__(self, served: Served, on_report: Callable[[Report], None]):
        super().__init__()
        self.served = served
        self.putChild(b"plan", _Text(lambda: json.dumps(served.plan()), "application/json"))
        self.putChild(b"boot.ipxe", _Text(served.ipxe_script, "text/plain"))
        self.putChild(b"progress", _Progress(on_report))

    def getChild(self, path: bytes, request):
        p = self.served.http_file(path.decode("utf-8", "replace"))
        if p is None:
            return pages.notFound("Not found", "not served by router7-recover")
        f = static.File(str(p), defaultType="application/octet-stream")
        f.isLeaf = True
        return f

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        return b"router7-recover: /plan /boot.ipxe /vmlinuz /initrd /disk.img /progress\n"
