"""router7-radvd: IPv6 router advertisements on lan0.

Wires the pure parts together: inputs.py reads the files, plan.py decides the
RA's content, schedule.py decides when, wire.py encodes, transport.py sends.
lan0 and the uplink's IPv6 default route come from the runtime's netlink view
and its events. Signals: SIGUSR1 re-reads the files and sends an RA at once;
SIGTERM sends a final RA with router lifetime 0 (RFC 4861 §6.2.5) and exits.
"""

from __future__ import annotations

import errno
import logging
import random

from router7.runtime.service import Service
from router7.runtime.statefile import StateFileError

from . import inputs, metrics, netlink, wire
from .plan import Config, Planner, describe
from .schedule import Scheduler
from .transport import IcmpTransport

log = logging.getLogger(__name__)

# Persist the memory of advertised prefixes when a host expiry moved this much
# (not after every RA: /perm is flash).
_MEMORY_SLACK = 600.0


class Radvd(Service):
    """IPv6 router advertisements (SLAAC prefix, RDNSS, DNSSL) on the LAN interface."""

    name = "radvd"
    description = "IPv6 router advertisements on the LAN"

    def __init__(
        self,
        args,
        reactor,
        *,
        transport_factory=IcmpTransport,
        rng: random.Random | None = None,
        **kw,
    ):
        super().__init__(args, reactor, **kw)
        self._transport_factory = transport_factory
        self.config = Config()
        self.lease = None
        self.extra: tuple = ()
        self.facts = None
        self._waiting = False  # for lan0; logged once
        self.default_route = False
        self.transport = None
        self.planner = Planner()
        self._persisted: dict = {}
        self.last_advert = None
        self.scheduler = Scheduler(
            reactor, self._send, self.config.effective_min_interval, self.config.max_interval, rng
        )

    # --- lifecycle ----------------------------------------------------------

    def start(self):
        try:
            self.planner = Planner(inputs.read_memory(self.perm))
        except StateFileError as e:
            log.warning("ignoring %s", e)
        self._persisted = self.planner.memory()
        self._read_inputs()
        self.default_route = netlink.has_default_route(self.net, self.args.uplink)
        self._bring_up()

    def reload(self) -> None:
        log.info("SIGUSR1: re-reading %s and %s", inputs.LEASE, inputs.CONFIG)
        self._read_inputs()
        self._bring_up()
        self.scheduler.kick()

    def net_changed(self, changes) -> None:
        """Events instead of polls: the default route (router lifetime) and lan0's facts."""
        now = netlink.has_default_route(self.net, self.args.uplink)
        if now != self.default_route:
            self.default_route = now
            log.info(
                "%s %s an IPv6 default route: router lifetime %s",
                self.args.uplink,
                "has" if now else "lost its",
                self.config.effective_router_lifetime if now else 0,
            )
            self.scheduler.kick()
        if any(c.kind != "route" for c in changes):
            facts = self.facts
            self._bring_up()
            if self.facts is not None and self.facts != facts:
                self.scheduler.kick()

    def stop(self):
        if self.transport is not None and self.facts is not None and self.last_advert is not None:
            advert = self.planner.plan(
                self.reactor.seconds(), self.lease, self.extra, self.config, self.facts, False
            )
            if advert is not None and self._transmit(advert.final(), None):
                log.info("sent the final RA (router lifetime 0)")
        self.scheduler.stop()
        if self.transport is not None:
            self.transport.close()
        self._persist_memory(force=True)

    # --- inputs -------------------------------------------------------------

    def _read_inputs(self) -> None:
        """Re-read every file; a broken one is logged and its last good content kept."""
        try:
            self.lease = inputs.read_lease(self.perm)
        except StateFileError as e:
            log.error("keeping the previous lease: %s", e)
        try:
            config = inputs.read_config(self.perm)
        except StateFileError as e:
            log.error("keeping the previous config: %s", e)
        else:
            if config != self.config:
                self.config = config
                self.scheduler.min_interval = config.effective_min_interval
                self.scheduler.max_interval = config.max_interval
        try:
            self.extra = inputs.read_extra_prefixes(self.perm)
        except StateFileError as e:
            log.error("keeping the previous extra prefixes: %s", e)

    def _bring_up(self) -> None:
        """(Re)learn lan0 and open the socket; netlink events call again until lan0 is usable."""
        try:
            facts = netlink.lan_facts(self.net, self.args.lan)
        except netlink.NoInterface as e:
            if self.facts is not None:
                log.error("%s; stopping RAs until it is back", e)
            elif not self._waiting:
                log.warning("%s; waiting for it", e)
                self._waiting = True
            self._take_down()
            return
        self._waiting = False
        if self.transport is not None and self.transport.ifindex != facts.ifindex:
            self._take_down()
        self.facts = facts
        if self.transport is None:
            self.transport = self._transport_factory(
                self.reactor, facts.ifname, facts.ifindex, self._on_packet
            )
            self.transport.open()
            log.info("advertising on %s from %s (%s)", facts.ifname, facts.link_local, facts.mac)
        if not self.scheduler.running:
            self.scheduler.start()

    def _take_down(self) -> None:
        self.scheduler.stop()
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self.facts = None

    # --- packets ------------------------------------------------------------

    def _on_packet(self, data: bytes, source: str, hop_limit: int | None) -> None:
        metrics.RS_RECEIVED.inc()
        try:
            rs = wire.decode_rs(data, source, hop_limit)
        except Exception as e:  # MalformedPacket, or anything a hostile packet provokes
            metrics.RS_DROPPED.labels("malformed").inc()
            log.debug("dropped a router solicitation from %s: %s", source, e)
            return
        if not self.scheduler.solicited(rs.source):
            metrics.RS_DROPPED.labels("rate_limited").inc()

    def _send(self, destination) -> None:
        """Scheduler callback: plan and send one RA (None = to all nodes)."""
        if self.facts is None or self.transport is None:
            return
        advert = self.planner.plan(
            self.reactor.seconds(),
            self.lease,
            self.extra,
            self.config,
            self.facts,
            self.default_route,
        )
        if advert is None:
            log.debug("nothing to advertise (no prefix, no default route)")
            return
        self._transmit(advert, destination)
        self._persist_memory()

    def _transmit(self, advert, destination) -> bool:
        dst = destination if destination is not None else wire.ALL_NODES
        try:
            self.transport.send(wire.encode_ra(advert), dst, self.facts.link_local)
        except OSError as e:
            metrics.SEND_ERRORS.inc()
            log.warning("sending an RA to %s failed: %s", dst, e)
            if e.errno in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.ENXIO, errno.EINVAL):
                self.reactor.callLater(0, self._bring_up)  # lan0 changed under us (events follow)
            return False
        metrics.RAS_SENT.labels("multicast" if destination is None else "unicast").inc()
        metrics.record_advert(advert)
        if self.last_advert is None or _gist(advert) != _gist(self.last_advert):
            log.info("advertising %s", describe(advert))
        log.debug("RA to %s: %s", dst, describe(advert))
        self.last_advert = advert
        return True

    def _persist_memory(self, force: bool = False) -> None:
        memory = self.planner.memory()
        old = self._persisted
        changed = set(memory) != set(old) or any(
            memory[p] - old[p] >= _MEMORY_SLACK for p in memory
        )
        if not (changed or force and memory != old):
            return
        try:
            inputs.write_memory(self.perm, memory)
        except OSError as e:
            log.warning("cannot save %s: %s", inputs.MEMORY, e)
            return
        self._persisted = memory


def _gist(advert):
    """What a change worth an info log line is: prefixes, their state, router lifetime."""
    return advert.router_lifetime, {(p.prefix, p.stale) for p in advert.prefixes}


main = Radvd.main
