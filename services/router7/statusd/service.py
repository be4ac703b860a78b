"""router7-statusd: the LAN-side status page (:80) with /status.json and /metrics.

Reads (never writes) ``<perm>/dhcp4/wire/lease.json``, ``<perm>/dhcp6/wire/lease.json``,
``<perm>/dhcp4d/leases.json`` (and ``dhcp4d/oui/oui.csv`` for vendor names), the pid
files in --run-dir, and diagd's ``/health.json``. The runtime keeps the HTTP
listeners on the LAN addresses (netlink events, SIGUSR1).
"""

from __future__ import annotations

import argparse

from router7.runtime import ports
from router7.runtime.service import Service

# statusd.diag and statusd.http (twisted.web) are imported when the site is built, at the
# first connection: the page costs memory only once someone has looked at it.
DEFAULT_DIAGD_URL = f"http://127.0.0.1:{ports.HTTP['diagd']}/health.json"  # = diag.DEFAULT_URL


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
        parser.add_argument("--diagd-url", default=DEFAULT_DIAGD_URL, help="diagd's health.json")
        parser.add_argument(
            "--diagd-timeout", type=float, default=4.0, help="seconds to wait for diagd"
        )
        parser.add_argument(
            "--metrics",
            type=_metrics_port,
            action="append",
            default=[],
            metavar="SERVICE=PORT",
            help="a service's HTTP port for the links, if moved from router7.runtime.ports "
            "(repeatable; 0 removes the link), e.g. dnsd=9053 for router7-dnsd --http-port 9053",
        )

    def http_site(self):
        from router7.statusd.diag import DiagClient
        from router7.statusd.http import Metrics, Status, links_factory, make_site

        service_ports = {**ports.HTTP, **dict(self.args.metrics)}
        service_ports = {name: port for name, port in service_ports.items() if port}
        status = Status(
            self.perm,
            self.run_dir,
            DiagClient(self.reactor, self.args.diagd_url, self.args.diagd_timeout),
            self.reactor,
            Metrics(self.registry),
            links=links_factory(self.args.http_port, metrics_ports=service_ports),
        )
        return make_site(status, self.registry)


main = StatusdService.main

if __name__ == "__main__":
    main()
