"""The DHCPv6 client as a pure state machine (RFC 8415 client side, IA_PD + IA_NA).

No sockets, no wall clock and no metrics: datagrams come in through
``datagram_received``; everything the core does goes out to a ``Listener`` (the
service, its edge): ``send(Transmit)``, ``lease_changed(lease)``,
``state_changed(state)``, ``received(message)`` and ``dropped(reason, detail)``, the
same shape as router7.dhcp4.client's. Time comes from an ``IReactorTime`` (a
``task.Clock`` in tests) and an injected RNG.

    INIT ─ stored lease still valid ─────────────────────────> REBIND
      └──> SOLICIT ─ Advertise ─> REQUEST ─ Reply ─> BOUND ─ T1 ─> RENEW ─ T2 ─> REBIND
              ^  └── Reply (Rapid Commit) ───────────> BOUND          │              │
              └──── NoBinding, Request failed, valid lifetime over ───┴──────────────┘

The lease file is never deleted when a lease runs out (connectivity first: the
last prefix keeps the LAN configured until a new one arrives); only RELEASE does.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from ipaddress import IPv6Address

from router7.dhcp6 import wire
from router7.dhcp6.lease import Held, Lease, PreviousPrefix, prune_previous, to_datetime
from router7.dhcp6.wire import IA, Binding, DecodeError, Message

log = logging.getLogger(__name__)

# RFC 8415 section 7.6, in seconds.
SOL_MAX_DELAY = 1
SOL_TIMEOUT = 1
SOL_MAX_RT = 3600
REQ_TIMEOUT = 1
REQ_MAX_RT = 30
REQ_MAX_RC = 10
REN_TIMEOUT = 10
REN_MAX_RT = 600
REB_TIMEOUT = 10
REB_MAX_RT = 600
REL_TIMEOUT = 1
REL_MAX_RC = 4

# When the server leaves T1/T2 to us (0), RFC 8415 section 21.4 suggests 0.5 and 0.8
# times the shortest preferred lifetime. The floor keeps a lease with a zero
# preferred lifetime from turning into a renew loop.
T1_FACTOR, T2_FACTOR, MIN_DERIVED_T1 = 0.5, 0.8, 10
# Pause before soliciting again after a failed Request, doubled per failure.
MAX_HOLDOFF = 300


class State(Enum):
    INIT = "init"
    SOLICIT = "solicit"
    REQUEST = "request"
    BOUND = "bound"
    RENEW = "renew"
    REBIND = "rebind"
    RELEASE = "release"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ClientConfig:
    duid: bytes
    iaid_na: int
    iaid_pd: int = 1
    pd_only: bool = False
    rapid_commit: bool = False
    sol_max_rt: float = SOL_MAX_RT


@dataclass
class _Exchange:
    """One message exchange with its RFC 8415 section 15 retransmission state."""

    msg_type: int
    tid: int
    irt: float
    mrt: float
    mrc: int
    deadline: float | None  # absolute reactor time (MRD)
    unicast: IPv6Address | None
    on_exhausted: Callable[[], None]
    started: float | None = None
    count: int = 0
    rt: float = 0.0


@dataclass(frozen=True)
class Transmit:
    """One message to send: to ``unicast``, or (None) to All_DHCP_Relay_Agents_and_Servers."""

    msg_type: int
    payload: bytes
    unicast: IPv6Address | None = None


class Listener:
    """What the core tells its edge. The defaults do nothing (and sending succeeds)."""

    def send(self, tx: Transmit) -> bool:
        """Send ``tx``; False if the socket refused (the core then tries multicast)."""
        return True

    def lease_changed(self, lease: Lease) -> None: ...

    def state_changed(self, state: State) -> None: ...

    def received(self, msg: Message) -> None: ...

    def dropped(self, reason: str, detail: str) -> None: ...


class Dhcp6Machine:
    def __init__(
        self,
        config: ClientConfig,
        clock,
        listener: Listener,
        *,
        rng: random.Random | None = None,
        lease: Lease | None = None,
    ):
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.listener = listener
        self.lease = lease
        self.state = State.INIT
        self.sol_max_rt = config.sol_max_rt
        self._x: _Exchange | None = None
        self._timer = None
        self._advertises: list[Message] = []
        self._server: Message | None = None  # the Advertise we Request from
        self._failures = 0
        self._released: Callable[[], None] | None = None
        listener.state_changed(self.state)

    # --- events ----------------------------------------------------------------

    def start(self) -> None:
        lease = self.lease
        if lease is not None and lease.client_duid and lease.client_duid != self.config.duid:
            log.info(
                "stored lease belongs to DUID %s, not ours: soliciting", lease.client_duid.hex()
            )
            self._solicit()
        elif lease is not None and lease.valid_until and lease.valid_until > self._now_dt():
            # RFC 8415 section 18.2.2/18.2.12: after a restart a requesting router
            # rebinds, which any server may answer; no Solicit, same prefix.
            log.info("stored lease valid until %s: rebinding", lease.valid_until)
            self._rebind()
        else:
            self._solicit()

    def stop(self) -> None:
        self._cancel()
        self._x = None
        self._set_state(State.STOPPED)

    def link_up(self) -> None:
        """The uplink's carrier is back: confirm the bindings with Rebind now (RFC 8415
        section 18.2.12) rather than at the next retransmission, minutes away; without
        a valid lease, Solicit now."""
        if self.state in (State.INIT, State.RELEASE, State.STOPPED):
            return
        self._cancel()
        if self.lease is not None:
            self._rebind()  # solicits if the lease ran out meanwhile
        else:
            self._solicit()

    def release(self, done: Callable[[], None]) -> None:
        """Send a Release for the current lease (retransmitted up to REL_MAX_RC), then ``done``."""
        if self.lease is None or self.state is State.RELEASE:
            self._cancel()
            done()
            return
        if not self.lease.server_duid:
            # A Release must name the server (RFC 8415 section 18.2.7); a lease read from
            # a Go router7 file does not know it, and no Reply has told us since.
            log.info("no server known for the stored lease: nothing to release")
            self._cancel()
            self._set_state(State.STOPPED)
            done()
            return
        self._released = done
        self._begin(
            State.RELEASE,
            wire.RELEASE,
            REL_TIMEOUT,
            mrc=REL_MAX_RC,
            on_exhausted=self._release_done,
        )

    def datagram_received(self, data: bytes, source: str | None = None) -> None:
        try:
            msg = wire.decode(data)
        except DecodeError as e:
            self._drop(e.reason, f"undecodable datagram from {source}: {e}")
            return
        self.listener.received(msg)
        if msg.msg_type not in (wire.ADVERTISE, wire.REPLY):
            return self._drop("unexpected_type", f"{msg.type_name} from {source}")
        x = self._x
        if x is None or x.started is None:
            return self._drop("unexpected_state", f"{msg.type_name} while {self.state.value}")
        if msg.tid != x.tid:
            return self._drop("tid_mismatch", f"TID {msg.tid:06x}, expected {x.tid:06x}")
        if msg.client_id != self.config.duid:
            return self._drop("client_id_mismatch", f"client id {msg.client_id!r}")
        if msg.server_id is None:
            return self._drop("no_server_id", "no server identifier")
        if msg.sol_max_rt is not None and 60 <= msg.sol_max_rt <= 86400:
            self.sol_max_rt = msg.sol_max_rt  # RFC 8415 section 18.2.9: MUST process
        if self.state is State.SOLICIT:
            if msg.msg_type == wire.ADVERTISE:
                self._on_advertise(msg)
            elif self.config.rapid_commit and msg.rapid_commit:
                self._bind(msg, source)
            else:
                self._drop("unexpected_type", "Reply to Solicit without Rapid Commit")
        elif self.state in (State.REQUEST, State.RENEW, State.REBIND):
            if msg.msg_type != wire.REPLY:
                return self._drop("unexpected_type", f"{msg.type_name} while {self.state.value}")
            self._bind(msg, source)
        elif self.state is State.RELEASE:
            if msg.msg_type != wire.REPLY:
                return self._drop("unexpected_type", f"{msg.type_name} while releasing")
            log.info(
                "release confirmed by server (%s)", msg.status.name if msg.status else "Success"
            )
            self._release_done()

    # --- states ----------------------------------------------------------------

    def _solicit(self, holdoff: bool = False) -> None:
        self._advertises = []
        self._server = None
        delay = self.rng.uniform(0, SOL_MAX_DELAY)  # RFC 8415 section 18.2.1
        if holdoff:
            self._failures += 1
            delay += min(2**self._failures, MAX_HOLDOFF)
        self._begin(State.SOLICIT, wire.SOLICIT, SOL_TIMEOUT, self.sol_max_rt, delay=delay)

    def _on_advertise(self, msg: Message) -> None:
        if not _usable(msg, self.config.pd_only):
            statuses = [ia.status.name for ia in (*msg.ia_pd, *msg.ia_na) if ia.status]
            return self._drop(
                "no_bindings", f"Advertise without bindings ({statuses or msg.status})"
            )
        # RFC 8415 section 18.2.1: preference 255 means take it now; once the first
        # RT has passed, the first Advertise is taken; before that we collect.
        if msg.preference == 255 or self._x.count >= 2:
            self._request(msg)
        else:
            self._advertises.append(msg)

    def _request(self, adv: Message) -> None:
        log.info("requesting from server %s (preference %d)", adv.server_id.hex(), adv.preference)
        self._advertises = []
        self._server = adv
        self._begin(
            State.REQUEST,
            wire.REQUEST,
            REQ_TIMEOUT,
            REQ_MAX_RT,
            mrc=REQ_MAX_RC,
            on_exhausted=lambda: self._solicit(holdoff=True),
        )

    def _renew(self) -> None:
        lease = self.lease
        log.info("renewing (T1) with server %s", lease.server_duid.hex())
        self._begin(
            State.RENEW,
            wire.RENEW,
            REN_TIMEOUT,
            REN_MAX_RT,
            deadline=self._at(lease.rebind_at),
            # Unicast only if the server allowed it (Server Unicast, RFC 8415 18.2.4).
            unicast=lease.server_unicast,
            on_exhausted=self._rebind,
        )

    def _rebind(self) -> None:
        lease = self.lease
        if self._at(lease.valid_until) <= self.clock.seconds():
            return self._expired()
        log.info("rebinding (T2) with any server")
        self._begin(
            State.REBIND,
            wire.REBIND,
            REB_TIMEOUT,
            REB_MAX_RT,
            deadline=self._at(lease.valid_until),
            on_exhausted=self._expired,
        )

    def _expired(self) -> None:
        log.warning(
            "lease ran out at %s without an answer: soliciting; the lease file stays",
            self.lease.valid_until,
        )
        self._solicit()

    def _release_done(self) -> None:
        self._cancel()
        self._x = None
        self._set_state(State.STOPPED)
        done, self._released = self._released, None
        if done is not None:
            done()

    def _bind(self, msg: Message, source: str | None) -> None:
        """Act on a Reply to Request, Renew, Rebind or a rapid-commit Solicit."""
        if msg.status is not None and msg.status.code != wire.SUCCESS:
            if msg.status.code == wire.USE_MULTICAST and self._x.unicast is not None:
                log.info("server asks for multicast; resending")
                self._x.unicast = None
                self._cancel()
                self._transmit()
                return
            # UnspecFail & co.: keep retransmitting (RFC 8415 section 18.2.10).
            return self._drop(
                f"status_{msg.status.name.lower()}",
                f"Reply status {msg.status.name}: {msg.status.message}",
            )
        pd = _ias(msg.ia_pd)
        na = [] if self.config.pd_only else _ias(msg.ia_na)
        renewing = self.state in (State.RENEW, State.REBIND)
        if renewing and any(ia.status and ia.status.code == wire.NO_BINDING for ia in (*pd, *na)):
            log.warning("server has no binding for us (NoBinding): soliciting")
            self.listener.dropped("no_binding", "NoBinding in a Reply")
            return self._solicit()

        if renewing and not _usable(msg, self.config.pd_only):
            # NoPrefixAvail, or no IA at all: not a successful Renew/Rebind (issue 16).
            # Keep retransmitting (Renew falls back to Rebind at T2); the prefix stays
            # until its valid lifetime ends.
            statuses = [ia.status.name for ia in (*pd, *na) if ia.status]
            return self._drop(
                "no_bindings",
                f"Reply without usable bindings ({', '.join(statuses) or 'empty'}) "
                f"while {self.state.value}: retransmitting",
            )

        now = self.clock.seconds()
        now_dt = to_datetime(now)
        old = self.lease
        keep = old is not None and renewing
        prefixes = _merge(old.prefixes if keep else (), pd, now_dt)
        addresses = _merge(old.addresses if keep else (), na, now_dt)
        if not prefixes and not addresses:
            statuses = [ia.status.name for ia in (*pd, *na) if ia.status]
            log.warning(
                "Reply without usable bindings (%s): soliciting", ", ".join(statuses) or "empty"
            )
            self.listener.dropped("no_bindings", "Reply without usable bindings")
            return self._solicit(holdoff=not renewing)

        t1, t2 = _timers([*pd, *na], (*prefixes, *addresses))
        previous = list(old.previous_prefixes) if old else []
        if old is not None:
            current = {h.network for h in prefixes}
            for h in old.prefixes:
                # A prefix from a Go router7 file has no lifetimes: its lease's renew
                # time is the least it is valid for.
                until = h.valid_until if h.known else old.valid_until
                if h.network not in current and until is not None and until > now_dt:
                    log.info(
                        "prefix %s no longer delegated; deprecating until %s", h.network, until
                    )
                    previous = [p for p in previous if p.prefix != h.network]
                    previous.append(PreviousPrefix(h.network, h.preferred_until or now_dt, until))
        lease = Lease(
            prefixes=prefixes,
            addresses=addresses,
            dns=tuple(msg.dns) if msg.dns or not keep else old.dns,
            domains=tuple(msg.domains) if msg.domains or not keep else old.domains,
            server_duid=msg.server_id,
            client_duid=self.config.duid,
            server_address=source,
            server_unicast=msg.server_unicast,
            t1=t1,
            t2=t2,
            obtained_at=now_dt,
            renew_at=now_dt + timedelta(seconds=t1),
            rebind_at=now_dt + timedelta(seconds=t2),
            previous_prefixes=prune_previous(previous, now_dt, prefixes),
        )
        self.lease = lease
        self._failures = 0
        self._cancel()
        self._x = None
        self._set_state(State.BOUND)
        log.info(
            "bound: prefixes %s, addresses %s, T1 %ds, T2 %ds",
            ", ".join(str(h.network) for h in prefixes) or "-",
            ", ".join(str(h.network.network_address) for h in addresses) or "-",
            t1,
            t2,
        )
        self.listener.lease_changed(lease)
        if t1 < wire.INFINITY:
            self._timer = self.clock.callLater(t1, self._renew)

    # --- retransmission (RFC 8415 section 15) ------------------------------------

    def _begin(
        self,
        state: State,
        msg_type: int,
        irt: float,
        mrt: float = 0,
        *,
        mrc: int = 0,
        deadline: float | None = None,
        unicast: IPv6Address | None = None,
        delay: float = 0.0,
        on_exhausted: Callable[[], None] = lambda: None,
    ) -> None:
        self._cancel()
        self._set_state(state)
        tid = self.rng.getrandbits(24)
        self._x = _Exchange(msg_type, tid, irt, mrt, mrc, deadline, unicast, on_exhausted)
        if delay > 0:
            self._timer = self.clock.callLater(delay, self._transmit)
        else:
            self._transmit()

    def _transmit(self) -> None:
        self._timer = None
        x = self._x
        now = self.clock.seconds()
        if (x.mrc and x.count >= x.mrc) or (x.deadline is not None and now >= x.deadline):
            x.on_exhausted()
            return
        if x.started is None:
            x.started = now
        data = self._build(x, elapsed_cs=round((now - x.started) * 100))
        x.count += 1
        # Unicast (when allowed) only for the first transmission: if the server or a
        # firewall does not answer it, the retransmissions still reach it by multicast.
        dest = x.unicast if x.count == 1 else None
        ok = self.listener.send(Transmit(x.msg_type, data, dest))
        if not ok and dest is not None:
            dest = None
            ok = self.listener.send(Transmit(x.msg_type, data))
        log.debug(
            "sent %s #%d tid %06x to %s%s",
            wire.MESSAGE_NAMES[x.msg_type],
            x.count,
            x.tid,
            dest or "ff02::1:2",
            "" if ok else " (failed)",
        )
        x.rt = self._next_rt(x)
        wait = x.rt if x.deadline is None else min(x.rt, max(0.0, x.deadline - now))
        self._timer = self.clock.callLater(wait, self._timeout)

    def _next_rt(self, x: _Exchange) -> float:
        def rand() -> float:
            return self.rng.uniform(-0.1, 0.1)

        if x.count == 1:
            # The first Solicit RT must exceed IRT, so Advertises have time to arrive.
            r = self.rng.uniform(0.001, 0.1) if x.msg_type == wire.SOLICIT else rand()
            rt = x.irt + r * x.irt
        else:
            rt = 2 * x.rt + rand() * x.rt
        mrt = self.sol_max_rt if x.msg_type == wire.SOLICIT else x.mrt
        if mrt and rt > mrt:
            rt = mrt + rand() * mrt
        return rt

    def _timeout(self) -> None:
        self._timer = None
        if self.state is State.SOLICIT and self._advertises:
            # The first RT is over: the highest preference wins, ties go to the first.
            self._request(max(self._advertises, key=lambda m: m.preference))
            return
        self._transmit()

    def _build(self, x: _Exchange, elapsed_cs: int) -> bytes:
        cfg = self.config
        server = None
        if x.msg_type == wire.REQUEST:
            adv = self._server
            server = adv.server_id
            prefixes = [b for ia in _ias(adv.ia_pd) for b in ia.bindings if b.valid > 0]
            addresses = [b for ia in _ias(adv.ia_na) for b in ia.bindings if b.valid > 0]
        else:
            # Solicit: the last lease as a hint (servers may honour it); Renew, Rebind,
            # Release: the bindings we hold.
            lease = self.lease
            prefixes = [_hint(h) for h in lease.prefixes] if lease else []
            addresses = [_hint(h) for h in lease.addresses] if lease else []
            if x.msg_type in (wire.RENEW, wire.RELEASE):
                server = lease.server_duid
        ia_na = [] if cfg.pd_only else [IA(cfg.iaid_na, bindings=tuple(addresses))]
        ia_pd = [IA(cfg.iaid_pd, bindings=tuple(prefixes))]
        return wire.encode(
            x.msg_type,
            x.tid,
            cfg.duid,
            server_duid=server,
            elapsed_cs=elapsed_cs,
            ia_na=ia_na,
            ia_pd=ia_pd,
            rapid_commit=cfg.rapid_commit,
        )

    # --- helpers -----------------------------------------------------------------

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _set_state(self, state: State) -> None:
        if state is not self.state:
            log.debug("state %s -> %s", self.state.value, state.value)
        self.state = state
        self.listener.state_changed(state)

    def _drop(self, reason: str, detail: str) -> None:
        log.debug("dropped (%s): %s", reason, detail)
        self.listener.dropped(reason, detail)

    def _now_dt(self):
        return to_datetime(self.clock.seconds())

    @staticmethod
    def _at(t) -> float:
        return t.timestamp()


def _hint(h: Held) -> Binding:
    return Binding(h.network, 0, 0)


def _ias(ias: list[IA]) -> list[IA]:
    """IAs whose T1/T2 make sense; RFC 8415 section 18.2.10.1 discards T1 > T2 > 0."""
    return [ia for ia in ias if not (ia.t1 and ia.t2 and ia.t1 > ia.t2)]


def _usable(msg: Message, pd_only: bool) -> bool:
    ias = [*_ias(msg.ia_pd), *([] if pd_only else _ias(msg.ia_na))]
    return any(b.valid > 0 for ia in ias for b in ia.bindings)


def _merge(old: tuple[Held, ...], ias: list[IA], now) -> tuple[Held, ...]:
    """RFC 8415 section 18.2.10.1: add new bindings, update known ones, drop those the
    server gives a valid lifetime of 0, leave unmentioned ones alone."""
    out: dict = {}
    dropped = set()
    for ia in ias:
        for b in ia.bindings:
            if b.status is not None and b.status.code != wire.SUCCESS:
                continue
            if b.preferred > b.valid:  # RFC 8415 sections 21.6, 21.22: discard
                continue
            if b.valid == 0:
                dropped.add(b.network)
                continue
            out[b.network] = Held(
                b.network,
                b.preferred,
                b.valid,
                now + timedelta(seconds=b.preferred),
                now + timedelta(seconds=b.valid),
            )
    for h in old:
        if h.network not in out and h.network not in dropped and h.known and h.valid_until > now:
            out[h.network] = h.remaining(now)
    return tuple(out.values())


def _timers(ias: list[IA], held: tuple[Held, ...]) -> tuple[int, int]:
    """T1 and T2 for the whole lease: the smallest the server set, or derived ones."""
    t1s = [ia.t1 for ia in ias if ia.t1 > 0 and ia.bindings]
    t2s = [ia.t2 for ia in ias if ia.t2 > 0 and ia.bindings]
    min_preferred = min(h.preferred_lifetime for h in held)
    t1 = min(t1s) if t1s else max(MIN_DERIVED_T1, int(T1_FACTOR * min_preferred))
    t2 = min(t2s) if t2s else max(MIN_DERIVED_T1, int(T2_FACTOR * min_preferred))
    return t1, max(t1, t2)
