"""A small HTTP client of router7-updated, diagd and backupd (standard library only),
shared by router7-safe-update and the VM scenarios."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from router7.runtime import ports

CHUNK = 256 * 1024


class ClientError(Exception):
    """What went wrong, worded for the owner."""


class Unreachable(ClientError):
    pass


class WrongCredentials(ClientError):
    pass


class Refused(ClientError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Router:
    def __init__(self, host: str, token: str | None, timeout: float = 30.0):
        self.host = host
        self.token = token
        self.timeout = timeout

    def _conn(self, port: int, timeout: float | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, port, timeout=timeout or self.timeout)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method, port, path, body=None, length=None, progress=None, timeout=None):
        """(status, body bytes). ``body``: bytes or a binary file of ``length`` bytes."""
        what = f"http://{self.host}:{port}{path}"
        try:
            conn = self._conn(port, timeout)
            headers = self._headers()
            if body is None:
                conn.request(method, path, headers=headers)
            else:
                size = len(body) if isinstance(body, bytes) else length
                conn.putrequest(method, path)
                for k, v in {**headers, "Content-Length": str(size)}.items():
                    conn.putheader(k, v)
                conn.endheaders()
                if isinstance(body, bytes):
                    conn.send(body)
                else:
                    sent = 0
                    while block := body.read(CHUNK):
                        conn.send(block)
                        sent += len(block)
                        if progress:
                            progress(sent, size)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            raise Unreachable(f"{what}: {e}") from None
        if resp.status in (401, 403):
            raise WrongCredentials(
                f"{what}: {resp.status}: {data.decode(errors='replace').strip()} "
                "(check --token-file / ROUTER7_ADMIN_TOKEN: /perm/admin/token on the router)"
            )
        return resp.status, data

    def json(self, method, port, path, **kw) -> dict:
        status, data = self.request(method, port, path, **kw)
        try:
            obj = json.loads(data)
        except ValueError:
            obj = {"error": data.decode(errors="replace").strip()}
        if status >= 300:
            raise Refused(status, f"{path}: {status}: {obj.get('error', obj)}")
        return obj

    # --- updated ------------------------------------------------------------------

    def status(self, timeout: float | None = None) -> dict:
        return self.json("GET", ports.HTTP["updated"], "/status.json", timeout=timeout)

    def upload(self, image: Path, progress: Callable[[str, int, int], None] | None = None):
        port = ports.HTTP["updated"]
        manifest = (image / "manifest.json").read_bytes()
        self.json("PUT", port, "/update/manifest.json", body=manifest)
        from router7.image.variant import initrd_parts

        for name in ("vmlinuz", "initrd"):
            paths = (initrd_parts(image) if name == "initrd" else None) or [image / name]
            with _Concat(paths) as f:
                self.json(
                    "PUT", port, f"/update/{name}", body=f, length=f.size,
                    progress=(lambda s, t, n=name: progress(n, s, t)) if progress else None,
                    timeout=max(self.timeout, 600),
                )  # fmt: skip

    def trial(self, deadline: float) -> dict:
        q = urllib.parse.urlencode({"deadline": f"{deadline:g}"})
        return self.json("POST", ports.HTTP["updated"], f"/update/trial?{q}")

    def wait_outcome(self, entry_id: str, timeout: float, poll: float = 1.0) -> dict:
        """The history entry ``entry_id`` once settled (committed, rolled back, failed)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                last = self.status(timeout=3).get("last_update") or {}
            except (Unreachable, Refused):
                last = {}
            if last.get("id") == entry_id and last.get("result") != "trial":
                return last
            time.sleep(poll)
        raise ClientError(f"no outcome of update {entry_id} within {timeout:.0f} s")

    # --- diagd and backupd ----------------------------------------------------------

    def health(self) -> dict:
        return self.json("GET", ports.HTTP["diagd"], "/health.json")

    def backup(self, out: Path) -> int:
        """Download /perm as backup.tar.gz (with the credential); returns its size."""
        status, data = self.request(
            "GET", ports.HTTP["backupd"], "/backup.tar.gz", timeout=max(self.timeout, 300)
        )
        if status != 200:
            raise Refused(status, f"backup: {status}: {data[:200].decode(errors='replace')}")
        out.write_bytes(data)
        return len(data)


class _Concat:
    """Files read one after the other as one (a ``--parts`` variant's initrd)."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.size = sum(p.stat().st_size for p in paths)
        self._files = []

    def __enter__(self):
        self._files = [open(p, "rb") for p in self.paths]  # noqa: SIM115
        return self

    def __exit__(self, *exc):
        for f in self._files:
            f.close()

    def read(self, n: int) -> bytes:
        while self._files:
            block = self._files[0].read(n)
            if block:
                return block
            self._files.pop(0).close()
        return b""


def bar(name: str, sent: int, total: int, stream=sys.stderr) -> None:
    width = 30
    done = int(width * sent / total) if total else width
    stream.write(f"\r  {name:8} [{'#' * done}{'.' * (width - done)}] "
                 f"{sent / 1e6:6.1f}/{total / 1e6:.1f} MB")  # fmt: skip
    if sent >= total:
        stream.write("\n")
    stream.flush()


def resolve(host: str) -> str:
    return socket.gethostbyname(host)


def main(argv: list[str] | None = None) -> None:
    """``python3 -m router7.updated.client``: one step at a time, for tests and by hand."""
    import argparse

    p = argparse.ArgumentParser(prog="python3 -m router7.updated.client")
    p.add_argument("--router", default="192.168.42.1")
    p.add_argument("--token-file", type=Path)
    p.add_argument("--token", help="the token itself (tests: a wrong one)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status")
    up = sub.add_parser("upload", help="manifest.json, vmlinuz, initrd of a directory")
    up.add_argument("image", type=Path)
    put = sub.add_parser("put", help="one step: manifest.json, vmlinuz or initrd")
    put.add_argument("step")
    put.add_argument("file", type=Path)
    tr = sub.add_parser("trial")
    tr.add_argument("--deadline", type=float, default=600)
    args = p.parse_args(argv)
    token = args.token or (args.token_file.read_text().strip() if args.token_file else None)
    r = Router(args.router, token)
    try:
        if args.cmd == "status":
            out = r.status()
        elif args.cmd == "upload":
            r.upload(args.image)
            out = {"uploaded": str(args.image)}
        elif args.cmd == "put":
            out = r.json(
                "PUT", ports.HTTP["updated"], f"/update/{args.step}",
                body=args.file.read_bytes(),
            )  # fmt: skip
        else:
            out = r.trial(args.deadline)
    except ClientError as e:
        sys.exit(f"error: {e}")
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
