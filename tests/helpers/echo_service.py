"""A minimal router7 daemon for runtime tests: logs its signals to a file.

Run as ``python -m tests.helpers.echo_service --perm P --run-dir R --events FILE``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from router7.runtime.mgmt import ManagementListener, management_site
from router7.runtime.service import EXIT_DONT_RESTART, Service


class EchoService(Service):
    name = "echo"
    description = "Test daemon: records SIGUSR1/SIGUSR2/stop in --events."

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--events", required=True, help="file that receives one line per event")
        parser.add_argument("--http-port", type=int, default=0, help="management port (0: none)")

    def _record(self, event: str) -> None:
        with open(self.args.events, "a") as f:
            f.write(event + "\n")

    def start(self):
        if self.args.http_port:
            self.http = ManagementListener(
                self.reactor, management_site(), self.args.http_port, uplink=self.args.uplink
            )
            self.http.refresh()
        self._record("started")

    def reload(self):
        if self.args.http_port:
            self.http.refresh()
        self._record("reload")

    def release(self):
        self._record("release")
        self.shutdown(EXIT_DONT_RESTART)

    def stop(self):
        self._record("stop")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parents[2]))
    EchoService.main()
