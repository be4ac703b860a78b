"""router7-statusd: the LAN-side status page (:80) with /status.json and /metrics.

Reads (never writes) ``<perm>/dhcp4/wire/lease.json``, ``<perm>/dhcp6/wire/lease.json``,
``<perm>/dhcp4d/leases.json`` (and ``dhcp4d/oui/oui.csv`` for vendor names), the pid
files in --run-dir, and diagd's ``/health.json``. SIGUSR1 (netconfigd changed
addresses) refreshes the listeners; so does a timer (--rebind-seconds).
"""

from __future__ import annotations

import argparse

from prometheus_client import CollectorRegistry
from twisted.internet import task

from router7.runtime.mgmt import ManagementListener
from router7.runtime.service import Service
from router7.statusd.diag import DEFAULT_URL, DiagClient
from router7.statusd.http import Metrics, Status, links_factory, make_site
from router7.statusd.links import METRICS_PORTS


def _metrics_port(text: str) -> tuple[str, int]:
    name, sep, port = text.partition("=")
    if not sep or not name or not port.isdigit():
        raise argparse.ArgumentTypeError(f"want SERVICE=PORT, not {text!r}")
    return name, int(port)


class StatusdService(Service):
    name = "statusd"
    description = "The router's status page for the LAN (:80): services, leases, diagnostics."

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--port", type=int, default=80, help="LAN-only HTTP port")
        parser.add_argument("--diagd-url", default=DEFAULT_URL, help="diagd's health.json")
        parser.add_argument(
            "--diagd-timeout", type=float, default=4.0, help="seconds to wait for diagd"
        )
        parser.add_argument(
            "--metrics",
            type=_metrics_port,
            action="append",
            default=[],
            metavar="SERVICE=PORT",
            help="a service's /metrics port for the links (repeatable; 0 removes the link), "
            "e.g. dnsd=9053 when router7-dnsd runs with --http-port 9053",
        )
        parser.add_argument("--capture-port", type=int, default=5080, help="captured's HTTP port")
        parser.add_argument(
            "--capture-ssh-port", type=int, default=5022, help="captured's SSH port"
        )
        parser.add_argument("--backup-port", type=int, default=8077, help="backupd's HTTP port")
        parser.add_argument(
            "--rebind-seconds",
            type=float,
            default=30.0,
            help="also re-check the LAN addresses to listen on this often (0: only on SIGUSR1)",
        )

    def start(self):
        registry = CollectorRegistry()
        ports = {**METRICS_PORTS, **dict(self.args.metrics)}
        ports = {name: port for name, port in ports.items() if port}
        diagd_port = ports.get("diagd", 7733)
        links = links_factory(
            self.args.port,
            metrics_ports=ports,
            capture_port=self.args.capture_port,
            capture_ssh_port=self.args.capture_ssh_port,
            backup_port=self.args.backup_port,
            diagd_port=diagd_port,
        )
        status = Status(
            self.perm,
            self.run_dir,
            DiagClient(self.reactor, self.args.diagd_url, self.args.diagd_timeout),
            self.reactor,
            Metrics(registry),
            links=links,
        )
        self.http = ManagementListener(
            self.reactor, make_site(status, registry), self.args.port, uplink=self.args.uplink
        )
        self.http.refresh()
        # A safety net for a missed SIGUSR1 (e.g. lan0 addressed before we registered):
        # the page should appear on the LAN without a restart.
        self.rebind = task.LoopingCall(self.http.refresh)
        self.rebind.clock = self.reactor
        if self.args.rebind_seconds > 0:
            self.rebind.start(self.args.rebind_seconds, now=False)

    def reload(self):
        self.http.refresh()

    def stop(self):
        if self.rebind.running:
            self.rebind.stop()
        self.http.stop()


main = StatusdService.main

if __name__ == "__main__":
    main()
