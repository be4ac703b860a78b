"""/perm/update/history.json: every update, its steps and its result, human-readable.

    {"updates": [{"id": "...", "from_version": "...", "to_version": "...",
                  "from_slot": "A", "to_slot": "B", "result": "trial" | "committed" |
                  "rolled back" | "refused", "reason": "...", "started": TIME,
                  "deadline_seconds": 300, "steps": [{"time": TIME, "what": "..."}],
                  "durations": {"upload": 1.2, "boot_to_healthy": 31.0}}]}

The last entry with result "trial" is the update in flight: the old system writes
it before the kexec, the new system or (after a reboot) the old one settles it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from router7.runtime.statefile import StateFileError, read_json_raw, write_json_atomic

log = logging.getLogger(__name__)

PATH = Path("update") / "history.json"
KEEP = 50  # entries kept; older ones are dropped
TRIAL = "trial"
COMMITTED = "committed"
ROLLED_BACK = "rolled back"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class History:
    def __init__(self, perm: str | Path):
        self.path = Path(perm) / PATH

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        try:
            data, _ = read_json_raw(self.path)
        except StateFileError as e:  # a damaged history must not stop updates or rollbacks
            log.error("%s: unreadable (%s); starting a new history", self.path, e)
            return []
        updates = data.get("updates") if isinstance(data, dict) else None
        return [u for u in updates if isinstance(u, dict)] if isinstance(updates, list) else []

    def _write(self, entries: list[dict]) -> None:
        write_json_atomic(self.path, {"updates": entries[-KEEP:]})

    def last(self) -> dict | None:
        entries = self.entries()
        return entries[-1] if entries else None

    def pending(self) -> dict | None:
        last = self.last()
        return last if last and last.get("result") == TRIAL else None

    def append(self, entry: dict) -> None:
        entry.setdefault("steps", [])
        self._write([*self.entries(), entry])

    def settle(self, entry_id: str, result: str, reason: str = "", **durations: float) -> dict:
        """Give the entry ``entry_id`` its result (and a step saying so)."""
        entries = self.entries()
        for e in entries:
            if e.get("id") == entry_id:
                e["result"] = result
                if reason:
                    e["reason"] = reason
                e.setdefault("durations", {}).update(durations)
                e.setdefault("steps", []).append(
                    {"time": now(), "what": f"{result}: {reason}" if reason else result}
                )
                self._write(entries)
                return e
        raise KeyError(entry_id)

    def step(self, entry_id: str, what: str) -> None:
        entries = self.entries()
        for e in entries:
            if e.get("id") == entry_id:
                e.setdefault("steps", []).append({"time": now(), "what": what})
                self._write(entries)
                return
