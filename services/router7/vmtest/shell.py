"""The test-shell protocol: run one command in the guest's root shell, get
(exit status, stdout, stderr) back, whatever bytes the command prints.

The guest side is a plain shell reading lines from the virtio port
(pkgs/systemd/router7-testshell.service). Each request is ONE line: the
command travels base64-encoded (no quoting can break it), runs under
`bash -c "set -euo pipefail; ..."` (NixOS semantics), optionally under
`timeout N`; its stdout comes back base64 on one line, then a line with a
unique marker, the exit status and stderr (base64). Anything before a reply
(a console message, the tail of an abandoned command) is skipped, because
only our marker ends a reply. No bash-only syntax on the guest side, so a
busybox shell serves too.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import secrets
import select
import socket
import time

ERR_FILE = "/run/router7-testshell.err"
RC_FILE = "/run/router7-testshell.rc"


class ShellTimeout(TimeoutError):
    """No reply from the test shell in time."""


class ShellClosed(ConnectionError):
    """The test shell's socket closed (qemu exited)."""


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    stdout: str
    stderr: str


def new_marker() -> str:
    return "R7TS-" + secrets.token_hex(8)


def request(
    command: str,
    marker: str,
    timeout: int | None = None,
    err_file: str = ERR_FILE,
    rc_file: str = RC_FILE,
) -> bytes:
    """The line that runs `command` in the guest and replies under `marker`."""
    script = base64.b64encode(f"set -euo pipefail; {command}".encode()).decode()
    limit = f"timeout {int(timeout)} " if timeout else ""
    return (
        f'( {limit}bash -c "$(echo {script} | base64 -d)" </dev/null 2>{err_file}; '
        f"echo $? >{rc_file} ) | base64 -w0; "
        f'echo; echo "{marker} $(cat {rc_file}) $(base64 -w0 <{err_file})"\n'
    ).encode()


def ping(marker: str) -> bytes:
    """A request that only answers: used to wait for the shell to come up."""
    return f'echo; echo "{marker} 0 "\n'.encode()


def parse(buffer: bytes, marker: str) -> tuple[Reply, bytes] | None:
    """The reply to `marker` in `buffer` and what follows it, or None if incomplete."""
    m = re.search(rb"(?:^|\n)" + re.escape(marker.encode()) + rb" (-?\d+) ?([^\n]*)\n", buffer)
    if not m:
        return None
    before = buffer[: m.start()].rstrip(b"\r").split(b"\n")
    stdout_b64 = before[-1].strip() if before else b""
    return (
        Reply(int(m.group(1)), _b64(stdout_b64), _b64(m.group(2).strip())),
        buffer[m.end() :],
    )


def _b64(data: bytes) -> str:
    try:
        return base64.b64decode(data, validate=False).decode(errors="replace")
    except (binascii.Error, ValueError):
        return data.decode(errors="replace")


class TestShell:
    """A connection to the guest's test shell through qemu's unix socket."""

    __test__ = False  # not a pytest class

    def __init__(self, path: str, log=None) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._log = log or (lambda _msg: None)

    def _connect(self, deadline: float) -> socket.socket:
        while self._sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.path)
                self._sock = s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise ShellTimeout(f"no test-shell socket at {self.path}") from None
                time.sleep(0.2)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def wait_ready(self, timeout: float) -> float:
        """Wait until the guest's shell answers; return how long it took."""
        start = time.monotonic()
        deadline = start + timeout
        marker = new_marker()
        while True:
            sock = self._connect(deadline)
            sock.sendall(ping(marker))
            try:
                self._read_reply(marker, min(deadline, time.monotonic() + 5))
                return time.monotonic() - start
            except ShellTimeout:
                if time.monotonic() >= deadline:
                    raise ShellTimeout(
                        f"the guest's test shell did not answer within {timeout:.0f}s "
                        "(is router7-testshell.service in the image? see the serial console log)"
                    ) from None

    def run(self, command: str, timeout: int | None = None) -> Reply:
        """Run `command`; wait for its reply (guest-side `timeout` plus a margin)."""
        marker = new_marker()
        sock = self._connect(time.monotonic() + 10)
        sock.sendall(request(command, marker, timeout))
        wait = None if timeout is None else timeout + 30
        deadline = None if wait is None else time.monotonic() + wait
        return self._read_reply(marker, deadline)

    def send_raw(self, line: str) -> None:
        """Send a line without waiting (poweroff, reboot: no reply will come)."""
        sock = self._connect(time.monotonic() + 10)
        sock.sendall(line.encode() + b"\n")

    def _read_reply(self, marker: str, deadline: float | None) -> Reply:
        assert self._sock is not None
        while True:
            found = parse(self._buffer, marker)
            if found:
                reply, self._buffer = found
                return reply
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise ShellTimeout(f"no reply from the test shell (marker {marker})")
            ready, _, _ = select.select([self._sock], [], [], wait)
            if not ready:
                continue
            chunk = self._sock.recv(65536)
            if not chunk:
                self.close()
                raise ShellClosed("the test shell's socket closed (did the VM stop?)")
            self._buffer += chunk
            # Keep memory bounded when a command floods output before our marker.
            if len(self._buffer) > 64 << 20:
                self._buffer = self._buffer[-(32 << 20) :]
