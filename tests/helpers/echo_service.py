"""A minimal router7 daemon for runtime tests: logs its signals to a file.

Run as ``python -m tests.helpers.echo_service --perm P --run-dir R --events FILE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from router7.runtime.service import EXIT_DONT_RESTART, Service


class EchoService(Service):
    name = "echo"
    description = "Test daemon: records SIGUSR1/SIGUSR2/stop in --events."
    http_port = 0  # the runtime's /metrics listener, off unless --http-port

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--events", required=True, help="file that receives one line per event")

    def _record(self, event: str) -> None:
        with open(self.args.events, "a") as f:
            f.write(event + "\n")

    def start(self):
        self._record("started")

    def reload(self):
        self._record("reload")

    def release(self):
        self._record("release")
        self.shutdown(EXIT_DONT_RESTART)

    def stop(self):
        self._record("stop")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[2]))
    EchoService.main()
