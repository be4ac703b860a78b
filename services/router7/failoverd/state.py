"""failoverd's state file, ``<perm>/failover/state.json``, and its one reader.

Written on every change of the active uplink or of an uplink's health (rare:
hysteresis keeps it so). netconfigd reads ``active`` to point the default route;
statusd and diagd show the rest. A missing file means "the primary uplink", which
is what a router with one uplink (or before failoverd's first write) does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router7.failoverd.health import Failover
from router7.runtime.statefile import (
    Optional,
    StateFileError,
    read_json,
    validate,
    write_json_atomic,
)


def state_path(perm: str | Path) -> Path:
    return Path(perm) / "failover" / "state.json"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def to_json(machine: Failover) -> dict[str, Any]:
    return {
        "active": machine.active,
        "since": _iso(machine.since),
        "reason": machine.reason,
        "transitions": machine.transitions,
        "uplinks": {
            u.name: {
                "priority": u.priority,
                "up": u.up,
                "carrier": u.carrier,
                "since": _iso(u.since),
                "reason": u.reason,
                "probes_sent": u.probes_sent,
                "probes_lost": u.probes_lost,
            }
            for u in sorted(machine.uplinks.values(), key=lambda u: (u.priority, u.name))
        },
    }


def write(perm: str | Path, machine: Failover) -> None:
    write_json_atomic(state_path(perm), to_json(machine))


@dataclass(frozen=True)
class UplinkState:
    name: str
    priority: int
    up: bool
    carrier: bool
    since: str
    reason: str


@dataclass(frozen=True)
class State:
    active: str | None
    since: str
    reason: str
    transitions: int
    uplinks: tuple[UplinkState, ...]


_SCHEMA = {
    "active": Optional(str, None),
    "since": Optional(str, ""),
    "reason": Optional(str, ""),
    "transitions": Optional(int, 0),
    "uplinks": Optional(lambda v: _mapping(v), {}),
}


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError("expected an object of uplinks")
    return value


_UPLINK_SCHEMA = {
    "priority": Optional(int, 0),
    "up": Optional(bool, True),
    "carrier": Optional(bool, True),
    "since": Optional(str, ""),
    "reason": Optional(str, ""),
}


def parse(obj: Any, path: str) -> State:
    v = validate(obj, _SCHEMA, path)
    uplinks = []
    for name, entry in v["uplinks"].items():
        u = validate(entry, _UPLINK_SCHEMA, f"{path}: uplinks.{name}")
        uplinks.append(
            UplinkState(name, u["priority"], u["up"], u["carrier"], u["since"], u["reason"])
        )
    return State(v["active"], v["since"], v["reason"], v["transitions"], tuple(uplinks))


def read(perm: str | Path) -> State | None:
    """The state, or None if failoverd never wrote one; StateFileError if it is bad."""
    path = state_path(perm)
    try:
        obj = read_json(path)
    except StateFileError as e:
        if e.reason == "does not exist":
            return None
        raise
    return parse(obj, str(path))


def active_uplink(perm: str | Path, default: str = "uplink0") -> str:
    """The uplink that should carry the default route (``default`` without a state)."""
    try:
        state = read(perm)
    except StateFileError:
        return default
    return state.active if state is not None and state.active else default
