"""radvd's files: the dhcp6 lease, its config, extra prefixes and its own memory.

Every reader returns plain values for plan.py and raises StateFileError (naming
the file and field) when a file exists but is wrong; a missing optional file
gives the default.
"""

from __future__ import annotations

import base64
import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router7.runtime.statefile import (
    Optional,
    StateFileError,
    ip_address,
    ip_network,
    iso_time,
    read_json,
    validate,
    write_json_atomic,
)

from .plan import Config, Delegated, Lease

LEASE = Path("dhcp6/wire/lease.json")
CONFIG = Path("radvd/config.json")
EXTRA_PREFIXES = Path("radvd/prefixes.json")
MEMORY = Path("radvd/advertised.json")

_LIFETIMES = {
    "preferred_lifetime": Optional(int),
    "valid_lifetime": Optional(int),
    "preferred_until": Optional(iso_time),
    "valid_until": Optional(iso_time),
}


def _object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {value!r}")
    return value


_LEASE_SCHEMA = {
    "prefixes": Optional([_object], []),
    "previous_prefixes": Optional([_object], []),
    "obtained_at": Optional(iso_time),
}


def _epoch(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def _go_ipnet(value: dict) -> ipaddress.IPv6Network:
    """router7's Go encoding of a net.IPNet: {"IP": "2a02:…", "Mask": base64 of the mask bytes}."""
    mask = base64.b64decode(value["Mask"], validate=True)
    prefixlen = int.from_bytes(mask, "big").bit_count()
    net = ipaddress.ip_network(f"{value['IP']}/{prefixlen}", strict=False)
    if net.version != 6:
        raise ValueError("not an IPv6 prefix")
    return net


def _prefix(value: Any) -> ipaddress.IPv6Network:
    if isinstance(value, dict) and "IP" in value and "Mask" in value:
        try:
            return _go_ipnet(value)
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"bad IPNet {value!r}: {e}") from None
    net = ip_network(value)
    if net.version != 6:
        raise ValueError(f"not an IPv6 prefix: {value!r}")
    return net


def _delegated(entry: dict, obtained_at: float | None, path, field: str) -> Delegated:
    if "IP" in entry:  # the Go original's lease: a bare IPNet, lifetimes unknown
        return Delegated(validate(entry, _prefix, path))
    try:
        e = validate(entry, {"prefix": _prefix, **_LIFETIMES}, path)
    except StateFileError as err:
        raise StateFileError(path, f"{field}.{err.field}", err.reason) from None
    preferred_until = _epoch(e["preferred_until"])
    valid_until = _epoch(e["valid_until"])
    # Lifetimes are the ones granted at obtained_at unless absolute times are given.
    if obtained_at is not None:
        if preferred_until is None and e["preferred_lifetime"] is not None:
            preferred_until = obtained_at + e["preferred_lifetime"]
        if valid_until is None and e["valid_lifetime"] is not None:
            valid_until = obtained_at + e["valid_lifetime"]
    return Delegated(e["prefix"], preferred_until, valid_until)


def read_lease(perm: Path) -> Lease | None:
    """The dhcp6 client's lease, or None when there is none (yet)."""
    path = perm / LEASE
    if not path.exists():
        return None
    raw = read_json(path, _LEASE_SCHEMA)
    obtained_at = _epoch(raw["obtained_at"])
    return Lease(
        prefixes=tuple(
            _delegated(p, obtained_at, path, f"prefixes[{i}]")
            for i, p in enumerate(raw["prefixes"])
        ),
        previous=tuple(
            _delegated(p, obtained_at, path, f"previous_prefixes[{i}]")
            for i, p in enumerate(raw["previous_prefixes"])
        ),
        obtained_at=obtained_at,
    )


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
