"""The DHCPv6 lease and its state file, <perm>/dhcp6/wire/lease.json.

netconfigd (addresses, routes), radvd (LAN prefixes, RFC 9096 deprecation) and the
management listeners read this file, so its fields are a contract documented in
docs/services/dhcp6.md. Lifetimes are stored both as received (seconds, relative to
``obtained_at``) and as absolute times, so a reader never has to do the arithmetic.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

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

log = logging.getLogger(__name__)


def lease_path(perm: Path) -> Path:
    return Path(perm) / "dhcp6" / "wire" / "lease.json"


def to_datetime(seconds: float) -> datetime:
    """A reactor time (seconds since the epoch) as an aware datetime, whole seconds."""
    return datetime.fromtimestamp(int(seconds), UTC)


@dataclass(frozen=True)
class Held:
    """A delegated prefix or an IA_NA address as the client holds it."""

    network: IPv6Network  # the address of an IA_NA binding is a /128
    preferred_lifetime: int
    valid_lifetime: int
    preferred_until: datetime
    valid_until: datetime

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
    obtained_at: datetime
    renew_at: datetime
    rebind_at: datetime
    domains: tuple[str, ...] = ()
    server_address: str | None = None
    server_unicast: IPv6Address | None = None
    previous_prefixes: tuple[PreviousPrefix, ...] = field(default=())

    @property
    def valid_until(self) -> datetime:
        """When the last binding expires; after that a Rebind is pointless."""
        times = [h.valid_until for h in (*self.prefixes, *self.addresses)]
        return max(times) if times else self.obtained_at

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
    def from_json(cls, obj: dict, path: str = "<memory>") -> Lease:
        v = validate(obj, SCHEMA, path)

        def held(d: dict, key: str) -> Held:
            net = d[key] if key == "prefix" else IPv6Network(f"{d[key]}/128")
            return Held(
                net,
                d["preferred_lifetime"],
                d["valid_lifetime"],
                d["preferred_until"],
                d["valid_until"],
            )

        return cls(
            prefixes=tuple(held(d, "prefix") for d in v["prefixes"]),
            addresses=tuple(held(d, "address") for d in v["addresses"]),
            dns=tuple(v["dns"]),
            domains=tuple(v["domains"]),
            server_duid=bytes.fromhex(v["server_duid"]),
            client_duid=bytes.fromhex(v["client_duid"]),
            server_address=v["server_address"],
            server_unicast=v["server_unicast"],
            t1=v["t1"],
            t2=v["t2"],
            obtained_at=v["obtained_at"],
            renew_at=v["renew_at"],
            rebind_at=v["rebind_at"],
            previous_prefixes=tuple(
                PreviousPrefix(p["prefix"], p["preferred_until"], p["valid_until"])
                for p in v["previous_prefixes"]
            ),
        )


def _ipv6_network(value):
    net = ip_network(value)
    if net.version != 6:
        raise ValueError(f"not an IPv6 prefix: {value!r}")
    return net


def _hex(value):
    if not isinstance(value, str):
        raise ValueError("expected a hex string")
    bytes.fromhex(value)
    return value


_HELD = {
    "preferred_lifetime": int,
    "valid_lifetime": int,
    "preferred_until": iso_time,
    "valid_until": iso_time,
}
SCHEMA = {
    "prefixes": [{"prefix": _ipv6_network, **_HELD}],
    "addresses": Optional([{"address": ip_address, **_HELD}], []),
    "dns": Optional([ip_address], []),
    "domains": Optional([str], []),
    "server_duid": _hex,
    "client_duid": Optional(_hex, ""),
    "server_address": Optional(str),
    "server_unicast": Optional(ip_address),
    "t1": int,
    "t2": int,
    "obtained_at": iso_time,
    "renew_at": iso_time,
    "rebind_at": iso_time,
    "previous_prefixes": Optional(
        [{"prefix": _ipv6_network, "preferred_until": iso_time, "valid_until": iso_time}], []
    ),
}


def save(path: Path, lease: Lease) -> None:
    write_json_atomic(path, lease.to_json())


def load(path: Path) -> Lease | None:
    """The stored lease, or None if there is none or it is unreadable (logged)."""
    if not Path(path).exists():
        return None
    try:
        return Lease.from_json(read_json(path), str(path))
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
