"""router7-failoverd: probes every uplink and decides which one carries the traffic.

Why a daemon of its own: probing is a steady few packets a second per uplink
with timers, while netconfigd applies configuration only when something
changes; keeping them apart keeps netconfigd a plain "inputs -> kernel" applier
and failoverd a small state machine (health.py) with I/O at its edge. With one
uplink it probes nothing and only writes a state naming it.

* reads: ``interfaces.json`` (uplinks, priorities, the ``failover`` object),
  each uplink's DHCPv4 lease (address, gateway), carrier from netlink;
* writes: ``<perm>/failover/state.json`` (active uplink, since, why), then
  SIGUSR1 to netconfigd, which points the default route at the active uplink;
* kernel: per-uplink routing tables and rules (routing.py), and after a switch
  the conntrack entries NATed to the previous uplink (once the default route
  has moved, so no packet re-creates them through the old path).
"""

from __future__ import annotations

import json
import logging

from twisted.web import resource

from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp6 import lease as dhcp6_lease
from router7.failoverd import state as statefile
from router7.failoverd.health import Failover, Transition
from router7.failoverd.metrics import Metrics
from router7.failoverd.probe import EchoSocket, Prober
from router7.failoverd.routing import PolicyRouting, UplinkRoute, flush_conntrack
from router7.netconfigd.config import Interfaces, read_interfaces
from router7.runtime.mgmt import Pages
from router7.runtime.service import Service
from router7.runtime.statefile import StateFileError

log = logging.getLogger(__name__)


class StatePage(resource.Resource):
    isLeaf = True

    def __init__(self, service: Failoverd):
        super().__init__()
        self.service = service

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        return (json.dumps(self.service.state_json(), indent=2) + "\n").encode()


