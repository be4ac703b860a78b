"""The new system's side of an update: commit once healthy, roll back at the deadline.

An update boots by kexec with ``router7.trial=1`` on the command line while
syslinux's default.cfg still names the old slot. So until the commit, any reboot
(this deadline, a panic with ``panic=N``, the hardware watchdog, a power cut)
lands in the old system. The deadline counts from boot (uptime), so restarting
router7-updated does not extend it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from twisted.internet import defer

from router7.updated import history as hist

log = logging.getLogger(__name__)

DEFAULT_DEADLINE = 600.0  # seconds from boot; the trial request may set another
HEALTHY_IN_A_ROW = 2  # one good verdict could be luck between two outages
INTERVAL = 5.0
# Past the deadline, diagd may still be starting (a slow boot, a short deadline): wait
# this long for one answer from it, so the rollback names the failed check rather than
# "diagd unreachable". Far inside router7-trial-guard's 300 s backstop.
REASON_GRACE = 60.0


@dataclass(frozen=True)
class Boot:
    """What this boot is, from /proc/cmdline, default.cfg and the history."""

    action: str  # "trial", "settle-committed", "settle-rolled-back", "idle"
    running_slot: str | None
    default_slot: str | None
    pending: dict | None = None
    reason: str = ""


NO_COMMIT = (
    "the new system rebooted before it committed (kernel panic, hang and watchdog, "
    "power loss or the commit deadline): the old slot booted"
)


def classify(args: dict[str, str], default_slot: str | None, pending: dict | None) -> Boot:
    """Pure: what to do at start-up. ``args``: the kernel command line's words."""
    running = args.get("router7.slot") or None
    trial = args.get("router7.trial") == "1"
    if trial and running and running != default_slot:
        return Boot("trial", running, default_slot, pending)
    if pending is not None:
        if running is not None and running == pending.get("to_slot") == default_slot:
            return Boot("settle-committed", running, default_slot, pending, "committed earlier")
        return Boot("settle-rolled-back", running, default_slot, pending, NO_COMMIT)
    return Boot("idle", running, default_slot)


class Trial:
    """Polls health until ``HEALTHY_IN_A_ROW`` good verdicts (commit) or the deadline.

    ``probe()`` returns a Deferred of diagd's /health.json dict; ``uptime()`` the
    seconds since boot; ``commit()`` and ``rollback(reason)`` do the acts.
    """

    def __init__(
        self,
        clock,
        probe: Callable[[], defer.Deferred],
        uptime: Callable[[], float],
        deadline: float,
        commit: Callable[[float], None],
        rollback: Callable[[str], None],
        interval: float = INTERVAL,
    ):
        self.clock = clock
        self.probe = probe
        self.uptime = uptime
        self.deadline = deadline
        self.commit = commit
        self.rollback = rollback
        self.interval = interval
        self.good = 0
        self.last_error = "no health verdict yet"
        self.answered = False  # diagd gave a verdict at least once
        self.probed = False
        self.state = "waiting"  # then "committed" or "rolled back"
        self._call = None

    def start(self) -> None:
        log.info(
            "update trial: committing once healthy, rolling back at %.0f s after boot (now %.0f s)",
            self.deadline,
            self.uptime(),
        )
        self._check()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()

    def _check(self) -> None:
        self._call = None
        if self.state != "waiting":
            return
        late = self.uptime() >= self.deadline
        if (
            late
            and self.probed
            and (self.answered or self.uptime() >= self.deadline + REASON_GRACE)
        ):
            self._rollback(f"not healthy within {self.deadline:.0f} s: {self.last_error}")
            return
        # Past the deadline (a slow start): probes still, for the reason only.
        self.probed = True
        d = defer.maybeDeferred(self.probe)
        if late:
            d.addCallback(self._too_late)
        d.addCallbacks(self._verdict, self._probe_failed)
        d.addErrback(lambda f: log.error("update trial: %s", f.getTraceback()))
        d.addBoth(lambda _: self._again())

    def _too_late(self, health):
        """A verdict past the deadline never commits; a healthy one says so."""
        if not isinstance(health, dict):
            return health
        if health.get("healthy") is True:
            return {"healthy": False, "first_error": f"healthy only at {self.uptime():.0f} s"}
        return {**health, "healthy": False}

    def _verdict(self, health) -> None:
        self.answered = True
        if isinstance(health, dict) and health.get("healthy") is True:
            self.good += 1
            if self.good >= HEALTHY_IN_A_ROW:
                self.state = hist.COMMITTED
                self.commit(self.uptime())
            return
        self.good = 0
        err = health.get("first_error") if isinstance(health, dict) else None
        self.last_error = f"diagd: {err or 'unhealthy'}"

    def _probe_failed(self, failure) -> None:
        self.good = 0
        self.last_error = f"diagd unreachable: {failure.getErrorMessage()}"

    def _again(self) -> None:
        if self.state == "waiting":
            remaining = self.deadline - self.uptime()
            delay = min(self.interval, remaining) if remaining > 0 else 0.0
            if remaining <= 0 and not self.answered:
                delay = min(self.interval, self.deadline + REASON_GRACE - self.uptime())
            self._call = self.clock.callLater(max(0.0, delay), self._check)

    def _rollback(self, reason: str) -> None:
        self.state = hist.ROLLED_BACK
        log.error("update trial failed: %s; rebooting into the old slot", reason)
        self.rollback(reason)
