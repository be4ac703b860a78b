"""The driver's log: steps and commands, to stdout and test-artifacts/<scenario>/.

driver.log holds every step with its time; <machine>.log every command run on
that machine with its exit status, stdout and stderr.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path


class Logger:
    def __init__(self, out_dir: Path, echo: bool = True) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._main = (out_dir / "driver.log").open("a", buffering=1)
        self._per_machine: dict[str, object] = {}
        self._echo = echo
        self._depth = 0
        self._t0 = time.monotonic()

    def _stamp(self) -> str:
        return f"{time.monotonic() - self._t0:8.2f}"

    def log(self, msg: str, machine: str | None = None) -> None:
        who = f"{machine}: " if machine else ""
        for i, line in enumerate(msg.splitlines() or [""]):
            text = f"{self._stamp()} {'  ' * self._depth}{who if i == 0 else ''}{line}"
            self._main.write(text + "\n")
            if self._echo:
                print(text, file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def nested(self, msg: str, machine: str | None = None) -> Iterator[None]:
        self.log(msg, machine)
        start = time.monotonic()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        self.log(f"(finished: {msg}, in {time.monotonic() - start:.2f} seconds)", machine)

    @contextlib.contextmanager
    def subtest(self, name: str) -> Iterator[None]:
        with self.nested(f"subtest: {name}"):
            try:
                yield
            except Exception as e:
                self.log(f'Test "{name}" failed with error: "{e}"')
                raise

    def command(self, machine: str, command: str, status, out: str, err: str) -> None:
        f = self._per_machine.get(machine)
        if f is None:
            f = (self.out_dir / f"{machine}.log").open("a", buffering=1)
            self._per_machine[machine] = f
        f.write(f"[{self._stamp()}] $ {command}\n")
        if out:
            f.write(out if out.endswith("\n") else out + "\n")
        if err:
            f.writelines(f"stderr: {line}\n" for line in err.rstrip("\n").split("\n"))
        f.write(f"[exit {status}]\n")

    def close(self) -> None:
        for f in [self._main, *self._per_machine.values()]:
            f.close()
