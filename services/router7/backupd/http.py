"""LAN-only HTTP (:8077): ``GET /backup.tar.gz`` streams a backup of perm.

A backup holds private keys (captured's SSH host key, WireGuard keys): it needs
the admin credential (router7.runtime.auth, ``protect_reads``), e.g.
``curl -u admin:$(cat /perm/admin/token) http://192.168.42.1:8077/backup.tar.gz``.

The archive is pulled from a generator as the client reads it (an IPullProducer),
so a slow client or a big perm costs neither memory nor a blocked reactor beyond
one chunk at a time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter
from twisted.internet.interfaces import IPullProducer
from twisted.web import resource, server
from zope.interface import implementer

from router7.backupd.archive import backup_stream
from router7.runtime import auth

log = logging.getLogger(__name__)


class Metrics:
    def __init__(self, registry: CollectorRegistry):
        self.backups = Counter(
            "backupd_backups", "backups served, by outcome", ["outcome"], registry=registry
        )
        self.bytes = Counter("backupd_bytes", "compressed bytes sent", registry=registry)


@implementer(IPullProducer)
class _BackupProducer:
    def __init__(self, request, chunks, metrics: Metrics | None):
        self.request = request
        self.chunks = chunks
        self.metrics = metrics
        self.done = False

    def resumeProducing(self):
        if self.done:
            return
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self._finish("complete")
            return
        except Exception:
            log.exception("backup failed")
            self._finish("error")
            # Abort: a truncated gzip stream is detectably broken, a finished one is not.
            channel = getattr(self.request, "channel", None)
            if channel is not None and channel.transport is not None:
                channel.transport.abortConnection()
            return
        if self.metrics is not None:
            self.metrics.bytes.inc(len(chunk))
        self.request.write(chunk)

    def stopProducing(self):
        if not self.done:
            self.done = True
            self.chunks.close()
            if self.metrics is not None:
                self.metrics.backups.labels("aborted").inc()

    def _finish(self, outcome: str):
        self.done = True
        self.request.unregisterProducer()
        if outcome == "complete":
            self.request.finish()
        if self.metrics is not None:
            self.metrics.backups.labels(outcome).inc()


class BackupResource(resource.Resource):
    isLeaf = True

    def __init__(self, perm: Path, metrics: Metrics | None = None):
        super().__init__()
        self.perm = Path(perm)
        self.metrics = metrics

    def render_GET(self, request):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        request.setHeader(b"content-type", b"application/gzip")
        request.setHeader(
            b"content-disposition",
            f'attachment; filename="router7-backup-{stamp}.tar.gz"'.encode(),
        )
        request.setHeader(b"cache-control", b"no-store")
        producer = _BackupProducer(request, backup_stream(self.perm), self.metrics)
        request.registerProducer(producer, False)
        return server.NOT_DONE_YET


class Root(resource.Resource):
    def __init__(self, perm: Path, metrics: Metrics | None = None):
        super().__init__()
        backup = BackupResource(perm, metrics)
        self.putChild(b"backup.tar.gz", auth.Guarded(backup, perm, protect_reads=True))

    def getChildWithDefault(self, path, request):
        if path == b"":
            return self
        return super().getChildWithDefault(path, request)

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return (
            b'<!DOCTYPE html><html><head><meta charset="utf-8">'
            b'<meta name="viewport" content="width=device-width, initial-scale=1">'
            b'<title>router7 backup</title></head><body style="font-family:system-ui">'
            b'<h1>router7 backup</h1><p><a href="/backup.tar.gz">Download a backup of /perm'
            b"</a> (tar.gz; the browser asks for user <code>admin</code> and the admin credential "
            b"from <code>/perm/admin/token</code>). Restore it with <code>router7-restore</code>."
            b"</p></body></html>\n"
        )
