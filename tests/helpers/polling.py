"""Polling for integration tests: wait until a predicate holds, or fail with log tails."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

TAIL_LINES = 40


def wait_for(
    predicate: Callable[[], object],
    what: str = "",
    timeout: float = 20.0,
    *,
    interval: float = 0.1,
    logs: Iterable[Path] = (),
) -> object:
    """Return predicate()'s first truthy value, polling every `interval` seconds.

    After `timeout` seconds raise AssertionError naming `what`, followed by the last
    lines of each of `logs` that exists. `logs` is only iterated on timeout, so a lazy
    iterable (a generator) sees files created while waiting.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or predicate}" + _tails(logs)
            )
        time.sleep(interval)


def _tails(logs: Iterable[Path]) -> str:
    return "".join(
        f"\n--- {log} ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-TAIL_LINES:])
        for log in logs
        if log is not None and log.exists()
    )


def log_files(directory: Path) -> Iterator[Path]:
    """The *.log files of `directory`, sorted, listed lazily (when iterated, e.g. on timeout)."""
    yield from sorted(directory.glob("*.log"))
