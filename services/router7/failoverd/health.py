"""Which uplink carries the traffic: a pure state machine (no sockets, no clock of its own).

Each uplink has a health with hysteresis: it goes down after ``down_after``
consecutive failed probe rounds and comes back after ``up_after`` consecutive
good ones, so one lost echo does not flap the default route. Carrier loss is
down at once (the kernel knows; waiting for probes would only lose packets).
The active uplink is the healthy one with the lowest priority number; when none
is healthy, the best-priority uplink that still has carrier stays active (a
dead backup is no better than a dead primary).

Callers pass the time (seconds, any epoch) with each event; the machine returns
the transitions it made, for the service to act on (state file, netconfigd,
conntrack flush) and for tests to assert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DOWN_AFTER = 3  # consecutive lost probe rounds
UP_AFTER = 4  # consecutive good probe rounds


@dataclass
class UplinkHealth:
    name: str
    priority: int
    up: bool = False  # unproven until the first good rounds (or the first round: see start)
    carrier: bool = True
    since: float = 0.0
    reason: str = "starting"
    losses: int = 0  # consecutive failed rounds
    successes: int = 0  # consecutive good rounds
    probes_sent: int = 0
    probes_lost: int = 0


@dataclass(frozen=True)
class Transition:
    """The active uplink changed (``previous`` may be None at start)."""

    at: float
    previous: str | None
    active: str | None
    reason: str


@dataclass
class Failover:
    uplinks: dict[str, UplinkHealth]
    down_after: int = DOWN_AFTER
    up_after: int = UP_AFTER
    active: str | None = None
    since: float = 0.0
    reason: str = "starting"
    transitions: int = 0
    history: list[Transition] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        priorities: dict[str, int],
        now: float,
        down_after: int = DOWN_AFTER,
        up_after: int = UP_AFTER,
    ) -> Failover:
        if down_after < 1 or up_after < 1:
            raise ValueError("down_after and up_after must be at least 1")
        # At start every uplink is presumed up: the primary keeps today's behaviour
        # until probes prove otherwise, as with a single uplink.
        uplinks = {
            name: UplinkHealth(name, prio, up=True, since=now, reason="presumed up at start")
            for name, prio in priorities.items()
        }
        machine = cls(uplinks, down_after, up_after, since=now)
        machine._select(now, "start")
        return machine

    # --- events ---------------------------------------------------------------

    def probe_round(self, name: str, ok: bool, now: float, detail: str = "") -> Transition | None:
        """One probe round of ``name`` finished: good (a target answered) or lost."""
        u = self.uplinks.get(name)
        if u is None:
            return None
        u.probes_sent += 1
        if ok:
            u.successes += 1
            u.losses = 0
            if not u.up and u.carrier and u.successes >= self.up_after:
                self._set(u, True, now, f"{u.successes} probe rounds answered")
        else:
            u.probes_lost += 1
            u.losses += 1
            u.successes = 0
            if u.up and u.losses >= self.down_after:
                why = f"{u.losses} probe rounds lost" + (f" ({detail})" if detail else "")
                self._set(u, False, now, why)
        return self._select(now, f"{name} {'up' if u.up else 'down'}: {u.reason}")

    def carrier_changed(self, name: str, carrier: bool, now: float) -> Transition | None:
        u = self.uplinks.get(name)
        if u is None or u.carrier == carrier:
            return None
        u.carrier = carrier
        u.successes = 0
        if not carrier:
            u.losses = self.down_after
            self._set(u, False, now, "carrier lost")
        # Carrier back: still down until up_after probe rounds answer.
        return self._select(now, f"{name} {'carrier back' if carrier else 'carrier lost'}")

    # --- selection ------------------------------------------------------------

    def best(self) -> str | None:
        ranked = sorted(self.uplinks.values(), key=lambda u: (u.priority, u.name))
        for u in ranked:
            if u.up:
                return u.name
        if self.active is not None and self.uplinks[self.active].carrier:
            return self.active  # nothing healthy: no reason to move
        for u in ranked:
            if u.carrier:
                return u.name
        return self.active if self.active is not None else (ranked[0].name if ranked else None)

    def _set(self, u: UplinkHealth, up: bool, now: float, reason: str) -> None:
        u.up = up
        u.since = now
        u.reason = reason

    def _select(self, now: float, reason: str) -> Transition | None:
        best = self.best()
        if best == self.active:
            return None
        t = Transition(now, self.active, best, reason)
        if self.active is not None:
            self.transitions += 1
        self.active, self.since, self.reason = best, now, reason
        self.history = [*self.history[-19:], t]
        return t
