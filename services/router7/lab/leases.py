"""Read kea's memfile lease CSVs.

The memfile is an append-only journal (we run with lfc-interval 0, so it is
never compacted): every change appends the full lease, and a deleted lease is
appended with valid_lifetime 0. The current state is the last row per lease.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

# Kea's lease states; only "default" leases are held by a client.
STATE_DEFAULT = "0"
LEASE_TYPES6 = {"0": "IA_NA", "1": "IA_TA", "2": "IA_PD"}


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _held(row: dict[str, str], now: float) -> bool:
    try:
        valid = int(row.get("valid_lifetime") or 0)
        expire = int(row.get("expire") or 0)
    except ValueError:
        return False
    return valid > 0 and expire > now and row.get("state", STATE_DEFAULT) == STATE_DEFAULT


def current_leases4(path: Path, now: float | None = None) -> list[dict]:
    """Leases held right now: [{address, hwaddr, client_id, expire, hostname}]."""
    now = time.time() if now is None else now
    last: dict[str, dict[str, str]] = {}
    for row in _rows(path):
        last[row["address"]] = row
    return [
        {
            "address": r["address"],
            "hwaddr": r.get("hwaddr", ""),
            "client_id": r.get("client_id", ""),
            "expire": int(r["expire"]),
            "valid_lifetime": int(r["valid_lifetime"]),
            "hostname": r.get("hostname", ""),
        }
        for r in last.values()
        if _held(r, now)
    ]


def current_leases6(path: Path, now: float | None = None) -> list[dict]:
    """Leases held right now: [{type: IA_NA|IA_PD, address, prefix_len, duid, iaid, expire}].

    For IA_PD, `address` is the delegated prefix and `prefix` is "addr/len".
    """
    now = time.time() if now is None else now
    last: dict[tuple[str, str], dict[str, str]] = {}
    for row in _rows(path):
        last[(row["address"], row.get("lease_type", "0"))] = row
    out = []
    for r in last.values():
        if not _held(r, now):
            continue
        kind = LEASE_TYPES6.get(r.get("lease_type", "0"), r.get("lease_type", "?"))
        plen = int(r.get("prefix_len") or 128)
        out.append(
            {
                "type": kind,
                "address": r["address"],
                "prefix_len": plen,
                "prefix": f"{r['address']}/{plen}",
                "duid": r.get("duid", ""),
                "iaid": r.get("iaid", ""),
                "expire": int(r["expire"]),
                "valid_lifetime": int(r["valid_lifetime"]),
                "preferred_lifetime": int(r.get("pref_lifetime") or 0),
            }
        )
    return out
