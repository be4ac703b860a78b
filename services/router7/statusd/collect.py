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
from ipaddress import ip_address
from pathlib import Path

from router7 import SERVICES
from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp4d import store as dhcp4d_store
from router7.dhcp4d.oui import VendorDB
from router7.dhcp6 import lease as dhcp6_lease
from router7.failoverd import state as failover_state
from router7.runtime.notify import running_pid
from router7.runtime.statefile import StateFileError, format_time

LEASE4 = Path("dhcp4/wire/lease.json")
LEASE6 = Path("dhcp6/wire/lease.json")
LAN_LEASES = Path("dhcp4d/leases.json")
OUI_CSV = Path("dhcp4d/oui/oui.csv")


def _time(t: datetime | None) -> str | None:
    return format_time(t) if t is not None else None


def _error(e: StateFileError) -> dict:
    return {"file": e.path, "field": e.field, "reason": e.reason, "message": str(e)}


def _read(path: Path, read) -> tuple[str, object]:
    """("ok", data), ("missing", None) or ("error", error dict), from the file's owner's
    reader ``read``."""
    if not path.exists():
        return "missing", None
    try:
        return "ok", read(path)
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


def _lease(perm: Path, relpath: Path, read) -> tuple[dict, object]:
    """The section of a lease file and the lease (None unless the section is "ok")."""
    path = perm / relpath
    state, lease = _read(path, read)
    return _section(state, lease, path), lease if state == "ok" else None


def uplink4(perm: Path, now: datetime) -> dict:
    out, lease = _lease(perm, LEASE4, dhcp4_lease.read)
    if lease is None:
        return out
    expires = lease.expires_at
    out.update(
        address=str(lease.address),
        gateway=str(lease.router) if lease.router else None,
        dns=[str(a) for a in lease.dns],
        server=str(lease.server) if lease.server else None,
        lease_time=lease.lease_time,
        obtained_at=_time(lease.obtained_at),
        renew_at=_time(lease.renew_at),
        renew_in=_remaining(lease.renew_at, now),
        expires_at=_time(expires),
        expires_in=_remaining(expires, now),
        expired=expires is not None and expires <= now,
    )
    return out


def _held(key: str, net, preferred: datetime | None, valid: datetime | None, now) -> dict:
    return {
        key: str(net),
        "preferred_until": _time(preferred),
        "preferred_in": _remaining(preferred, now),
        "valid_until": _time(valid),
        "valid_in": _remaining(valid, now),
        "expired": valid is not None and valid <= now,
    }


def uplink6(perm: Path, now: datetime) -> dict:
    out, lease = _lease(perm, LEASE6, dhcp6_lease.read)
    if lease is None:
        return out
    out.update(
        prefixes=[
            _held("prefix", h.network, h.preferred_until, h.valid_until, now)
            for h in lease.prefixes
        ],
        addresses=[
            _held("address", h.network.network_address, h.preferred_until, h.valid_until, now)
            for h in lease.addresses
        ],
        dns=[str(a) for a in lease.dns],
        obtained_at=_time(lease.obtained_at),
        renew_at=_time(lease.renew_at),
        renew_in=_remaining(lease.renew_at, now),
        previous_prefixes=[
            _held("prefix", p.prefix, p.preferred_until, p.valid_until, now)
            for p in lease.previous_prefixes
        ],
    )
    return out


# --- uplink failover --------------------------------------------------------------------


def failover(perm: Path) -> dict:
    """failoverd's state (which uplink is active, since when, why); "missing" with one uplink."""
    path = failover_state.state_path(perm)
    state, data = _read(path, lambda p: failover_state.read(perm))
    out = _section(state, data, path)
    if state != "ok" or data is None:
        return out
    out.update(
        active=data.active,
        since=data.since,
        reason=data.reason,
        transitions=data.transitions,
        uplinks=[
            {"name": u.name, "priority": u.priority, "up": u.up, "carrier": u.carrier,
             "since": u.since, "reason": u.reason}
            for u in data.uplinks
        ],
    )  # fmt: skip
    return out


# --- LAN leases ------------------------------------------------------------------------


def lan_leases(perm: Path, now: datetime, vendors: VendorDB | None = None) -> dict:
    """dhcp4d's leases (through its owner's reader); a broken entry is reported by
    field, the others still shown."""
    path = perm / LAN_LEASES
    state, data = _read(path, dhcp4d_store.read)
    out = _section(state, data, path)
    out["leases"] = []
    if state != "ok":
        return out
    leases, errors = data
    if vendors is None:
        vendors = VendorDB.load(perm / OUI_CSV)
    for lease in leases:
        expiry = None if lease.static else datetime.fromtimestamp(lease.expiry, UTC)
        out["leases"].append(
            {
                "addr": str(lease.addr),
                "hardware_addr": lease.hardware_addr,
                "hostname": lease.hostname_override or lease.hostname,
                "vendor": vendors.vendor(lease.hardware_addr) or lease.vendor_class,
                "static": lease.static,
                "expiry": _time(expiry),
                "expires_in": _remaining(expiry, now),
                "active": expiry is None or expiry > now,
            }
        )
    # Active first, then by address (numerically), like a DHCP server's table.
    out["leases"].sort(key=lambda e: (not e["active"], int(ip_address(e["addr"]))))
    if errors:
        out["errors"] = [_error(e) for e in errors]
    return out


def system(
    perm: Path,
    version_file: Path = Path("/etc/router7/version"),
    cmdline: Path = Path("/proc/cmdline"),
) -> dict:
    """The image running (version, boot slot) and the last update (router7-updated's
    /perm/update/history.json), so the owner sees what an update did."""
    from router7.updated.bootpart import cmdline_args
    from router7.updated.history import History

    try:
        version = version_file.read_text().strip() or "unknown"
    except OSError:
        version = "unknown"
    try:
        args = cmdline_args(cmdline.read_text())
    except OSError:
        args = {}
    last = History(perm).last()
    return {
        "version": version,
        "slot": args.get("router7.slot"),
        "trial": args.get("router7.trial") == "1",
        "last_update": None
        if last is None
        else {
            k: last.get(k) for k in ("result", "reason", "from_version", "to_version", "started")
        },
    }


def collect(perm: Path, run_dir: Path, now: datetime, names=SERVICES) -> dict:
    """Every file-based section; the diag section is added by the caller (it is fetched)."""
    return {
        "generated_at": format_time(now),
        "services": services(run_dir, names),
        "uplink4": uplink4(perm, now),
        "uplink6": uplink6(perm, now),
        "failover": failover(perm),
        "lan": lan_leases(perm, now),
        "system": system(perm),
    }
