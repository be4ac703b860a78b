"""router7-dnsd: the LAN's caching DNS forwarder with local names.

Wires the pure parts (local names, cache, upstream policy) to the reactor.
SIGUSR1 (from dhcp4d after a lease change, from netconfigd after an apply)
re-reads the config, the upstreams and the leases. Address changes (SLAAC, DAD,
netconfigd) arrive as netlink events: the runtime moves the listeners, and
the allowed source networks and the router's own names follow. A timer fires
at the next lease expiry only, to drop the expired name.
"""

from __future__ import annotations

import gc
import logging
import socket
from datetime import UTC, datetime

from router7.dnsd.cache import Cache
from router7.dnsd.forwarder import Forwarder
from router7.dnsd.local import LocalNames, read_leases
from router7.dnsd.metrics import Metrics
from router7.dnsd.server import DnsServer, SourcePolicy, dns_endpoints, lan_networks
from router7.dnsd.upstreams import UpstreamPolicy, configured_upstreams, read_config
from router7.netconfigd.config import InterfacesReader
from router7.runtime import ports
from router7.runtime.service import Service

log = logging.getLogger(__name__)


class DnsService(Service):
    name = "dnsd"
    description = "Caching DNS forwarder for the LAN, with the names of DHCP clients"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--port", type=int, default=ports.DNS, help="DNS port (UDP and TCP)")
        parser.add_argument(
            "--hostname",
            default=None,
            help="the router's own name (default: config, else the OS hostname)",
        )

    def start(self):
        self.metrics = Metrics(self.registry)
        self.policy = UpstreamPolicy()
        self.expiry = None
        # interfaces.json through netconfigd's schema, keeping the last good copy (issue 16)
        self.interfaces = InterfacesReader(self.perm, self.run_dir)
        self.config = read_config(self.perm)
        self.cache = Cache(self.reactor, self.config["cache_size"])
        self.forwarder = Forwarder(self.reactor, self.policy, self.metrics)
        self.server = DnsServer(
            self.reactor, None, self.cache, self.forwarder, self.metrics, SourcePolicy([])
        )
        for endpoint in dns_endpoints(self.reactor, self.server, self.args.port, self.args.lan):
            self.listeners.add(endpoint)
        self.reload()
        # Full garbage collections walk every live object and pause all queries; what
        # exists after start-up (modules, Twisted) lives forever, so never walk it.
        gc.freeze()

    def reload(self) -> None:
        """Re-read config, upstreams and leases, then follow address changes."""
        self.config = read_config(self.perm)
        self.cache.max_entries = self.config["cache_size"]
        upstreams = configured_upstreams(self.perm, self.config)
        if upstreams != self.policy.upstreams:
            log.info("upstreams: %s", ", ".join(map(str, upstreams)) or "none (answering SERVFAIL)")
        self.policy.set_upstreams(upstreams)
        self._refresh()

    def net_changed(self, changes) -> None:
        if any(c.kind == "address" for c in changes):
            self._refresh()

    def _refresh(self) -> None:
        self.server.sources = SourcePolicy(
            lan_networks(self.net.addresses(), self.args.uplink, self.config["allowed_networks"])
        )
        self.server.local = self._local_names()
        self.metrics.cache_entries.set(len(self.cache))

    def _local_names(self) -> LocalNames:
        name = self.args.hostname or self.config["hostname"] or socket.gethostname().split(".")[0]
        now = datetime.now(UTC)
        leases = read_leases(self.perm / "dhcp4d" / "leases.json")
        self._expire_at([lease.expiry for lease in leases if lease.expiry and lease.expiry > now])
        return LocalNames(
            name,
            self._router_addresses(),
            leases,
            now,
            domain=self.config["domain"],
            ttl=self.config["local_ttl"],
        )

    def _expire_at(self, expiries: list[datetime]) -> None:
        """Rebuild the local names when the next lease runs out (its name must go)."""
        if self.expiry is not None and self.expiry.active():
            self.expiry.cancel()
        self.expiry = None
        if expiries:
            delay = (min(expiries) - datetime.now(UTC)).total_seconds()
            self.expiry = self.reactor.callLater(max(delay, 0) + 1, self._refresh)

    def _router_addresses(self) -> list:
        """The router's name points at lan0: interfaces.json's address, else the kernel's."""
        lan = self.args.lan
        out = []
        configured = self.interfaces.read().by_name(lan)
        if configured is not None and configured.addr is not None:
            out.append(configured.addr.ip)
        for a in self.net.addresses(lan):
            ip = a.interface.ip
            if a.ifname == lan and not ip.is_link_local and ip not in out:
                if ip.version == 4 and any(x.version == 4 for x in out):
                    continue  # the configured address wins over others on the interface
                out.append(ip)
        return out

    def stop(self):
        if self.expiry is not None and self.expiry.active():
            self.expiry.cancel()
        self.forwarder.stop()


main = DnsService.main
