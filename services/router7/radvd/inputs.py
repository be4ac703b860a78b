"""radvd's files: the dhcp6 lease, its config, extra prefixes and its own memory.

The lease is read through its owner, router7.dhcp6.lease.

Every reader returns plain values for plan.py and raises StateFileError (naming
the file and field) when a file exists but is wrong; a missing optional file
gives the default.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router7.dhcp6 import lease as dhcp6_lease
from router7.failoverd import state as failover_state
from router7.runtime.statefile import (
    Optional,
    StateFileError,
    ip_address,
    ip_network,
    ip_prefix,
    iso_time,
    read_json,
    write_json_atomic,
)

from .plan import Config, Delegated, Lease

LEASE = Path("dhcp6/wire/lease.json")
CONFIG = Path("radvd/config.json")
EXTRA_PREFIXES = Path("radvd/prefixes.json")
MEMORY = Path("radvd/advertised.json")


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _prefix(value: Any) -> ipaddress.IPv6Network:
    net = ip_prefix(value)
    if net.version != 6:
        raise ValueError(f"not an IPv6 prefix: {value!r}")
    return net


def _read_one(path: Path, usable: bool) -> Lease | None:
    if not path.exists():
        return None
    lease = dhcp6_lease.read(path)
    return Lease(
        prefixes=tuple(
            # An uplink that is down (failover): its prefix stays valid (it may come
            # back) but is no longer preferred, so hosts source new connections from
            # a prefix that works (docs/failover.md).
            Delegated(
                h.network, _epoch(h.preferred_until) if usable else 0.0, _epoch(h.valid_until)
            )
            for h in lease.prefixes
        ),
        previous=tuple(
            Delegated(p.prefix, _epoch(p.preferred_until), _epoch(p.valid_until))
            for p in lease.previous_prefixes
        ),
        obtained_at=_epoch(lease.obtained_at),
    )


def read_lease(perm: Path) -> Lease | None:
    """The dhcp6 client's lease (through its owner's reader), or None when there is none
    (yet). A Go router7 lease has no lifetimes: its prefixes come without times.

    With failover, the leases of every uplink in failoverd's state are merged, and the
    prefixes of uplinks that are down get preferred lifetime 0."""
    try:
        state = failover_state.read(perm)
    except StateFileError:
        state = None
    if state is None or len(state.uplinks) < 2:
        return _read_one(perm / LEASE, True)
    merged: Lease | None = None
    for u in state.uplinks:
        lease = _read_one(dhcp6_lease.lease_path(perm, u.name), u.up or u.name == state.active)
        if lease is None:
            continue
        if merged is None:
            merged = lease
        else:
            merged = Lease(
                merged.prefixes + lease.prefixes,
                merged.previous + lease.previous,
                merged.obtained_at,
            )
    return merged


def read_config(perm: Path) -> Config:
    path = perm / CONFIG
    if not path.exists():
        return Config()
    d = Config()
    raw = read_json(
        path,
        {
            "subnet_id": Optional(int, d.subnet_id),
            "max_interval": Optional(float, d.max_interval),
            "min_interval": Optional(float),
            "router_lifetime": Optional(int),
            "preferred_limit": Optional(int, d.preferred_limit),
            "valid_limit": Optional(int, d.valid_limit),
            "min_valid_lifetime": Optional(int),
            "dnssl": Optional([str], list(d.dnssl)),
            "rdnss": Optional([ip_address], []),
            "hop_limit": Optional(int, d.hop_limit),
        },
    )
    if any(a.version != 6 for a in raw["rdnss"]):
        raise StateFileError(path, "rdnss", "IPv6 addresses only")
    try:
        return Config(
            subnet_id=raw["subnet_id"],
            max_interval=raw["max_interval"],
            min_interval=raw["min_interval"],
            router_lifetime=raw["router_lifetime"],
            preferred_limit=raw["preferred_limit"],
            valid_limit=raw["valid_limit"],
            min_valid_lifetime=raw["min_valid_lifetime"],
            dnssl=tuple(raw["dnssl"]),
            rdnss=tuple(raw["rdnss"]),
            hop_limit=raw["hop_limit"],
        ).validate()
    except ValueError as e:
        raise StateFileError(path, None, str(e)) from None


def read_extra_prefixes(perm: Path) -> tuple[ipaddress.IPv6Network, ...]:
    """router7's prefixes.json: a list of IPNet objects (or, here, also "fd00::/64" strings)."""
    path = perm / EXTRA_PREFIXES
    if not path.exists():
        return ()
    return tuple(read_json(path, [_prefix]))


def read_memory(perm: Path) -> dict[ipaddress.IPv6Network, float]:
    """Prefixes hosts may still hold, from an earlier run; {} if unknown or unreadable."""
    path = perm / MEMORY
    if not path.exists():
        return {}
    raw = read_json(path, {"prefixes": [{"prefix": ip_network, "host_expiry": iso_time}]})
    return {e["prefix"]: e["host_expiry"].timestamp() for e in raw["prefixes"]}


def write_memory(perm: Path, memory: dict[ipaddress.IPv6Network, float]) -> None:
    entries = [
        {"prefix": p, "host_expiry": datetime.fromtimestamp(t, UTC)}
        for p, t in sorted(memory.items())
    ]
    write_json_atomic(perm / MEMORY, {"prefixes": entries})
