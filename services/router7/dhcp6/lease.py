"""The DHCPv6 lease and its state file, <perm>/dhcp6/wire/lease.json.

netconfigd (addresses, routes), radvd (LAN prefixes, RFC 9096 deprecation), dnsd
(resolvers), diagd and statusd read this file, so its fields are a contract documented
in docs/services/dhcp6.md. This module owns it: ``read`` is the one reader every
consumer calls, and it accepts the Go router7's file (prefixes as Go ``net.IPNet``
objects, a ``valid_until`` that is T1, no lifetimes) as well as ours. Lifetimes are
stored both as received (seconds, relative to ``obtained_at``) and as absolute
times, so a reader never has to do the arithmetic.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from router7.runtime.statefile import (
    Optional,
    StateFileError,
    ip_address,
    ip_prefix,
    iso_time,
    read_json,
    validate,
    write_json_atomic,
)
from router7.runtime.uplink import state_dir_name

log = logging.getLogger(__name__)


def lease_path(perm: Path, uplink: str = "uplink0") -> Path:
    """``<perm>/dhcp6/wire/lease.json``; a backup uplink's is ``dhcp6/uplink1/lease.json``."""
    return Path(perm) / "dhcp6" / state_dir_name(uplink) / "lease.json"


def to_datetime(seconds: float) -> datetime:
    """A reactor time (seconds since the epoch) as an aware datetime, whole seconds."""
    return datetime.fromtimestamp(int(seconds), UTC)


@dataclass(frozen=True)
class Held:
    """A delegated prefix or an IA_NA address as the client holds it.

    The lifetimes are None only when they are unknown: a Go router7 file
    recorded none (``known`` is then False)."""

    network: IPv6Network  # the address of an IA_NA binding is a /128
    preferred_lifetime: int | None
    valid_lifetime: int | None
    preferred_until: datetime | None
    valid_until: datetime | None

    @property
    def known(self) -> bool:
        return self.valid_until is not None

    def remaining(self, now: datetime) -> Held:
        """The same binding with lifetimes counted from ``now`` (for a rewritten lease)."""
        return replace(
            self,
            preferred_lifetime=max(0, int((self.preferred_until - now).total_seconds())),
            valid_lifetime=max(0, int((self.valid_until - now).total_seconds())),
        )


@dataclass(frozen=True)
class PreviousPrefix:
    """A prefix the ISP no longer delegates; radvd deprecates it until valid_until (RFC 9096)."""

    prefix: IPv6Network
    preferred_until: datetime
    valid_until: datetime


@dataclass(frozen=True)
class Lease:
    prefixes: tuple[Held, ...]
    addresses: tuple[Held, ...]
    dns: tuple[IPv6Address, ...]
    server_duid: bytes
    client_duid: bytes
    t1: int
    t2: int
    # None only in a lease read from a file that does not record them (the Go
    # router7's has only valid_until, its T1, which then stands in for renew_at).
    obtained_at: datetime | None
    renew_at: datetime | None
    rebind_at: datetime | None
    domains: tuple[str, ...] = ()
    server_address: str | None = None
    server_unicast: IPv6Address | None = None
    previous_prefixes: tuple[PreviousPrefix, ...] = field(default=())

    @property
    def valid_until(self) -> datetime | None:
        """When the last binding expires; after that a Rebind is pointless. A Go
        router7 lease has no lifetimes; its renew time is the lower bound we know."""
        times = [h.valid_until for h in (*self.prefixes, *self.addresses) if h.known]
        return max(times) if times else (self.obtained_at or self.renew_at)

    def to_json(self) -> dict:
        def held(h: Held, key: str) -> dict:
            value = h.network if key == "prefix" else h.network.network_address
            return {
                key: str(value),
                "preferred_lifetime": h.preferred_lifetime,
                "valid_lifetime": h.valid_lifetime,
                "preferred_until": h.preferred_until,
                "valid_until": h.valid_until,
            }

        return {
            "prefixes": [held(h, "prefix") for h in self.prefixes],
            "addresses": [held(h, "address") for h in self.addresses],
            "dns": [str(a) for a in self.dns],
            "domains": list(self.domains),
            "server_duid": self.server_duid.hex(),
            "server_address": self.server_address,
            "server_unicast": str(self.server_unicast) if self.server_unicast else None,
            "client_duid": self.client_duid.hex(),
            "t1": self.t1,
            "t2": self.t2,
            "obtained_at": self.obtained_at,
            "renew_at": self.renew_at,
            "rebind_at": self.rebind_at,
            # Go's router7 wrote the renew time here; this is the real end of the lease.
            "valid_until": self.valid_until,
            "previous_prefixes": [
                {
                    "prefix": str(p.prefix),
                    "preferred_until": p.preferred_until,
                    "valid_until": p.valid_until,
                }
                for p in self.previous_prefixes
            ],
        }

    @classmethod
    def from_json(cls, obj: object, path: str | Path = "<memory>") -> Lease:
        """From a parsed lease.json: ours, or the Go router7's (see ``read``)."""
        v = validate(obj, SCHEMA, path)
        obtained = v["obtained_at"]
        # router7's only time is valid_until, its renew time (T1).
        renew_at = v["renew_at"] or v["valid_until"]

        def held(d: dict, key: str, field: str) -> Held:
            if key == "prefix" and d.get("prefix") is None:
                go = {k: d[k] for k in ("IP", "Mask") if k in d}
                return Held(_ipv6_prefix(go, path, field), None, None, None, None)
            if key == "address" and d[key].version != 6:
                raise StateFileError(path, f"{field}.address", "not an IPv6 address")
            net = d[key] if key == "prefix" else IPv6Network(f"{d[key]}/128")

            # Absolute times win; else the lifetimes granted at obtained_at.
            def until(kind: str) -> datetime | None:
                granted = d[f"{kind}_lifetime"]
                if d[f"{kind}_until"] is not None or granted is None or obtained is None:
                    return d[f"{kind}_until"]
                return obtained + timedelta(seconds=granted)

            return Held(
                net,
                d["preferred_lifetime"],
                d["valid_lifetime"],
                until("preferred"),
                until("valid"),
            )

        return cls(
            prefixes=tuple(
                held(d, "prefix", f"prefixes[{i}]") for i, d in enumerate(v["prefixes"])
            ),
            addresses=tuple(
                held(d, "address", f"addresses[{i}]") for i, d in enumerate(v["addresses"])
            ),
            dns=tuple(v["dns"]),
            domains=tuple(v["domains"]),
            server_duid=bytes.fromhex(v["server_duid"]),
            client_duid=bytes.fromhex(v["client_duid"]),
            server_address=v["server_address"],
            server_unicast=v["server_unicast"],
            t1=v["t1"],
            t2=v["t2"],
            obtained_at=obtained,
            renew_at=renew_at,
            rebind_at=v["rebind_at"] or renew_at,
            previous_prefixes=tuple(
                PreviousPrefix(
                    p["prefix"], p["preferred_until"] or p["valid_until"], p["valid_until"]
                )
                for p in v["previous_prefixes"]
            ),
        )


