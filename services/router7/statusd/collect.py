"""Everything the status page shows, read from state files into plain JSON data.

Pure reading, no sockets: each section is a dict with ``state`` one of
``"ok"`` (data present), ``"missing"`` (the producer has not written the file
yet: normal right after a first boot) or ``"error"`` (the file is broken; then
``error`` holds the file, the dotted field and the reason, so the owner can fix
or delete exactly that file). One broken file never hides the other sections.
The same dicts are rendered as HTML and served as ``/status.json``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from router7.dhcp4d.oui import VendorDB
from router7.runtime.notify import running_pid
from router7.runtime.statefile import (
    Optional,
    StateFileError,
    format_time,
    ip_address,
    ip_interface,
    ip_network,
    iso_time,
    read_json,
    validate,
)

# The services of a router7, in the order they start (lab/router.py, systemd units).
SERVICES = (
    "netconfigd",
    "dhcp4",
    "dhcp6",
    "dhcp4d",
    "radvd",
    "dnsd",
    "captured",
    "diagd",
    "backupd",
    "statusd",
)

LEASE4 = Path("dhcp4/wire/lease.json")
LEASE6 = Path("dhcp6/wire/lease.json")
LAN_LEASES = Path("dhcp4d/leases.json")
OUI_CSV = Path("dhcp4d/oui/oui.csv")

# Lenient schemas: only what the page shows, optional wherever a router7 (Go) file
# or an older writer may lack it. Unknown fields are ignored by read_json.
_LEASE4 = {
    "address": ip_interface,
    "router": Optional(ip_address),
    "dns": Optional([ip_address], []),
    "server": Optional(ip_address),
    "lease_time": Optional(int),
    "obtained_at": Optional(iso_time),
    "renew_at": Optional(iso_time),
    "rebind_at": Optional(iso_time),
    "expires_at": Optional(iso_time),
    "valid_until": Optional(iso_time),  # router7's files: T1, used when expires_at is absent
}
_HELD = {
    "preferred_lifetime": Optional(int),
    "valid_lifetime": Optional(int),
    "preferred_until": Optional(iso_time),
    "valid_until": Optional(iso_time),
}
_LEASE6 = {
    "prefixes": Optional([{"prefix": ip_network, **_HELD}], []),
    "addresses": Optional([{"address": ip_address, **_HELD}], []),
    "dns": Optional([ip_address], []),
    "obtained_at": Optional(iso_time),
    "renew_at": Optional(iso_time),
    "rebind_at": Optional(iso_time),
    "previous_prefixes": Optional(
        [{"prefix": ip_network, "preferred_until": Optional(iso_time), "valid_until": iso_time}],
        [],
    ),
}
_LAN_LEASE = {
    "addr": ip_address,
    "hardware_addr": str,
    "hostname": Optional(str, ""),
    "hostname_override": Optional(str, ""),
    "expiry": Optional(iso_time),
    "vendor_class": Optional(str, ""),
}


def _time(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


def _error(e: StateFileError) -> dict:
    return {"file": e.path, "field": e.field, "reason": e.reason, "message": str(e)}


def _read(path: Path, schema) -> tuple[str, object]:
    """("ok", data), ("missing", None) or ("error", error dict)."""
    if not path.exists():
        return "missing", None
    try:
        return "ok", read_json(path, schema)
    except StateFileError as e:
        return "error", _error(e)


def _section(state: str, payload, path: Path) -> dict:
    out: dict = {"state": state, "file": str(path)}
    if state == "error":
        out["error"] = payload
    return out


# --- services ------------------------------------------------------------------


def _clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")


def process_uptime(pid: int, proc: Path = Path("/proc")) -> float | None:
    """Seconds since ``pid`` started (field 22 of /proc/PID/stat against /proc/uptime)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        boot = float((proc / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    started = int(stat.rsplit(")", 1)[1].split()[19]) / _clock_ticks()
    return max(0.0, boot - started)


def services(run_dir: Path, names=SERVICES) -> list[dict]:
    out = []
    for name in names:
        pid = running_pid(run_dir, name)
        uptime = process_uptime(pid) if pid is not None else None
        out.append(
            {
                "name": name,
                "running": pid is not None,
                "pid": pid,
                "uptime_seconds": round(uptime) if uptime is not None else None,
            }
        )
    return out


# --- uplink leases -----------------------------------------------------------------


def _remaining(until: datetime | None, now: datetime) -> int | None:
    return round((until - now).total_seconds()) if until is not None else None


def uplink4(perm: Path, now: datetime) -> dict:
    path = perm / LEASE4
    state, data = _read(path, _LEASE4)
    out = _section(state, data, path)
    if state != "ok":
        return out
    expires = data["expires_at"] or data["valid_until"]
    out.update(
        address=str(data["address"]),
        gateway=str(data["router"]) if data["router"] else None,
        dns=[str(a) for a in data["dns"]],
        server=str(data["server"]) if data["server"] else None,
        lease_time=data["lease_time"],
        obtained_at=_time(data["obtained_at"]),
        renew_at=_time(data["renew_at"]),
        renew_in=_remaining(data["renew_at"], now),
        expires_at=_time(expires),
        expires_in=_remaining(expires, now),
        expired=expires is not None and expires <= now,
    )
    return out


def _until(held: dict, kind: str, obtained: datetime | None) -> datetime | None:
    """Absolute end of a lifetime: the ``*_until`` field, else obtained_at + granted."""
    if held.get(f"{kind}_until") is not None:
        return held[f"{kind}_until"]
    granted = held.get(f"{kind}_lifetime")
    if granted is None or obtained is None:
        return None
    return datetime.fromtimestamp(obtained.timestamp() + granted, UTC)


def _held(item: dict, key: str, obtained: datetime | None, now: datetime) -> dict:
    preferred = _until(item, "preferred", obtained)
    valid = _until(item, "valid", obtained)
    return {
        key: str(item[key]),
        "preferred_until": _time(preferred),
        "preferred_in": _remaining(preferred, now),
        "valid_until": _time(valid),
        "valid_in": _remaining(valid, now),
        "expired": valid is not None and valid <= now,
    }


def uplink6(perm: Path, now: datetime) -> dict:
    path = perm / LEASE6
    state, data = _read(path, _LEASE6)
    out = _section(state, data, path)
    if state != "ok":
        return out
    obtained = data["obtained_at"]
    out.update(
        prefixes=[_held(p, "prefix", obtained, now) for p in data["prefixes"]],
        addresses=[_held(a, "address", obtained, now) for a in data["addresses"]],
        dns=[str(a) for a in data["dns"]],
        obtained_at=_time(obtained),
        renew_at=_time(data["renew_at"]),
        renew_in=_remaining(data["renew_at"], now),
        previous_prefixes=[_held(p, "prefix", None, now) for p in data["previous_prefixes"]],
    )
    return out


# --- LAN leases ------------------------------------------------------------------------


def lan_leases(perm: Path, now: datetime, vendors: VendorDB | None = None) -> dict:
    """dhcp4d's leases; a broken entry is reported by field, the others still shown."""
    path = perm / LAN_LEASES
    state, data = _read(path, None)
    if state == "ok" and not isinstance(data, list):
        state, data = "error", _error(StateFileError(path, None, "expected a list of leases"))
    out = _section(state, data, path)
    out["leases"] = []
    if state != "ok":
        return out
    if vendors is None:
        vendors = VendorDB.load(perm / OUI_CSV)
    errors, keys = [], []
    for i, raw in enumerate(data):
        try:
            e = validate(raw, _LAN_LEASE)
        except StateFileError as err:
            errors.append(_error(StateFileError(path, f"[{i}].{err.field}", err.reason)))
            continue
        expiry = e["expiry"]
        static = expiry is None or expiry.year <= 1  # Go's zero time marks a static lease
        mac = e["hardware_addr"].lower()
        addr = e["addr"]
        out["leases"].append(
            {
                "addr": str(addr),
                "hardware_addr": mac,
                "hostname": e["hostname_override"] or e["hostname"],
                "vendor": vendors.vendor(mac) or e["vendor_class"],
                "static": static,
                "expiry": None if static else _time(expiry),
                "expires_in": None if static else _remaining(expiry, now),
                "active": static or expiry > now,
            }
        )
        keys.append((not out["leases"][-1]["active"], addr.version, int(addr)))
    # Active first, then by address (numerically), like a DHCP server's table.
    order = sorted(range(len(keys)), key=keys.__getitem__)
    out["leases"] = [out["leases"][i] for i in order]
    if errors:
        out["errors"] = errors
    return out


def collect(perm: Path, run_dir: Path, now: datetime, names=SERVICES) -> dict:
    """Every file-based section; the diag section is added by the caller (it is fetched)."""
    return {
        "generated_at": format_time(now),
        "services": services(run_dir, names),
        "uplink4": uplink4(perm, now),
        "uplink6": uplink6(perm, now),
        "lan": lan_leases(perm, now),
    }
