"""``<perm>/dhcp4d/config.json``: what the owner may configure. Every field is optional.

    {
      "pool": {"start": "192.168.42.100", "end": "192.168.42.199"},
      "lease_time": 1200,
      "decline_time": 600,
      "domain": "lan",
      "static_leases": {
        "02:73:53:00:ca:fe": {"addr": "192.168.42.10", "hostname": "printer"}
      },
      "hostname_overrides": {"02:73:53:00:b0:0c": "tv"}
    }

Without a file the pool is lan0's whole subnet, leases last 20 minutes (router7's
value) and the domain is ``lan``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from router7.dhcp4d.leases import StaticLease, sanitize_hostname
from router7.runtime.statefile import Optional, read_json

DEFAULT_LEASE_TIME = 20 * 60
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _ipv4(value):
    if not isinstance(value, str):
        raise ValueError(f"expected an IPv4 address as a string, got {value!r}")
    return IPv4Address(value)


def _positive(value):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {value!r}")
    return value


def _domain(value):
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", value):
        raise ValueError(f"not a domain name: {value!r}")
    return value


def mac_key(value: str) -> str:
    """A MAC as the lowercase colon form the lease table uses ('AA-BB-..' accepted)."""
    mac = str(value).strip().lower().replace("-", ":")
    if not _MAC.match(mac):
        raise ValueError(f"not a MAC address: {value!r}")
    return mac


def _macs(spec):
    def check(value):
        if not isinstance(value, dict):
            raise ValueError("expected an object keyed by MAC address")
        return {mac_key(k): spec(v) for k, v in value.items()}

    return check


def _static(value):
    if not isinstance(value, dict) or "addr" not in value:
        raise ValueError('expected {"addr": "...", "hostname": "..."}')
    return StaticLease(_ipv4(value["addr"]), sanitize_hostname(value.get("hostname") or ""))


SCHEMA = {
    "pool": Optional({"start": Optional(_ipv4), "end": Optional(_ipv4)}, {}),
    "lease_time": Optional(_positive, DEFAULT_LEASE_TIME),
    "decline_time": Optional(_positive, 600),
    "domain": Optional(_domain, "lan"),
    "static_leases": Optional(_macs(_static), {}),
    "hostname_overrides": Optional(_macs(lambda v: sanitize_hostname(str(v))), {}),
}


@dataclass(frozen=True)
class Config:
    pool_start: IPv4Address | None = None
    pool_end: IPv4Address | None = None
    lease_time: int = DEFAULT_LEASE_TIME
    decline_time: int = 600
    domain: str = "lan"
    static_leases: dict[str, StaticLease] = field(default_factory=dict)
    hostname_overrides: dict[str, str] = field(default_factory=dict)


def load(path: Path) -> Config:
    """The config at ``path``; defaults when it does not exist. Raises StateFileError."""
    if not path.exists():
        return Config()
    raw = read_json(path, SCHEMA)
    return Config(
        pool_start=raw["pool"].get("start"),
        pool_end=raw["pool"].get("end"),
        lease_time=raw["lease_time"],
        decline_time=raw["decline_time"],
        domain=raw["domain"],
        static_leases=raw["static_leases"],
        hostname_overrides=raw["hostname_overrides"],
    )
