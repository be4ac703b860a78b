"""Build progress: each stage named with its elapsed time, on stderr."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager


class Progress:
    def __init__(self, out=None):
        self.out = out or sys.stderr
        self.start = time.monotonic()
        self.stages: list[tuple[str, float]] = []

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {text}", file=self.out, flush=True)

    @contextmanager
    def stage(self, name: str):
        t0 = time.monotonic()
        self.say(f"{name} ...")
        try:
            yield
        except BaseException:
            self.say(f"{name}: FAILED after {time.monotonic() - t0:.1f}s")
            raise
        took = time.monotonic() - t0
        self.stages.append((name, took))
        self.say(f"{name}: done in {took:.1f}s")
