"""Process bookkeeping for lab peers: pid files, liveness, termination.

A pid file holds "<pid> <starttime>" (starttime from /proc/<pid>/stat) so a
recycled pid is never mistaken for, or killed as, a lab peer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

# Popen objects of peers this Python process started: polling them reaps the
# child, otherwise a stopped peer would linger as a zombie that looks alive.
_children: dict[int, subprocess.Popen] = {}


def track(proc: subprocess.Popen) -> None:
    _children[proc.pid] = proc


def starttime(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parens: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def alive(pid: int, start: int | None = None) -> bool:
    """True if `pid` runs (not a zombie) and, if given, started at `start`."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]
        return False
    st = starttime(pid)
    return st is not None and (start is None or st == start)


def write_pidfile(path: Path, pid: int) -> None:
    path.write_text(f"{pid} {starttime(pid) or 0}\n")


def read_pidfile(path: Path) -> tuple[int, int | None] | None:
    try:
        parts = path.read_text().split()
    except OSError:
        return None
    if not parts or not parts[0].isdigit():
        return None
    start = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() and parts[1] != "0" else None
    return int(parts[0]), start


def pidfile_alive(path: Path) -> int | None:
    """The pid recorded in `path` if that very process still runs."""
    rec = read_pidfile(path)
    if rec and alive(*rec):
        return rec[0]
    return None


def terminate(pids: list[int], grace: float = 3.0, group: bool = False) -> None:
    """SIGTERM `pids` (their process groups if `group`), SIGKILL what survives."""

    def send(pid: int, sig: int) -> None:
        try:
            if group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    starts = {pid: starttime(pid) for pid in pids}
    pending = [p for p in pids if starts[p] is not None]
    for pid in pending:
        send(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pending and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = [p for p in pending if alive(p, starts[p])]
    for pid in pending:
        send(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while pending and time.monotonic() < deadline:
        time.sleep(0.02)
        pending = [p for p in pending if alive(p, starts[p])]


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"(empty log {path})"
