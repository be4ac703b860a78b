"""router7-diagd: evaluates the check tree on request and serves it on the LAN (:7733).

Files: ``<perm>/diagd/config.json`` (optional; see config.py), read at start and
on SIGUSR1. Reads ``<perm>/dhcp4/wire/lease.json`` and ``<perm>/dhcp6/wire/lease.json``.
The runtime keeps the HTTP listeners on the LAN addresses.
"""

from __future__ import annotations

import logging

from router7.diagd import checks, config
from router7.diagd.http import make_site
from router7.diagd.tree import DEFAULT_TIMEOUT, Evaluator, Report
from router7.runtime.service import Service
from router7.runtime.statefile import StateFileError

log = logging.getLogger(__name__)


class DiagdService(Service):
    name = "diagd"
    description = "Connectivity diagnostics: a check tree, /health.json and /metrics on :7733."

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument(
            "--target",
            action="append",
            metavar="HOST:PORT",
            help="TCP target to reach (repeatable; [v6]:port for IPv6 literals); "
            "overrides config.json's targets",
        )
        parser.add_argument(
            "--dns-server", help="resolver to query; none: the LAN interface's IPv4 address (dnsd)"
        )
        parser.add_argument(
            "--dns-name", help=f"name to ask the resolver for; none: {config.DEFAULT_DNS_NAME}"
        )
        parser.add_argument(
            "--no-ipv6", action="store_true", help="IPv6 checks are shown but do not count"
        )
        parser.add_argument(
            "--cache-seconds", type=float, default=2.0, help="reuse a report this long"
        )
        parser.add_argument(
            "--check-timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per check"
        )

    def start(self):
        self.config_path = self.perm / "diagd" / "config.json"
        self.config = config.Config()
        self._load_config()
        self.probes = checks.Probes(
            self.reactor, self.perm, self.args.uplink, self.args.lan, self.net
        )
        self.evaluator = Evaluator(
            lambda: checks.build(self.config, self.probes),
            self.reactor,
            cache_seconds=self.args.cache_seconds,
            timeout=self.args.check_timeout,
            on_report=self._log_change,
        )
        self._last_error: str | None = None

    def http_site(self):
        return make_site(self.evaluator, self.registry)

    def _load_config(self) -> None:
        try:
            self.config = config.load(self.config_path, self.args)
        except StateFileError as e:
            log.error("%s; keeping the previous configuration", e)

    def _log_change(self, report: Report) -> None:
        """Log transitions only: a scrape every few seconds must not flood the log."""
        if report.first_error != self._last_error:
            if report.healthy:
                log.info("healthy")
            else:
                log.warning("unhealthy: %s", report.first_error)
            self._last_error = report.first_error

    def reload(self):
        self._load_config()

    def stop(self):
        self.probes.dns_client.stop()


main = DiagdService.main

if __name__ == "__main__":
    main()
