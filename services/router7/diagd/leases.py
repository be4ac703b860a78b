"""Lease validity from the uplink clients' state files (pure: file + now -> status),
read through their owners, router7.dhcp4.lease and router7.dhcp6.lease.

router7's diagd judged the DHCPv4 lease by ``valid_until``, which router7's client
sets to the renew time T1 (reference §0.5, §17.2): a lease was "invalid" half-way
through its life, and valid past its end if renewals kept failing. We use the
lease's real end, ``expires_at``; a file without it (router7's Go client) falls
back to ``valid_until`` as a conservative lower bound.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp6 import lease as dhcp6_lease
from router7.diagd.tree import CheckFailed
from router7.runtime.statefile import StateFileError


def _left(until: datetime, now: datetime) -> str:
    seconds = int((until - now).total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def _read(read, path: Path):
    """The lease through its owner's reader; CheckFailed when it is missing or wrong."""
    try:
        return read(path)
    except StateFileError as e:
        if e.reason == "does not exist":
            raise CheckFailed(f"no lease ({path} does not exist)") from None
        raise CheckFailed(str(e)) from None


def dhcp4_status(path: Path, now: datetime) -> str:
    """Status of the DHCPv4 lease in ``path``; raises CheckFailed when it is not valid."""
    lease = _read(dhcp4_lease.read, path)
    end = lease.expires_at  # router7's file: its valid_until (T1)
    if end is None:
        raise CheckFailed(f"{path}: no expires_at")
    if end <= now:
        raise CheckFailed(f"lease of {lease.address} expired {_left(now, end)} ago")
    return f"{lease.address}, expires in {_left(end, now)}"


def dhcp6_status(path: Path, now: datetime) -> str:
    """Status of the delegated prefixes in ``path``; fails if none is still valid."""
    lease = _read(dhcp6_lease.read, path)
    valid, expired = [], []
    for h in lease.prefixes:
        # router7's file has no per-prefix times: its valid_until (T1) is a lower bound.
        end = h.valid_until or lease.valid_until
        if end is not None and end > now:
            valid.append(f"{h.network} (valid {_left(end, now)})")
        else:
            expired.append(str(h.network))
    if valid:
        return ", ".join(valid)
    if expired:
        raise CheckFailed(f"delegated prefix {', '.join(expired)} expired")
    raise CheckFailed("no delegated prefix in the lease")