def _ipv6_prefix(value, path, field: str) -> IPv6Network:
    try:
        return _ipv6_network(value)
    except ValueError as e:
        raise StateFileError(path, field, str(e)) from None


def _ipv6_network(value):
    net = ip_prefix(value)
    if net.version != 6:
        raise ValueError(f"not an IPv6 prefix: {value!r}")
    return net


def _hex(value):
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    bytes.fromhex(value)
    return value


_HELD = {
    "preferred_lifetime": Optional(int),
    "valid_lifetime": Optional(int),
    "preferred_until": Optional(iso_time),
    "valid_until": Optional(iso_time),
}
# Lenient where a Go router7 file or a hand-written one lacks a field; the values a
# consumer needs (prefixes, addresses, resolvers) are checked strictly.
SCHEMA = {
    # A prefix entry is ours ({"prefix": "2a02:…/48", lifetimes…}) or router7's: the Go
    # IPNet itself, decoded in Lease.from_json.
    "prefixes": Optional([{"prefix": Optional(_ipv6_network), **_HELD}], []),
    "addresses": Optional([{"address": ip_address, **_HELD}], []),
    "dns": Optional([ip_address], []),
    "domains": Optional([str], []),
    "server_duid": Optional(_hex, ""),
    "client_duid": Optional(_hex, ""),
    "server_address": Optional(str),
    "server_unicast": Optional(ip_address),
    "t1": Optional(int, 0),
    "t2": Optional(int, 0),
    "obtained_at": Optional(iso_time),
    "renew_at": Optional(iso_time),
    "rebind_at": Optional(iso_time),
    "valid_until": Optional(iso_time),  # ours: the end of the lease; router7's: T1
    "previous_prefixes": Optional(
        [{"prefix": _ipv6_network, "preferred_until": Optional(iso_time), "valid_until": iso_time}],
        [],
    ),
}


def read(path: str | Path) -> Lease:
    """The one reader of lease.json, for every service: raises StateFileError naming
    the file and field when it is missing or wrong."""
    return Lease.from_json(read_json(path), path)


def save(path: Path, lease: Lease) -> None:
    write_json_atomic(path, lease.to_json())


def load(path: Path) -> Lease | None:
    """The stored lease, or None if there is none or it is unreadable (logged)."""
    if not Path(path).exists():
        return None
    try:
        return read(path)
    except StateFileError as e:
        # Not fatal: we solicit a new lease, and the next write replaces the file.
        log.warning("ignoring stored lease: %s", e)
        return None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def prune_previous(
    previous, now: datetime, current: tuple[Held, ...]
) -> tuple[PreviousPrefix, ...]:
    """Drop previous prefixes whose valid lifetime ended or that are delegated again."""
    current_nets = {h.network for h in current}
    return tuple(p for p in previous if p.valid_until > now and p.prefix not in current_nets)
