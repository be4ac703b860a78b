"""The runtime every router7 daemon shares: flags, logging, signals, readiness.

A daemon is a subclass of Service. Its core logic lives elsewhere as a state
machine without sockets; the Service subclass wires that core to the reactor.
``Service.main`` is what a console script calls:

    class Dhcp4Client(Service):
        name = "dhcp4"
        ...

    main = Dhcp4Client.main
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from twisted.internet import defer
from twisted.logger import STDLibLogObserver, globalLogBeginner

from router7.runtime import notify, sdnotify
from router7.runtime.mgmt import ManagementListener, management_site

log = logging.getLogger(__name__)

# Exit code that tells the supervisor not to restart us (gokrazy's convention,
# kept so `systemctl`/the lab supervisor can honour a deliberate RELEASE-and-exit).
EXIT_DONT_RESTART = 125

_SYSLOG_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    """Prefix lines with <N> so journald records the level (sd-daemon(3))."""

    def format(self, record):
        return f"<{_SYSLOG_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def setup_logging(level: str, service: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):  # journald adds its own timestamps
        handler.setFormatter(_JournalFormatter(f"{service}: %(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Twisted's own log events go through the same handler.
    globalLogBeginner.beginLoggingTo([STDLibLogObserver(name="twisted")], redirectStandardIO=False)


class Service:
    """Base class of a daemon. Subclasses set ``name`` and override the hooks."""

    name = "service"
    description = ""
    uses_uplink = True
    uses_lan = True
    # Services without an HTTP page of their own set a port here: the runtime then
    # serves /metrics on it (LAN-only, --metrics-port, 0 turns it off).
    metrics_port: int | None = None

    def __init__(self, args: argparse.Namespace, reactor):
        self.args = args
        self.reactor = reactor
        self.perm = Path(args.perm)
        self.run_dir = Path(args.run_dir)
        self.exit_code = 0
        self._metrics: ManagementListener | None = None

    # --- hooks for subclasses ---------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the service's own flags."""

    def start(self):
        """Open sockets and start work; may return a Deferred. READY=1 follows it."""

    def reload(self) -> None:
        """SIGUSR1: inputs (state files, addresses) changed; re-read them."""

    def release(self) -> None:
        """SIGUSR2: give up what was leased and exit. Default: just stop."""
        self.shutdown(0)

    def stop(self):
        """Called once before the reactor stops (SIGTERM, SIGINT); may return a Deferred."""

    # --- helpers -----------------------------------------------------------

    def notify(self, service: str) -> bool:
        """Send SIGUSR1 to ``service`` of our run dir, if it runs."""
        return notify.notify(self.run_dir, service)

    def shutdown(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        if self.reactor.running:
            self.reactor.stop()

    # --- process plumbing --------------------------------------------------

    @classmethod
    def parser(cls) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(
            prog=f"router7-{cls.name}",
            description=cls.description or cls.__doc__,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        p.add_argument("--perm", default="/perm", help="directory of persistent state and config")
        p.add_argument(
            "--run-dir",
            default="/run/router7",
            help="directory of pid files; services notify peers of the same run dir",
        )
        if cls.uses_uplink:
            p.add_argument("--uplink", default="uplink0", help="the internet-facing interface")
        if cls.uses_lan:
            p.add_argument("--lan", default="lan0", help="the LAN-facing interface")
        p.add_argument(
            "--log-level",
            default="info",
            choices=["debug", "info", "warning", "error"],
            help="least severe log level shown",
        )
        if cls.metrics_port is not None:
            p.add_argument(
                "--metrics-port",
                type=int,
                default=cls.metrics_port,
                help="serve /metrics on this TCP port on private (LAN) addresses; 0: off",
            )
        cls.add_arguments(p)
        return p

    @classmethod
    def main(cls, argv: list[str] | None = None) -> None:
        args = cls.parser().parse_args(argv)
        setup_logging(args.log_level, cls.name)
        from twisted.internet import reactor

        sys.exit(cls(args, reactor).run())

    def run(self) -> int:
        """Run the reactor until shutdown; returns the exit code."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        notify.register(self.run_dir, self.name)
        try:
            self.reactor.callWhenRunning(self._started)
            self.reactor.addSystemEventTrigger("before", "shutdown", self._stopping)
            # Twisted handles SIGTERM/SIGINT (clean reactor stop); we add USR1/USR2.
            # Handlers only schedule work: they may interrupt any Python code.
            signal.signal(signal.SIGUSR1, lambda *_: self.reactor.callFromThread(self._reload))
            signal.signal(
                signal.SIGUSR2, lambda *_: self.reactor.callFromThread(self._safe, self.release)
            )
            self.reactor.run()
        finally:
            notify.unregister(self.run_dir, self.name)
        return self.exit_code

    def _safe(self, hook) -> None:
        try:
            hook()
        except Exception:
            log.exception("%s failed", hook.__name__)

    def _reload(self) -> None:
        if self._metrics is not None:
            self._metrics.refresh()  # addresses may have changed
        self._safe(self.reload)

    def _started(self) -> None:
        # Only for services that asked for it: others may serve a registry of their own.
        port = getattr(self.args, "metrics_port", 0) if self.metrics_port is not None else 0
        if port:
            uplink = getattr(self.args, "uplink", "uplink0")
            self._metrics = ManagementListener(self.reactor, management_site(), port, uplink=uplink)
            self._metrics.refresh()
        d = defer.maybeDeferred(self.start)

        def ready(_):
            sdnotify.sd_notify("READY=1")
            log.info("ready")

        def failed(f):
            log.error(
                "start failed: %s", f.getTraceback() if log.isEnabledFor(logging.DEBUG) else f.value
            )
            self.shutdown(1)

        d.addCallbacks(ready, failed)

    def _stopping(self):
        sdnotify.sd_notify("STOPPING=1")
        if self._metrics is not None:
            self._metrics.stop()
        return defer.maybeDeferred(self.stop).addErrback(
            lambda f: log.error("stop failed: %s", f.value)
        )
