"""router7-dnsd: the LAN's caching DNS forwarder with local names.

Wires the pure parts (local names, cache, upstream policy) to the reactor.
SIGUSR1 (from dhcp4d after a lease change, from netconfigd after an address
change) re-reads the leases, the upstreams and the addresses and moves the
listeners. Addresses and lease expiry are also rechecked every 30 seconds,
because SLAAC and DAD change addresses without telling anyone.
"""

from __future__ import annotations

import gc
import logging
import socket
from datetime import UTC, datetime

from twisted.internet.task import LoopingCall

from router7.dnsd.cache import Cache
from router7.dnsd.forwarder import Forwarder
from router7.dnsd.local import LocalNames, read_leases
from router7.dnsd.metrics import Metrics
from router7.dnsd.server import (
    DnsListeners,
    DnsServer,
    IfAddr,
    SourcePolicy,
    bind_addresses,
    kernel_ifaddrs,
    lan_networks,
)
from router7.dnsd.upstreams import UpstreamPolicy, configured_upstreams, read_config
from router7.netconfigd.config import read_interfaces
from router7.runtime.mgmt import InterfaceAddress, ManagementListener, management_site
from router7.runtime.service import Service
from router7.runtime.statefile import StateFileError

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 30
RETRY_LISTEN = 2


class DnsService(Service):
    name = "dnsd"
    description = "Caching DNS forwarder for the LAN, with the names of DHCP clients"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--port", type=int, default=53, help="DNS port (UDP and TCP)")
        parser.add_argument(
            "--http-port", type=int, default=8053, help="LAN-only HTTP port for /metrics"
        )
        parser.add_argument(
            "--hostname",
            default=None,
            help="the router's own name (default: config, else the OS hostname)",
        )

    def start(self):
        self.metrics = Metrics()
        self.policy = UpstreamPolicy()
        self.ifaddrs: list[IfAddr] = []
        self.retry = None
        self.config = read_config(self.perm)
        self.cache = Cache(self.reactor, self.config["cache_size"])
        self.forwarder = Forwarder(self.reactor, self.policy, self.metrics)
        self.server = DnsServer(
            self.reactor, None, self.cache, self.forwarder, self.metrics, SourcePolicy([])
        )
        self.listeners = DnsListeners(
            self.reactor,
            self.server,
            self.args.port,
            lambda: bind_addresses(self.ifaddrs, self.args.lan, self.args.uplink),
        )
        self.mgmt = ManagementListener(
            self.reactor,
            management_site(registry=self.metrics.registry),
            self.args.http_port,
            uplink=self.args.uplink,
            addresses=lambda: [InterfaceAddress(a.ifname, a.interface.ip) for a in self.ifaddrs],
        )
        self.reload()
        # Full garbage collections walk every live object and pause all queries; what
        # exists after start-up (modules, Twisted) lives forever, so never walk it.
        gc.freeze()
        self.periodic = LoopingCall(self._refresh)
        self.periodic.clock = self.reactor
        self.periodic.start(REFRESH_INTERVAL, now=False)

    def reload(self) -> None:
        """Re-read config, upstreams and leases, then follow address changes."""
        self.config = read_config(self.perm)
        self.cache.max_entries = self.config["cache_size"]
        upstreams = configured_upstreams(self.perm, self.config)
        if upstreams != self.policy.upstreams:
            log.info("upstreams: %s", ", ".join(map(str, upstreams)) or "none (answering SERVFAIL)")
        self.policy.set_upstreams(upstreams)
        self._refresh()

    def _refresh(self) -> None:
        try:
            self.ifaddrs = kernel_ifaddrs()
        except Exception as e:  # netlink trouble must not take DNS down; keep the old view
            log.error("reading addresses: %s", e)
        self.server.sources = SourcePolicy(
            lan_networks(self.ifaddrs, self.args.uplink, self.config["allowed_networks"])
        )
        self.server.local = self._local_names()
        self._listen()
        self.metrics.cache_entries.set(len(self.cache))

    def _listen(self) -> None:
        self.listeners.refresh()
        self.mgmt.refresh()
        # A fresh IPv6 address cannot be bound until DAD is done (about a second):
        # retry soon rather than at the next periodic refresh.
        if self.listeners.missing and not (self.retry and self.retry.active()):
            self.retry = self.reactor.callLater(RETRY_LISTEN, self._listen)

    def _local_names(self) -> LocalNames:
        name = self.args.hostname or self.config["hostname"] or socket.gethostname().split(".")[0]
        return LocalNames(
            name,
            self._router_addresses(),
            read_leases(self.perm / "dhcp4d" / "leases.json"),
            datetime.now(UTC),
            domain=self.config["domain"],
            ttl=self.config["local_ttl"],
        )

    def _router_addresses(self) -> list:
        """The router's name points at lan0: interfaces.json's address, else the kernel's."""
        lan = self.args.lan
        out = []
        try:
            configured = read_interfaces(self.perm).by_name(lan)
        except StateFileError as e:
            log.warning("ignoring %s", e)
        else:
            if configured is not None and configured.addr is not None:
                out.append(configured.addr.ip)
        for a in self.ifaddrs:
            ip = a.interface.ip
            if a.ifname == lan and not ip.is_link_local and ip not in out:
                if ip.version == 4 and any(x.version == 4 for x in out):
                    continue  # the configured address wins over others on the interface
                out.append(ip)
        return out

    def stop(self):
        if self.periodic.running:
            self.periodic.stop()
        if self.retry and self.retry.active():
            self.retry.cancel()
        self.forwarder.stop()
        self.mgmt.stop()
        return self.listeners.stop()


main = DnsService.main
