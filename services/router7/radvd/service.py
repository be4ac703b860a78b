"""router7-radvd: IPv6 router advertisements on lan0.

Wires the pure parts together: inputs.py reads the files, plan.py decides the
RA's content, schedule.py decides when, wire.py encodes, transport.py sends.
Signals: SIGUSR1 re-reads the files and lan0 and sends an RA at once; SIGTERM
sends a final RA with router lifetime 0 (RFC 4861 §6.2.5) and exits.
"""

from __future__ import annotations

import errno
import logging
import random

from twisted.internet import task

from router7.runtime.mgmt import ManagementListener, management_site
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
_FACTS_RETRY = 1.0


class Radvd(Service):
    """IPv6 router advertisements (SLAAC prefix, RDNSS, DNSSL) on the LAN interface."""

    name = "radvd"
    description = "IPv6 router advertisements on the LAN"

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--http-port", type=int, default=8068, help="port of /metrics on LAN addresses; 0: off"
        )
        parser.add_argument(
            "--route-poll",
            type=float,
            default=5.0,
            help="seconds between checks for the uplink's IPv6 default route",
        )

    def __init__(
        self,
        args,
        reactor,
        *,
        lan_facts=netlink.lan_facts,
        default_route=netlink.has_default_route,
        transport_factory=IcmpTransport,
        rng: random.Random | None = None,
    ):
        super().__init__(args, reactor)
        self._lan_facts = lan_facts
        self._default_route_fn = default_route
        self._transport_factory = transport_factory
        self.config = Config()
        self.lease = None
        self.extra: tuple = ()
        self.facts = None
        self.default_route = False
        self.transport = None
        self.planner = Planner()
        self._persisted: dict = {}
        self.last_advert = None
        self.scheduler = Scheduler(
            reactor, self._send, self.config.effective_min_interval, self.config.max_interval, rng
        )
        self._route_poll = None
        self._facts_retry = None
        self.http = None

    # --- lifecycle ----------------------------------------------------------

    def start(self):
        try:
            self.planner = Planner(inputs.read_memory(self.perm))
        except StateFileError as e:
            log.warning("ignoring %s", e)
        self._persisted = self.planner.memory()
        self._read_inputs()
        self.default_route = self._check_default_route()
        self._route_poll = task.LoopingCall(self._poll_default_route)
        self._route_poll.clock = self.reactor
        self._route_poll.start(self.args.route_poll, now=False)
        self._bring_up()
        port = getattr(self.args, "http_port", 0)
        if port:
            self.http = ManagementListener(
                self.reactor, management_site(), port, uplink=self.args.uplink
            )
            self.http.refresh()

    def reload(self) -> None:
        log.info("SIGUSR1: re-reading %s, %s and %s", inputs.LEASE, inputs.CONFIG, self.args.lan)
        self._read_inputs()
        self.default_route = self._check_default_route()
        self._bring_up()
        self.scheduler.kick()
        if self.http is not None:
            self.http.refresh()

    def stop(self):
        if self.transport is not None and self.facts is not None and self.last_advert is not None:
            advert = self.planner.plan(
                self.reactor.seconds(), self.lease, self.extra, self.config, self.facts, False
            )
            if advert is not None and self._transmit(advert.final(), None):
                log.info("sent the final RA (router lifetime 0)")
        self.scheduler.stop()
        if self._route_poll is not None and self._route_poll.running:
            self._route_poll.stop()
        if self._facts_retry is not None and self._facts_retry.active():
            self._facts_retry.cancel()
        if self.transport is not None:
            self.transport.close()
        self._persist_memory(force=True)
        if self.http is not None:
            self.http.stop()

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

    def _check_default_route(self) -> bool:
        try:
            return bool(self._default_route_fn(self.args.uplink))
        except Exception as e:  # netlink trouble must not stop the RAs
            log.warning("cannot check the default route on %s: %s", self.args.uplink, e)
            return self.default_route

    def _poll_default_route(self) -> None:
        now = self._check_default_route()
        if now != self.default_route:
            self.default_route = now
            log.info(
                "%s %s an IPv6 default route: router lifetime %s",
                self.args.uplink,
                "has" if now else "lost its",
                self.config.effective_router_lifetime if now else 0,
            )
            self.scheduler.kick()

    def _bring_up(self) -> None:
        """(Re)learn lan0 and open the socket; retry every second until lan0 is usable."""
        if self._facts_retry is not None and self._facts_retry.active():
            self._facts_retry.cancel()
        try:
            facts = self._lan_facts(self.args.lan)
        except (netlink.NoInterface, OSError) as e:
            if self.facts is not None:
                log.error("%s; stopping RAs until it is back", e)
            else:
                log.warning("%s; retrying", e)
            self._take_down()
            self._facts_retry = self.reactor.callLater(_FACTS_RETRY, self._bring_up)
            return
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
                self.reactor.callLater(0, self._bring_up)  # lan0 changed under us
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
