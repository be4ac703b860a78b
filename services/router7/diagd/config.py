"""diagd's configuration: ``<perm>/diagd/config.json``, overridden by flags.

    {"targets": ["203.0.113.10:80", "[2001:db8:ffff::10]:80"],
     "dns_server": "192.168.42.1", "dns_name": "www.google.ch", "ipv6": true}

A target with a name is probed over IPv4 and IPv6; an address literal only over
its own family. Without a DNS server diagd asks the router's own dnsd on the LAN
address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from router7.runtime.statefile import Optional, StateFileError, read_json

DEFAULT_TARGETS = ("www.google.ch:80",)
DEFAULT_DNS_NAME = "www.google.ch"

SCHEMA = {
    "targets": Optional([str], None),
    "dns_server": Optional(str),
    "dns_name": Optional(str),
    "ipv6": Optional(bool),
}


@dataclass(frozen=True)
class Target:
    host: str
    port: int

    @property
    def families(self) -> tuple[int, ...]:
        try:
            return (ipaddress.ip_address(self.host).version,)
        except ValueError:
            return (4, 6)

    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(text: str) -> Target:
    """``host:port``, ``1.2.3.4:80`` or ``[2001:db8::1]:80``; ValueError if malformed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"bad target {text!r}: want [address]:port")
        ipaddress.IPv6Address(host)
    else:
        host, sep, rest = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(f"bad target {text!r}: want host:port or [v6-address]:port")
    try:
        port = int(rest)
    except ValueError:
        raise ValueError(f"bad port in target {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad port in target {text!r}")
    return Target(host, port)


@dataclass(frozen=True)
class Config:
    targets: tuple[Target, ...] = field(
        default_factory=lambda: tuple(parse_target(t) for t in DEFAULT_TARGETS)
    )
    dns_server: str | None = None  # None: the LAN interface's IPv4 address
    dns_name: str = DEFAULT_DNS_NAME
    ipv6: bool = True  # whether IPv6 checks count for health


def load(path: Path, flags=None) -> Config:
    """The config file (if any) with flags on top; raises StateFileError if malformed."""
    obj = {"targets": None, "dns_server": None, "dns_name": None, "ipv6": None}
    if path.exists():
        obj = read_json(path, SCHEMA)
    targets = obj["targets"]
    if flags is not None and flags.target:
        targets = flags.target
    try:
        parsed = tuple(parse_target(t) for t in (targets or DEFAULT_TARGETS))
        dns_server = (flags and flags.dns_server) or obj["dns_server"]
        if dns_server is not None:
            ipaddress.ip_address(dns_server)
    except ValueError as e:
        raise StateFileError(path, None, str(e)) from None
    ipv6 = obj["ipv6"] if obj["ipv6"] is not None else True
    if flags is not None and flags.no_ipv6:
        ipv6 = False
    return Config(
        targets=parsed,
        dns_server=dns_server,
        dns_name=(flags and flags.dns_name) or obj["dns_name"] or DEFAULT_DNS_NAME,
        ipv6=ipv6,
    )
