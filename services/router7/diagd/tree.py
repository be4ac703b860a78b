"""The check tree: pure evaluation logic, no sockets.

A check is a name, a probe and the checks that depend on it. A probe returns a
status string (or a Deferred of one) when healthy and raises (or errbacks) when
not; the exception's message becomes the status. Once a check fails, its
descendants are not probed at all: they are reported failed with "dependency X
failed", so the owner sees the root cause, not a cascade of symptoms.

Siblings run concurrently and every probe has its own timeout on the injected
clock, so one hanging probe delays the report by at most its timeout per level.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorTime

DEFAULT_TIMEOUT = 3.0  # seconds per probe


class CheckFailed(Exception):
    """A probe's way to fail with a plain status message."""


@dataclass(frozen=True)
class Check:
    name: str
    probe: Callable[[], Any]  # -> str | Deferred[str]; raises/errbacks on failure
    children: Sequence[Check] = ()
    timeout: float | None = None  # None: the evaluation's default
    counts: bool = True  # False: this subtree is shown but not part of health (--no-ipv6)


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    status: str
    children: tuple[Result, ...] = ()
    counts: bool = True
    skipped: bool = False  # not probed because a dependency failed
    seconds: float = 0.0  # how long the probe took

    def walk(self) -> Iterator[Result]:
        """This result and its descendants, depth-first, parents before children."""
        for _, r in self.walk_depth():
            yield r

    def walk_depth(self, depth: int = 0) -> Iterator[tuple[int, Result]]:
        """Like walk(), with each result's depth in the tree (0 for this one)."""
        yield depth, self
        for child in self.children:
            yield from child.walk_depth(depth + 1)


@dataclass(frozen=True)
class Report:
    results: tuple[Result, ...]
    checked_at: float  # clock seconds
    first_error: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "first_error", first_error(self.results))

    @property
    def healthy(self) -> bool:
        return self.first_error == ""

    def walk(self) -> Iterator[Result]:
        for r in self.results:
            yield from r.walk()

    def to_json(self) -> dict:
        return {
            "healthy": self.healthy,
            "first_error": self.first_error,
            # In tree order; depth lets a reader (the status page) indent the tree.
            "checks": [
                {"name": r.name, "ok": r.ok, "status": r.status, "counts": r.counts, "depth": d}
                for root in self.results
                for d, r in root.walk_depth()
            ],
        }


def first_error(results: Sequence[Result]) -> str:
    """``"name: status"`` of the first failing counted check, depth-first; "" if none."""
    for root in results:
        for r in root.walk():
            if not r.ok and r.counts:
                return f"{r.name}: {r.status}"
    return ""


def _skipped(check: Check, because: str, counts: bool) -> Result:
    counts = counts and check.counts
    return Result(
        check.name,
        False,
        f"dependency {because} failed",
        tuple(_skipped(c, because, counts) for c in check.children),
        counts=counts,
        skipped=True,
    )


_TIMEOUTS = (defer.TimeoutError, defer.CancelledError, error.TimeoutError)


def _message(e: BaseException) -> str:
    text = str(e).strip()
    return text or type(e).__name__


@defer.inlineCallbacks
def _evaluate(check: Check, clock: IReactorTime, timeout: float, counts: bool):
    counts = counts and check.counts  # an uncounted check's whole subtree is uncounted
    limit = check.timeout if check.timeout is not None else timeout
    started = clock.seconds()
    d = defer.maybeDeferred(check.probe)
    d.addTimeout(limit, clock)
    try:
        status = yield d
        ok = True
    except _TIMEOUTS:
        status, ok = f"timed out after {limit:g}s", False
    except Exception as e:
        status, ok = _message(e), False
    seconds = clock.seconds() - started
    if not ok:
        return Result(
            check.name,
            False,
            status,
            tuple(_skipped(c, check.name, counts) for c in check.children),
            counts=counts,
            seconds=seconds,
        )
    children = yield evaluate(check.children, clock, timeout, counts)
    return Result(check.name, True, str(status or "ok"), children, counts=counts, seconds=seconds)


def evaluate(
    checks: Sequence[Check],
    clock: IReactorTime,
    timeout: float = DEFAULT_TIMEOUT,
    counts: bool = True,
):
    """Deferred[tuple[Result, ...]] of ``checks``, in order; never errbacks."""
    ds = [_evaluate(c, clock, timeout, counts) for c in checks]
    return defer.gatherResults(ds).addCallback(tuple)


class Evaluator:
    """Evaluates the tree on demand; callers within ``cache_seconds`` share a report.

    Concurrent requests while an evaluation runs wait for that one instead of
    starting another, so a burst of scrapes probes the network once.
    """

    def __init__(
        self,
        build: Callable[[], Sequence[Check]],
        clock: IReactorTime,
        cache_seconds: float = 2.0,
        timeout: float = DEFAULT_TIMEOUT,
        on_report: Callable[[Report], None] = lambda report: None,
    ):
        self.build = build
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self.on_report = on_report
        self.last: Report | None = None
        self._waiting: list[defer.Deferred] | None = None

    def report(self) -> defer.Deferred:
        """Deferred[Report]: the cached one if fresh, else a new evaluation."""
        now = self.clock.seconds()
        if self.last is not None and now - self.last.checked_at < self.cache_seconds:
            return defer.succeed(self.last)
        d = defer.Deferred()
        if self._waiting is not None:
            self._waiting.append(d)
            return d
        self._waiting = [d]
        try:
            checks = self.build()
        except Exception as e:  # a broken config must show up, not crash the page
            checks = [Check("diagd", lambda e=e: _raise(e))]
        evaluate(checks, self.clock, self.timeout).addCallbacks(self._done, self._broken)
        return d

    def _broken(self, failure) -> None:
        """A bug in the evaluation itself: report it rather than leave requests hanging."""
        self._done((Result("diagd", False, f"internal error: {_message(failure.value)}"),))

    def _done(self, results) -> None:
        report = Report(results, self.clock.seconds())
        self.last = report
        waiting, self._waiting = self._waiting or [], None
        try:
            self.on_report(report)
        finally:
            for d in waiting:
                d.callback(report)


def _raise(e: Exception):
    raise CheckFailed(f"cannot build the check tree: {e}")
