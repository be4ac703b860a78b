"""A small synchronous QMP client.

Why not qemu.qmp from PyPI: its API is asyncio (the sync wrapper is marked
legacy), while the driver is plain blocking code that scenarios call line by
line; QMP itself is a greeting, `qmp_capabilities`, then one JSON object per
line with events interleaved, which fits in this file.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any


class QMPError(RuntimeError):
    """qemu answered a command with an error, or the monitor went away."""


class QMP:
    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self.events: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._sock.connect(path)
                break
            except OSError:
                self._sock.close()
                if time.monotonic() > deadline:
                    raise QMPError(f"no QMP socket at {path} after {timeout:.0f}s") from None
                time.sleep(0.1)
        self._sock.settimeout(timeout)
        self._file = self._sock.makefile("rb")
        greeting = self._read()
        if "QMP" not in greeting:
            raise QMPError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def _read(self) -> dict:
        line = self._file.readline()
        if not line:
            raise QMPError("QMP connection closed (qemu exited?)")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run a QMP command; return its "return" value, raise QMPError on "error"."""
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QMPError(f"{command}: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")

    def hmp(self, command_line: str) -> str:
        """A human-monitor command (`set_link uplink off`, `info network`)."""
        return self.execute("human-monitor-command", **{"command-line": command_line})

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass
