"""``<perm>/dhcp4d/leases.json``: the lease table on disk, in router7's format.

dhcp4d owns this file: its ``Lease`` is the type and ``read`` the reader that dnsd
and statusd call (router7's dnsd imports dhcp4d's Lease the same way).

router7 writes a tab-indented JSON array of
``{"num", "addr", "hardware_addr", "hostname", "hostname_override", "expiry", "last_ack"}``
with Go timestamps (nanoseconds, zone offsets) and the zero time
``0001-01-01T00:00:00Z`` as the expiry of a static lease. We write the same
fields (UTC, second precision, the zero time for static leases, so dnsd and
router7's tools keep working) plus ``vendor_class``, and read both: an existing
router7 file is imported as is. Declined addresses go to ``declined.json``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from router7.dhcp4d.leases import Lease
from router7.runtime.statefile import (
    Optional,
    StateFileError,
    format_time,
    ip_address,
    iso_time,
    read_json,
    validate,
    write_bytes_atomic,
)

log = logging.getLogger(__name__)

GO_ZERO_TIME = "0001-01-01T00:00:00Z"

_ENTRY = {
    "addr": ip_address,
    "hardware_addr": str,
    "hostname": Optional(str, ""),
    "hostname_override": Optional(str, ""),
    "expiry": Optional(iso_time),
    "last_ack": Optional(iso_time),
    "vendor_class": Optional(str, ""),
}


def _seconds(t: datetime | None) -> float | None:
    """Epoch seconds, or None for Go's zero time (and absent values)."""
    if t is None or t.year <= 1:
        return None
    return t.timestamp()


def _time(seconds: float | None) -> str:
    if seconds is None:
        return GO_ZERO_TIME
    return format_time(datetime.fromtimestamp(seconds, UTC))


def to_json(leases: list[Lease], pool_start=None) -> list[dict]:
    out = []
    for lease in sorted(leases, key=lambda lease: lease.addr):
        out.append(
            {
                # router7's slot number, kept for its tools; we do not use it
                "num": int(lease.addr) - int(pool_start) if pool_start is not None else 0,
                "addr": str(lease.addr),
                "hardware_addr": lease.hardware_addr,
                "hostname": lease.hostname,
                "hostname_override": lease.hostname_override,
                "expiry": _time(lease.expiry),
                "last_ack": _time(lease.last_ack if lease.last_ack is not None else lease.expiry),
                "vendor_class": lease.vendor_class,
            }
        )
    return out


def parse(
    entries: object, path: Path | str = "<memory>"
) -> tuple[list[Lease], list[StateFileError]]:
    """Leases from a parsed leases.json (ours or router7's), and one error (naming the
    file and ``[i].field``) per bad entry, which is skipped: one broken entry must not
    cost the others their names. A file that is not a list raises StateFileError."""
    if not isinstance(entries, list):
        raise StateFileError(path, None, "expected a list of leases")
    leases, errors = [], []
    for i, raw in enumerate(entries):
        try:
            e = validate(raw, _ENTRY, path)
            if e["addr"].version != 4:
                raise StateFileError(path, "addr", "not an IPv4 address")
            mac = e["hardware_addr"].strip().lower().replace("-", ":")
            try:
                bytes.fromhex(mac.replace(":", ""))
            except ValueError:
                raise StateFileError(path, "hardware_addr", f"not a MAC address: {mac!r}") from None
        except StateFileError as err:
            errors.append(StateFileError(path, f"[{i}].{err.field or ''}", err.reason))
            continue
        expiry = _seconds(e["expiry"])
        last_ack = _seconds(e["last_ack"])
        leases.append(
            Lease(
                addr=e["addr"],
                hardware_addr=mac,
                hostname=e["hostname"],
                hostname_override=e["hostname_override"],
                expiry=expiry,
                # router7: a lease without last_ack gets last_ack = expiry
                last_ack=last_ack if last_ack is not None else expiry,
                vendor_class=e["vendor_class"],
            )
        )
    return leases, errors


def from_json(entries: object, path: Path | str = "<memory>") -> list[Lease]:
    """Leases from a parsed leases.json; bad entries are logged and skipped."""
    leases, errors = parse(entries, path)
    for err in errors:
        log.warning("skipping lease: %s", err)
    return leases


def read(path: Path) -> tuple[list[Lease], list[StateFileError]]:
    """The one reader of leases.json for other services (dnsd, statusd): the good
    leases and the bad entries' errors; StateFileError if the file is missing or broken."""
    return parse(read_json(path), path)


def load(path: Path) -> list[Lease]:
    """dhcp4d's own start-up read: [] when absent. An unreadable file is kept aside, not lost."""
    if not path.exists():
        return []
    try:
        return from_json(read_json(path), path)
    except StateFileError as e:
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        log.error("%s; moved it to %s and starting without leases", e, aside)
        return []


def save(path: Path, leases: list[Lease], pool_start=None) -> None:
    # Tab-indented like router7's, so a diff against an old file stays readable.
    text = json.dumps(to_json(leases, pool_start), indent="\t") + "\n"
    write_bytes_atomic(path, text.encode())


def load_declined(path: Path) -> dict:
    """``declined.json``: {"addr": "until (ISO 8601)"}; unreadable → {}."""
    from ipaddress import IPv4Address

    try:
        raw = read_json(path, {})
        return {IPv4Address(a): _seconds(iso_time(t)) or 0.0 for a, t in raw.items()}
    except (StateFileError, ValueError, AttributeError) as e:
        if path.exists():
            log.warning("ignoring %s", e)
        return {}


def save_declined(path: Path, declined: dict) -> None:
    text = json.dumps({str(a): _time(t) for a, t in sorted(declined.items())}, indent="\t")
    write_bytes_atomic(path, (text + "\n").encode())
