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
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry
from twisted.internet import defer, protocol
from twisted.logger import STDLibLogObserver, globalLogBeginner

from router7.runtime import notify, ports, sdnotify
from router7.runtime.listeners import ListenerPool
from router7.runtime.netlink import Change, NetlinkMonitor, NetState

if TYPE_CHECKING:
    from twisted.web import resource, server

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


class OnDemandSite(protocol.ServerFactory):
    """A management port whose site is built at its first connection.

    twisted.web costs each daemon about 4 MiB and 0.05 s of start-up
    (bench/memory.py), and most daemons' management ports (/metrics) are never
    asked; those whose own modules use twisted.web build the site just as late.
    """

    def __init__(self, build):
        self._build = build
        self.site = None

    def buildProtocol(self, addr):
        if self.site is None:
            self.site = self._build()
            self.site.doStart()
        return self.site.buildProtocol(addr)

    def stopFactory(self):
        if self.site is not None:
            self.site.doStop()


class Service:
    """Base class of a daemon. Subclasses set ``name`` and override the hooks.

    The runtime owns what every daemon shares: the process's metrics registry
    (``self.registry``), the kernel's links, addresses and routes kept current
    by netlink events (``self.net``), and the pool of LAN-only listeners
    (``self.listeners``) with the management HTTP site on ``--http-port``.
    """

    name = "service"
    description = ""
    uses_uplink = True
    uses_lan = True
    # The management HTTP port's default; None: ports.HTTP[name], if there is one.
    http_port: int | None = None

    def __init__(
        self,
        args: argparse.Namespace,
        reactor,
        *,
        registry: CollectorRegistry | None = None,
        net: NetState | None = None,
    ):
        self.args = args
        self.reactor = reactor
        self.perm = Path(args.perm)
        self.run_dir = Path(args.run_dir)
        self.exit_code = 0
        self.registry = registry if registry is not None else CollectorRegistry()
        # An injected view (tests) is the caller's to fill; otherwise netlink keeps ours.
        self._watch_netlink = net is None
        self.net = net if net is not None else NetState()
        self._monitor: NetlinkMonitor | None = None
        self._shutting_down = False
        self._ready = False
        self.listeners = ListenerPool(
            reactor, self.net.addresses, getattr(args, "uplink", "uplink0")
        )

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

    def http_root(self) -> resource.Resource | None:
        """The service's own pages on the management port (None: an index and /metrics)."""
        return None

    def http_site(self) -> server.Site:
        """What the management port serves; /metrics shows ``self.registry``. Anything
        but GET/HEAD needs the admin credential (router7.runtime.auth).

        Called at the port's first connection, not at start (see OnDemandSite)."""
        from router7.runtime.mgmt import management_site

        return management_site(self.http_root(), self.registry, perm=self.perm)

    def net_changed(self, changes: list[Change]) -> None:
        """Links, addresses or routes changed (``self.net`` is current already)."""

    # --- helpers -----------------------------------------------------------

    @property
    def instance(self) -> str:
        """The name of this process's pid file (one per service, or per uplink)."""
        return self.name

    def notify(self, service: str) -> bool:
        """Send SIGUSR1 to ``service`` of our run dir, if it runs."""
        return notify.notify(self.run_dir, service)

    def shutdown(self, exit_code: int = 0) -> None:
        self.exit_code = exit_code
        self._shutting_down = True
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
        cls.add_arguments(p)
        port = cls.http_port if cls.http_port is not None else ports.HTTP.get(cls.name)
        if port is not None:
            p.add_argument(
                "--http-port",
                type=int,
                default=port,
                help="management HTTP port (/metrics and the service's pages) on private "
                "(LAN) addresses; 0: off",
            )
            # The names each service had before, kept so old command lines still work.
            # A service's own flag of the same name (dnsd's DNS --port) wins.
            for alias in ("--metrics-port", "--port"):
                with contextlib.suppress(argparse.ArgumentError):
                    p.add_argument(
                        alias, dest="http_port", type=int, default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS,
                    )  # fmt: skip
        return p

    @classmethod
    def main(cls, argv: list[str] | None = None) -> None:
        args = cls.parser().parse_args(argv)
        setup_logging(args.log_level, cls.name)
        from twisted.internet import reactor

        sys.exit(cls(args, reactor, registry=REGISTRY).run())

    def run(self) -> int:
        """Run the reactor until shutdown; returns the exit code."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        notify.register(self.run_dir, self.instance)
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
            notify.unregister(self.run_dir, self.instance)
        return self.exit_code

    def _safe(self, hook) -> None:
        try:
            hook()
        except Exception:
            log.exception("%s failed", hook.__name__)

    def _reload(self) -> None:
        self._safe(self.listeners.refresh)  # a safety net; address events do this too
        self._safe(self.reload)

    def _net_changed(self, changes: list[Change]) -> None:
        if any(c.kind != "route" for c in changes):
            self._safe(self.listeners.refresh)
        if not self._ready:
            return  # start() reads self.net itself, once it runs
        try:
            self.net_changed(changes)
        except Exception:
            log.exception("handling netlink changes failed")

    def _started(self) -> None:
        if self._watch_netlink:
            try:
                self._monitor = NetlinkMonitor(self.reactor, self.net, self._net_changed)
                self._monitor.start()
            except OSError as e:
                log.error("start failed: netlink: %s", e)
                self.shutdown(1)
                return
        d = defer.maybeDeferred(self.start)

        def ready(_):
            if self._shutting_down:
                return  # e.g. netconfigd --once
            port = getattr(self.args, "http_port", 0)
            if port:
                self.listeners.tcp(port, OnDemandSite(self.http_site))
            self.listeners.refresh()
            self._ready = True
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
        if self._monitor is not None:
            self._monitor.stop()
        closed = self.listeners.stop()
        stopped = defer.maybeDeferred(self.stop).addErrback(
            lambda f: log.error("stop failed: %s", f.value)
        )
        return defer.gatherResults([closed, stopped], consumeErrors=True)
