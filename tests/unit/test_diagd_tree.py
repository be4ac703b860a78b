"""The check tree's evaluation logic, with fake probes and a task.Clock."""

from __future__ import annotations

from twisted.internet import defer, task

from router7.diagd.tree import Check, CheckFailed, Evaluator, evaluate, first_error


class Probe:
    """A probe that records its calls and answers as told."""

    def __init__(self, result="ok", fail: str | None = None, hang: bool = False):
        self.result, self.fail, self.hang, self.calls = result, fail, hang, 0
        self.pending: list[defer.Deferred] = []

    def __call__(self):
        self.calls += 1
        if self.fail is not None:
            raise CheckFailed(self.fail)
        if self.hang:
            d = defer.Deferred()
            self.pending.append(d)
            return d
        return self.result


def run(checks, clock=None, timeout=3.0):
    clock = clock or task.Clock()
    results = []
    evaluate(checks, clock, timeout).addCallback(results.append)
    return clock, results


def by_name(results):
    return {r.name: r for root in results for r in root.walk()}


def test_all_ok_is_healthy_and_keeps_statuses():
    a, b = Probe("up, 5 rx"), Probe("lease ok")
    _, (results,) = run([Check("a", a, [Check("b", b)])])
    assert first_error(results) == ""
    assert [(r.name, r.ok, r.status) for r in results[0].walk()] == [
        ("a", True, "up, 5 rx"),
        ("b", True, "lease ok"),
    ]


def test_failure_marks_descendants_and_does_not_probe_them():
    c, d, e = Probe(), Probe(), Probe()
    tree = [
        Check(
            "a",
            Probe(),
            [Check("b", Probe(fail="no lease"), [Check("c", c, [Check("d", d)])]), Check("e", e)],
        )
    ]
    _, (results,) = run(tree)
    got = by_name(results)
    assert got["b"].status == "no lease" and not got["b"].ok
    assert got["c"].status == "dependency b failed" and got["c"].skipped
    assert got["d"].status == "dependency b failed"
    assert c.calls == d.calls == 0
    assert got["e"].ok and e.calls == 1  # a sibling still runs
    assert first_error(results) == "b: no lease"


def test_first_error_is_depth_first_not_by_completion():
    # "late" fails first in tree order but completes after "early".
    late = Probe(hang=True)
    tree = [Check("root", Probe(), [Check("late", late), Check("early", Probe(fail="boom"))])]
    clock, results = run(tree)
    assert results == []  # still waiting for "late"
    late.pending[0].errback(CheckFailed("slow failure"))
    assert first_error(results[0]) == "late: slow failure"


def test_timeout_per_check_and_siblings_run_concurrently():
    hang, quick = Probe(hang=True), Probe("fine")
    tree = [Check("x", hang, [Check("under-x", Probe())]), Check("y", quick, timeout=10)]
    clock, results = run(tree, timeout=3.0)
    assert quick.calls == 1 and results == []
    clock.advance(2.9)
    assert results == []
    clock.advance(0.2)
    got = by_name(results[0])
    assert got["x"].status == "timed out after 3s"
    assert got["under-x"].status == "dependency x failed"
    assert got["y"].ok
    assert hang.pending[0].called  # the hanging probe was cancelled
    assert first_error(results[0]) == "x: timed out after 3s"


def test_own_timeout_overrides_default():
    clock, results = run([Check("slow", Probe(hang=True), timeout=0.5)], timeout=3.0)
    clock.advance(0.5)
    assert by_name(results[0])["slow"].status == "timed out after 0.5s"


def test_unexpected_exception_becomes_status():
    def probe():
        raise OSError(19, "No such device")

    _, (results,) = run([Check("link/uplink0", probe)])
    assert first_error(results) == "link/uplink0: [Errno 19] No such device"


def test_uncounted_failure_does_not_make_unhealthy():
    tree = [
        Check("v6", Probe(fail="no route"), [Check("tcp6", Probe())], counts=False),
        Check("v4", Probe()),
    ]
    _, (results,) = run(tree)
    assert first_error(results) == ""
    assert by_name(results)["tcp6"].status == "dependency v6 failed"
    assert not by_name(results)["tcp6"].counts


def test_evaluator_caches_and_shares_evaluations():
    clock = task.Clock()
    clock.advance(1000)
    hang = Probe(hang=True)
    ev = Evaluator(lambda: [Check("a", hang)], clock, cache_seconds=2.0)
    got = []
    ev.report().addCallback(got.append)
    ev.report().addCallback(got.append)  # joins the running evaluation
    assert hang.calls == 1
    hang.pending[0].callback("done")
    assert len(got) == 2 and got[0] is got[1] and got[0].healthy
    clock.advance(1.9)
    ev.report().addCallback(got.append)
    assert hang.calls == 1 and got[2] is got[0]  # cached
    clock.advance(0.2)
    ev.report()
    assert hang.calls == 2


def test_report_json_shape():
    clock = task.Clock()
    ev = Evaluator(lambda: [Check("a", Probe(), [Check("b", Probe(fail="down"))])], clock)
    reports = []
    ev.report().addCallback(reports.append)
    obj = reports[0].to_json()
    assert obj["healthy"] is False
    assert obj["first_error"] == "b: down"
    assert obj["checks"] == [
        {"name": "a", "ok": True, "status": "ok", "counts": True, "depth": 0},
        {"name": "b", "ok": False, "status": "down", "counts": True, "depth": 1},
    ]


def test_broken_tree_builder_is_reported():
    def build():
        raise ValueError("bad target")

    ev = Evaluator(build, task.Clock())
    reports = []
    ev.report().addCallback(reports.append)
    assert "bad target" in reports[0].first_error
