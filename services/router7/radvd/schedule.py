"""When to send router advertisements (RFC 4861 §6.2.4 and §6.2.6), clock-driven.

The scheduler owns no socket: it calls ``send(destination)`` with None for the
all-nodes multicast address or with a host's address for a solicited unicast
answer. Time comes from an IReactorTime (a task.Clock in tests) and randomness
from an injected random.Random, so every schedule is reproducible.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable

# RFC 4861 §10, router constants.
MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS = 3.0
MAX_RA_DELAY_TIME = 0.5
# Bound on solicitations waiting for their delayed unicast answer: a flood of RSs
# from made-up sources must not grow memory without limit.
MAX_PENDING_UNICAST = 64

Destination = ipaddress.IPv6Address | None


class Scheduler:
    def __init__(
        self,
        clock,
        send: Callable[[Destination], None],
        min_interval: float,
        max_interval: float,
        rng: random.Random | None = None,
    ):
        self.clock = clock
        self.send = send
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.rng = rng or random.Random()
        self._initial_left = 0
        self._next_multicast = None  # IDelayedCall
        self._last_multicast: float | None = None
        self._last_unicast: dict[ipaddress.IPv6Address, float] = {}
        self._pending_unicast: dict[ipaddress.IPv6Address, object] = {}
        self.running = False

    # --- events -------------------------------------------------------------

    def start(self) -> None:
        """Begin advertising: one RA now, the first few at most 16 s apart."""
        self.running = True
        self._initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS
        self._schedule_multicast(self.clock.seconds())

    def kick(self) -> None:
        """The advertised information changed: send an RA as soon as the rate limit allows.

        RFC 4861 §6.2.4 lets a router treat a change like a fresh start and repeat
        the first MAX_INITIAL_RTR_ADVERTISEMENTS quickly, so a lost RA is made up soon.
        """
        if not self.running:
            return
        self._initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS
        self._schedule_multicast(self._multicast_not_before(self.clock.seconds()))

    def solicited(self, source: ipaddress.IPv6Address) -> bool:
        """A valid Router Solicitation arrived; False if it was dropped by the rate limit."""
        if not self.running:
            return False
        now = self.clock.seconds()
        delay = self.rng.uniform(0, MAX_RA_DELAY_TIME)
        if source.is_unspecified:
            # §6.2.6: answer to all-nodes; if the next multicast RA comes sooner anyway,
            # it is the answer. Never two multicast RAs within MIN_DELAY_BETWEEN_RAS.
            at = self._multicast_not_before(now, delay)
            if self._next_multicast_at() is None or at < self._next_multicast_at():
                self._schedule_multicast(at)
            return True
        if source in self._pending_unicast:
            return True  # already answering this host
        if len(self._pending_unicast) >= MAX_PENDING_UNICAST:
            return False
        at = now + delay
        last = self._last_unicast.get(source)
        if last is not None and at < last + MIN_DELAY_BETWEEN_RAS:
            at = last + MIN_DELAY_BETWEEN_RAS + delay
        self._pending_unicast[source] = self.clock.callLater(at - now, self._fire_unicast, source)
        return True

    def stop(self) -> None:
        self.running = False
        for call in [self._next_multicast, *self._pending_unicast.values()]:
            if call is not None and call.active():
                call.cancel()
        self._next_multicast = None
        self._pending_unicast.clear()

    # --- internals ----------------------------------------------------------

    def next_interval(self) -> float:
        """Time to the next unsolicited RA: uniform in [Min, Max], capped early on."""
        interval = self.rng.uniform(self.min_interval, self.max_interval)
        if self._initial_left > 0:
            interval = min(interval, MAX_INITIAL_RTR_ADVERT_INTERVAL)
        return interval

    def _multicast_not_before(self, now: float, delay: float = 0.0) -> float:
        if (
            self._last_multicast is not None
            and now + delay < self._last_multicast + MIN_DELAY_BETWEEN_RAS
        ):
            return self._last_multicast + MIN_DELAY_BETWEEN_RAS + delay
        return now + delay

    def _next_multicast_at(self) -> float | None:
        call = self._next_multicast
        return call.getTime() if call is not None and call.active() else None

    def _schedule_multicast(self, at: float) -> None:
        if self._next_multicast is not None and self._next_multicast.active():
            self._next_multicast.cancel()
        self._next_multicast = self.clock.callLater(
            max(0.0, at - self.clock.seconds()), self._fire_multicast
        )

    def _fire_multicast(self) -> None:
        now = self.clock.seconds()
        self._last_multicast = now
        if self._initial_left > 0:
            self._initial_left -= 1
        try:
            self.send(None)
        finally:
            if self.running:
                self._schedule_multicast(now + self.next_interval())

    def _fire_unicast(self, destination: ipaddress.IPv6Address) -> None:
        self._pending_unicast.pop(destination, None)
        now = self.clock.seconds()
        self._last_unicast[destination] = now
        # Forget hosts whose rate-limit window has passed, so the dict stays small.
        for host, t in list(self._last_unicast.items()):
            if t + MIN_DELAY_BETWEEN_RAS <= now and host != destination:
                del self._last_unicast[host]
        self.send(destination)
