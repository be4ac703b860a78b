"""Finding and signalling sibling services.

router7 found a consumer by scanning /proc for its binary's path and signalled
the first match, which cannot tell two routers on one host apart. Here each
service registers a pid file in its run directory; a producer signals the
service of the *same* run directory. The pid file also records the process
start time, so a recycled pid never receives a signal meant for a dead service.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
from pathlib import Path

from router7.runtime.statefile import write_json_atomic

log = logging.getLogger(__name__)


def _start_time(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def pid_file(run_dir: str | os.PathLike, service: str) -> Path:
    return Path(run_dir) / f"{service}.pid"


def register(run_dir: str | os.PathLike, service: str) -> Path:
    """Announce this process as ``service`` of ``run_dir``; returns the pid file's path."""
    path = pid_file(run_dir, service)
    pid = os.getpid()
    write_json_atomic(path, {"pid": pid, "start_time": _start_time(pid)})
    return path


def unregister(run_dir: str | os.PathLike, service: str) -> None:
    """Remove the pid file if it is still ours (a restarted successor may own it)."""
    path = pid_file(run_dir, service)
    with contextlib.suppress(OSError, ValueError, KeyError):
        if json.loads(path.read_text())["pid"] == os.getpid():
            path.unlink()


def running_pid(run_dir: str | os.PathLike, service: str) -> int | None:
    """The pid of the running ``service`` of ``run_dir``, or None."""
    try:
        info = json.loads(pid_file(run_dir, service).read_text())
        pid, started = int(info["pid"]), info["start_time"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _start_time(pid) != started:
        return None  # the process is gone, and the pid may belong to someone else now
    return pid


def notify(run_dir: str | os.PathLike, service: str, sig: int = signal.SIGUSR1) -> bool:
    """Tell ``service`` (of the same run dir) to re-read its inputs. False if not running."""
    pid = running_pid(run_dir, service)
    if pid is None:
        log.debug("notify %s: not running", service)
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    log.debug("notify %s: sent %s to pid %d", service, signal.Signals(sig).name, pid)
    return True
