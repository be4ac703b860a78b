"""Writing backups: contents, exclusions, determinism, streaming."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

from prometheus_client import CollectorRegistry

from router7.backupd.archive import CHUNK, backup_stream, walk
from router7.backupd.http import Root
from router7.runtime import auth
from router7.runtime.mgmt import management_site
from tests.helpers import web


def make_perm(root):
    (root / "dhcp4/wire").mkdir(parents=True)
    (root / "dhcp4/wire/lease.json").write_text('{"address": "192.0.2.23/25"}\n')
    (root / "dhcp4/wire/ack").write_bytes(bytes(range(256)))
    (root / "interfaces.json").write_text("{}\n")
    (root / "empty").mkdir()
    (root / "cache").mkdir()
    (root / "cache/.nobackup").write_text("")
    (root / "cache/big").write_bytes(b"x" * 1000)
    (root / "srv").mkdir()
    (root / "srv/www").write_text("skip")
    (root / "a/nobackup").mkdir(parents=True)
    (root / "a/nobackup/f").write_text("skip")
    (root / "a/kept").write_text("kept")
    os.symlink("/etc/passwd", root / "link")
    os.mkfifo(root / "fifo")
    os.chmod(root / "interfaces.json", 0o600)
    return root


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        return {m.name: m for m in tf.getmembers()}


def test_contents_order_and_exclusions(tmp_path):
    perm = make_perm(tmp_path / "perm")
    assert [e.name for e in walk(perm)] == [
        "a",
        "a/kept",
        "dhcp4",
        "dhcp4/wire",
        "dhcp4/wire/ack",
        "dhcp4/wire/lease.json",
        "empty",
        "interfaces.json",
    ]
    data = b"".join(backup_stream(perm))
    got = members(data)
    assert list(got) == [e.name for e in walk(perm)]
    assert got["dhcp4"].isdir() and got["interfaces.json"].isreg()
    assert got["interfaces.json"].mode == 0o600
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        assert tf.extractfile("dhcp4/wire/ack").read() == bytes(range(256))


def test_deterministic_bytes_and_gzip_header(tmp_path):
    perm = make_perm(tmp_path / "perm")
    first = b"".join(backup_stream(perm))
    assert first == b"".join(backup_stream(perm))
    assert first[:2] == b"\x1f\x8b" and first[4:8] == bytes(4)  # gzip, no time stamp
    assert gzip.decompress(first).endswith(bytes(1024))


def test_streams_in_chunks(tmp_path):
    perm = tmp_path / "perm"
    perm.mkdir()
    (perm / "random").write_bytes(os.urandom(5 * CHUNK))  # incompressible
    chunks = list(backup_stream(perm))
    assert len(chunks) >= 4
    assert max(len(c) for c in chunks) < 3 * CHUNK
    assert members(b"".join(chunks))["random"].size == 5 * CHUNK


def get(root, path: bytes, client: str, headers=()):
    return web.get(root, path, client, headers)


def test_http_streams_backup_to_lan_clients_only(tmp_path):
    perm = make_perm(tmp_path / "perm")
    root = Root(perm)
    # Without the admin credential a LAN host gets nothing (the backup holds private keys).
    request, body = get(root, b"/backup.tar.gz", "192.168.42.10")
    assert request.responseCode == 401 and not body.startswith(b"\x1f\x8b")
    token, _ = auth.load_or_create(perm)
    bad = [(b"authorization", b"Bearer wrong")]
    request, body = get(root, b"/backup.tar.gz", "192.168.42.10", bad)
    assert request.responseCode == 401
    request, body = get(
        root, b"/backup.tar.gz", "192.168.42.10", [(b"authorization", f"Bearer {token}".encode())]
    )
    assert request.finished
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/gzip"]
    assert body == b"".join(backup_stream(perm))
    served = management_site(Root(perm), CollectorRegistry()).resource
    request, body = get(
        served, b"/backup.tar.gz", "203.0.113.10", [(b"authorization", f"Bearer {token}".encode())]
    )
    assert request.responseCode == 403 and b"backup" not in body


def test_client_going_away_stops_the_stream(tmp_path):
    from prometheus_client import CollectorRegistry

    from router7.backupd.http import Metrics, _BackupProducer

    perm = tmp_path / "perm"
    perm.mkdir()
    (perm / "random").write_bytes(os.urandom(5 * CHUNK))
    chunks = backup_stream(perm)

    class Request:
        written: list[bytes] = []

        def write(self, data):
            self.written.append(data)

    registry = CollectorRegistry()
    producer = _BackupProducer(Request(), chunks, Metrics(registry))
    producer.resumeProducing()
    producer.stopProducing()
    producer.resumeProducing()  # a late call after the disconnect writes nothing
    assert len(Request.written) == 1
    assert chunks.gi_frame is None  # the generator was closed (its open file too)
    assert registry.get_sample_value("backupd_backups_total", {"outcome": "aborted"}) == 1
    assert registry.get_sample_value("backupd_bytes_total") == len(Request.written[0])
