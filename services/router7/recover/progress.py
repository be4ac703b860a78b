"""The router's progress, as the laptop sees it: reports in, a bar and a result out.

The recovery system posts JSON reports {"stage": S, "message": M, "done": N,
"total": N} to /progress. Stages, in order:

    booted      the recovery system is up and reached the laptop
    disk        it found the one disk it can identify (message names it)
    writing     disk.img is being written (done/total bytes)
    perm        the backup is restored into /perm, or a default interfaces.json written
    synced      everything is on the disk
    done        it reboots into the installed system (success)
    failed      it stopped; the message says why (a refusal is a failure too)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

STAGES = ("booted", "disk", "writing", "perm", "synced", "done", "failed")
FINAL = {"done": True, "failed": False}
BAR_WIDTH = 30


class BadReport(ValueError):
    pass


@dataclass(frozen=True)
class Report:
    stage: str
    message: str = ""
    done: int = 0
    total: int = 0


def parse_report(body: bytes) -> Report:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise BadReport(f"not JSON: {e}") from e
    if not isinstance(data, dict):
        raise BadReport("a report is a JSON object")
    stage = data.get("stage")
    if stage not in STAGES:
        raise BadReport(f"stage: {stage!r} is not one of {', '.join(STAGES)}")
    message = data.get("message", "")
    done, total = data.get("done", 0), data.get("total", 0)
    if not isinstance(message, str):
        raise BadReport("message: want a string")
    for name, v in (("done", done), ("total", total)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise BadReport(f"{name}: want a non-negative integer")
    return Report(stage, message[:500], done, total)


@dataclass
class Progress:
    reports: list[tuple[float, Report]] = field(default_factory=list)
    result: bool | None = None  # None until done or failed
    started: float = field(default_factory=time.monotonic)

    @property
    def stage(self) -> str:
        return self.reports[-1][1].stage if self.reports else "waiting"

    def add(self, report: Report) -> None:
        if self.result is not None:
            return  # the first final word stands
        self.reports.append((time.monotonic(), report))
        if report.stage in FINAL:
            self.result = FINAL[report.stage]

    @property
    def failure(self) -> str:
        for _t, r in reversed(self.reports):
            if r.stage == "failed":
                return r.message
        return ""


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    frac = min(done / total, 1.0) if total > 0 else 0.0
    filled = int(frac * width)
    return "[" + "#" * filled + "-" * (width - filled) + f"] {frac * 100:5.1f}%"


def render(report: Report) -> str:
    """One line for the terminal."""
    line = f"{report.stage:8} "
    if report.total:
        line += bar(report.done, report.total) + f" {report.done >> 20}/{report.total >> 20} MiB "
    return (line + report.message).rstrip()