class Failoverd(Service):
    name = "failoverd"
    description = "Probes the uplinks and picks the one that carries the default route."
    uses_lan = False

    def start(self):
        self.metrics = Metrics(self.registry)
        self.routing = PolicyRouting()
        self.machine: Failover | None = None
        self.probers: dict[str, Prober] = {}
        self.sockets: dict[str, EchoSocket] = {}
        self.routes: dict[str, UplinkRoute] = {}
        self.pending_flush: list[str] = []  # addresses of uplinks traffic moved away from
        self.config = self._read_config() or Interfaces()
        self._build()

    def stop(self):
        self._teardown()

    def reload(self):
        config = self._read_config()
        if (
            config is not None
            and self._priorities(config) != self._priorities(self.config)
            or (config is not None and config.failover != self.config.failover)
        ):
            self.config = config
            self._teardown()
            self._build()
            return
        self._leases()

    def net_changed(self, changes):
        if self.machine is None:
            return
        now = self.reactor.seconds()
        for name in self.machine.uplinks:
            link = self.net.link(name)
            carrier = link is not None and link.up and link.has_carrier
            self._transition(self.machine.carrier_changed(name, carrier, now))
        self._flush_if_moved()
        if any(
            self._gateway6(name) != getattr(self.routes.get(name), "gateway6", None)
            for name in self.machine.uplinks
        ):
            self._leases()  # an uplink's IPv6 router appeared or changed: its table follows

    def http_root(self):
        return Pages(StatePage(self), {b"state.json": StatePage(self)})

    # --- building -------------------------------------------------------------

    def _read_config(self) -> Interfaces | None:
        try:
            return read_interfaces(self.perm)
        except StateFileError as e:
            log.error("%s; keeping the last good configuration", e)
            return None

    def _priorities(self, config: Interfaces) -> dict[str, int]:
        return config.uplink_priorities(self.args.uplink)

    def _build(self) -> None:
        cfg = self.config.failover
        now = self.reactor.seconds()
        priorities = self._priorities(self.config)
        self.machine = Failover.create(priorities, now, cfg.down_after, cfg.up_after)
        for name in priorities:
            link = self.net.link(name)
            self.machine.carrier_changed(
                name, link is not None and link.up and link.has_carrier, now
            )
        # Re-select after the carrier check; the first choice is not a switch.
        self.machine.active = self.machine.best()
        self._leases()
        if len(priorities) > 1:
            for name in priorities:
                self._start_prober(name)
        log.info("uplinks %s, active %s", priorities, self.machine.active)
        self._publish(None)

    def _start_prober(self, name: str) -> None:
        try:
            sock = EchoSocket(self.reactor, name, lambda src, seq, n=name: self._reply(n, src, seq))
        except OSError as e:
            log.error("%s: cannot open a probe socket (%s); it counts as down", name, e)
            sock = None
        if sock is not None:
            self.sockets[name] = sock
            route = self.routes.get(name)
            self._bind(name, route)
        prober = Prober(
            self.reactor,
            self.config.failover.interval_ms / 1000,
            send=(sock.send if sock is not None else _cannot_send),
            destinations=lambda n=name: self._destinations(n),
            on_round=lambda ok, detail, n=name: self._round(n, ok, detail),
        )
        self.probers[name] = prober
        prober.start()

    def _teardown(self) -> None:
        for p in self.probers.values():
            p.stop()
        for s in self.sockets.values():
            s.close()
        self.probers, self.sockets = {}, {}

    def _leases(self) -> None:
        """Re-read every uplink's lease: addresses and gateways for probes and tables."""
        routes = {}
        for name in self.machine.uplinks if self.machine else ():
            address = gateway = None
            try:
                lease = dhcp4_lease.read(dhcp4_lease.lease_path(self.perm, name))
                address, gateway = lease.address.ip, lease.router
            except StateFileError as e:
                if e.reason != "does not exist":
                    log.warning("%s", e)
            prefixes6: tuple = ()
            try:
                lease6 = dhcp6_lease.read(dhcp6_lease.lease_path(self.perm, name))
                prefixes6 = tuple(h.network for h in lease6.prefixes)
            except StateFileError as e:
                if e.reason != "does not exist":
                    log.warning("%s", e)
            routes[name] = UplinkRoute(name, address, gateway, prefixes6, self._gateway6(name))
        self.routes = routes
        for name, route in routes.items():
            self._bind(name, route)
        errors = self.routing.apply(list(routes.values())) if len(routes) > 1 else []
        for err in errors:
            log.error("policy routing: %s", err)

    def _gateway6(self, name: str) -> str | None:
        """The IPv6 router the uplink's RAs announce (the kernel's default route)."""
        for r in self.net.default_routes(6, name):
            if r.gateway:
                return r.gateway
        return None

    def _bind(self, name: str, route: UplinkRoute | None) -> None:
        sock = self.sockets.get(name)
        if sock is None:
            return
        try:
            sock.bind_source(str(route.address) if route and route.address else None)
        except OSError as e:
            log.warning("%s: cannot bind the probe socket to %s: %s", name, route.address, e)

    def _destinations(self, name: str) -> tuple[str | None, list[str]]:
        route = self.routes.get(name)
        if route is None or route.address is None:
            return None, []
        gateway = str(route.gateway) if route.gateway else None
        targets = [str(t) for t in self.config.failover.targets if t.version == 4]
        return gateway, targets

    # --- events -----------------------------------------------------------------

    def _reply(self, name: str, src: str, seq: int) -> None:
        prober = self.probers.get(name)
        if prober is not None:
            prober.replied(src, seq)

    def _round(self, name: str, ok: bool, detail: str) -> None:
        self.metrics.rounds.labels(name, "ok" if ok else "lost").inc()
        u = self.machine.uplinks[name]
        was = u.up
        t = self.machine.probe_round(name, ok, self.reactor.seconds(), detail)
        if t is not None:
            self._transition(t)
        elif u.up != was:
            log.info("%s is %s: %s", name, "up" if u.up else "down", u.reason)
            self._publish(None)

    def _transition(self, t: Transition | None) -> None:
        if t is None:
            return
        log.warning("active uplink %s -> %s: %s", t.previous, t.active, t.reason)
        self.metrics.transitions.labels(t.previous or "", t.active or "").inc()
        previous = self.routes.get(t.previous) if t.previous else None
        if previous is not None and previous.address is not None:
            self.pending_flush.append(str(previous.address))
        self._publish(t)
        self._flush_if_moved()

    def _publish(self, t: Transition | None) -> None:
        m = self.machine
        for name, u in m.uplinks.items():
            self.metrics.active.labels(name).set(1 if name == m.active else 0)
            self.metrics.healthy.labels(name).set(1 if u.up else 0)
        try:
            statefile.write(self.perm, m)
        except OSError as e:
            log.error("cannot write %s: %s", statefile.state_path(self.perm), e)
        self.notify("netconfigd")
        for service in ("dnsd", "radvd", "statusd", "diagd"):
            self.notify(service)

    def _flush_if_moved(self) -> None:
        """Flush once the main default route leaves through the active uplink."""
        if not self.pending_flush or self.machine is None:
            return
        if not self.net.default_routes(4, self.machine.active):
            return
        addresses, self.pending_flush = self.pending_flush, []
        for address in dict.fromkeys(addresses):
            try:
                n = flush_conntrack(address)
            except Exception as e:  # noqa: BLE001
                log.error("conntrack flush of %s: %s", address, e)
                continue
            self.metrics.flushed.inc(n)
            log.info("flushed %d connections NATed to %s", n, address)

    def state_json(self) -> dict:
        return statefile.to_json(self.machine) if self.machine else {}


def _cannot_send(dest: str, seq: int) -> None:
    raise OSError("no probe socket")


main = Failoverd.main

if __name__ == "__main__":
    main()
