"""Lease validity from the uplink clients' state files (pure: file + now -> status).

router7's diagd judged the DHCPv4 lease by ``valid_until``, which router7's client
sets to the renew time T1 (reference §0.5, §17.2): a lease was "invalid" half-way
through its life, and valid past its end if renewals kept failing. We use the
lease's real end, ``expires_at``; a file without it (router7's Go client) falls
back to ``valid_until`` as a conservative lower bound.
"""

from __future__ import annotations

import base64
import ipaddress
from datetime import datetime, timedelta
from pathlib import Path

from router7.diagd.tree import CheckFailed
from router7.runtime.statefile import Optional, StateFileError, iso_time, read_json

DHCP4_SCHEMA = {
    "address": Optional(str),
    "client_ip": Optional(str),  # router7's field name
    "router": Optional(str),
    "expires_at": Optional(iso_time),
    "renew_at": Optional(iso_time),
    "valid_until": Optional(iso_time),
}

DHCP6_SCHEMA = {
    "prefixes": Optional(
        [
            {
                "prefix": Optional(str),
                "valid_lifetime": Optional(int),
                "valid_until": Optional(iso_time),
            }
        ],
        [],
    ),
    "obtained_at": Optional(iso_time),
    "valid_until": Optional(iso_time),
}


def _left(until: datetime, now: datetime) -> str:
    seconds = int((until - now).total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _read(path: Path, schema) -> dict:
    try:
        return read_json(path, schema)
    except StateFileError as e:
        if e.reason == "does not exist":
            raise CheckFailed(f"no lease ({path} does not exist)") from None
        raise CheckFailed(str(e)) from None


def dhcp4_status(path: Path, now: datetime) -> str:
    """Status of the DHCPv4 lease in ``path``; raises CheckFailed when it is not valid."""
    lease = _read(path, DHCP4_SCHEMA)
    address = lease["address"] or lease["client_ip"] or "?"
    end = lease["expires_at"] or lease["valid_until"]
    if end is None:
        raise CheckFailed(f"{path}: no expires_at")
    if end <= now:
        raise CheckFailed(f"lease of {address} expired {_left(now, end)} ago")
    return f"{address}, expires in {_left(end, now)}"


def _go_ipnet(obj: dict) -> str:
    """router7 wrote prefixes as Go net.IPNet objects: {"IP": "...", "Mask": base64}."""
    try:
        mask = base64.b64decode(obj["Mask"])
        length = int.from_bytes(mask, "big").bit_count()
        return str(ipaddress.ip_network(f"{obj['IP']}/{length}", strict=False))
    except (KeyError, TypeError, ValueError):
        return "?"


def dhcp6_status(path: Path, now: datetime) -> str:
    """Status of the delegated prefixes in ``path``; fails if none is still valid."""
    lease = _read(path, DHCP6_SCHEMA)
    valid, expired = [], []
    for p in lease["prefixes"]:
        end = p["valid_until"]
        if end is None and p["valid_lifetime"] is not None and lease["obtained_at"] is not None:
            end = lease["obtained_at"] + timedelta(seconds=p["valid_lifetime"])
        if end is None:
            end = lease["valid_until"]  # router7's file: no per-prefix times
        name = p["prefix"] or _go_ipnet(p)
        if end is not None and end > now:
            valid.append(f"{name} (valid {_left(end, now)})")
        else:
            expired.append(name)
    if valid:
        return ", ".join(valid)
    if expired:
        raise CheckFailed(f"delegated prefix {', '.join(expired)} expired")
    raise CheckFailed("no delegated prefix in the lease")
