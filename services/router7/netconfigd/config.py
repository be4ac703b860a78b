"""netconfigd's inputs: the three config files and the two lease files.

netconfigd owns the config files (``read_interfaces`` serves the other services);
the lease files are read through their owners, router7.dhcp4.lease and
router7.dhcp6.lease. router7's schemas are accepted as they are (a router7 /perm
moves over), plus the fields the Python DHCP clients add. Every file is optional: a missing file means
"nothing of this kind" (router7 failed without interfaces.json, see reference §17.2).

A malformed file must never take the router offline. ``ConfigStore`` keeps the last
good parse of each file, in memory and in a cache under the run directory (which
survives a restart of netconfigd but not a reboot), and falls back to it, reporting
the error with path and field.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp6 import lease as dhcp6_lease
from router7.runtime.statefile import (
    Optional,
    StateFileError,
    ip_address,
    ip_interface,
    ip_network,
    read_json_raw,
    validate,
    write_bytes_atomic,
)

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# --- converters (raise ValueError; statefile turns that into path + field) -----

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# What the kernel accepts as a name and what is safe to put in an nft script verbatim.
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_PORT_RE = re.compile(r"^(\d+)(?:-(\d+))?$")
FEC_MODES = ("", "RS", "BaseR", "LLRS", "Auto", "None", "Off")


def _mac(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a MAC address string, got {json.dumps(value)}")
    mac = value.strip().lower().replace("-", ":")
    if mac and not _MAC_RE.match(mac):
        raise ValueError(f"not a MAC address: {value!r}")
    return mac


def _ifname(value: Any) -> str:
    if not isinstance(value, str) or not _IFNAME_RE.match(value):
        raise ValueError(f"not an interface name (1-15 of A-Z a-z 0-9 _ . -): {value!r}")
    return value


def _maybe(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Go's omitempty: an empty string means 'not set'."""

    def check(value: Any) -> Any:
        return None if value == "" else convert(value)

    return check


def _cidr(value: Any) -> IPInterface:
    """An address with its prefix length; a bare address would silently become a /32."""
    if isinstance(value, str) and "/" not in value:
        raise ValueError(f"needs a prefix length, e.g. 192.168.42.1/24: {value!r}")
    return ip_interface(value)


def _fec(value: Any) -> str:
    if value not in FEC_MODES:
        raise ValueError(f"unknown FEC mode {value!r} (one of {', '.join(FEC_MODES[1:])})")
    return value


def _mtu(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (value == 0 or 68 <= value <= 65535)
    ):
        raise ValueError(f"MTU must be 0 (unchanged) or 68..65535, got {json.dumps(value)}")
    return value


def port_range(value: Any) -> tuple[int, int]:
    """router7's port syntax: "N" or "N-M", 16 bits."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f'expected a port like "80" or "8000-8010", got {json.dumps(value)}')
    m = _PORT_RE.match(value.strip())
    if not m:
        raise ValueError(f"not a port or port range: {value!r}")
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    if not (1 <= lo <= hi <= 65535):
        raise ValueError(f"port range out of order or outside 1..65535: {value!r}")
    return (lo, hi)


def _protos(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise ValueError(f'expected "tcp", "udp" or "tcp,udp", got {json.dumps(value)}')
    if value.strip() == "":
        return ("tcp",)  # router7: an empty proto means tcp
    protos = tuple(p.strip() for p in value.split(","))
    for p in protos:
        if p not in ("tcp", "udp"):
            raise ValueError(f"unknown protocol {p!r} (tcp, udp or a comma list)")
    return tuple(dict.fromkeys(protos))


def _priority(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
        raise ValueError(f"priority must be 0..1000 (lower wins), got {json.dumps(value)}")
    return value


def _bounded(lo: int, hi: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"expected a whole number {lo}..{hi}, got {json.dumps(value)}")
        return value

    return check


def _wg_key(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a base64 key")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise ValueError("not base64") from None
    if len(raw) != 32:
        raise ValueError(f"a WireGuard key has 32 bytes, this one {len(raw)}")
    return value


# --- the parsed model ----------------------------------------------------------


@dataclass(frozen=True)
class ExtraRoute:
    destination: IPNetwork
    gateway: IPAddress | None = None


@dataclass(frozen=True)
class InterfaceConfig:
    name: str
    hardware_addr: str | None = None
    spoof_hardware_addr: str | None = None
    addr: IPInterface | None = None
    extra_addrs: tuple[IPInterface, ...] = ()
    extra_routes: tuple[ExtraRoute, ...] = ()
    mtu: int = 0
    fec: str = ""
    # Uplink failover: the healthy uplink with the lowest number carries the traffic.
    # None: the uplink's number (uplink0 -> 0, uplink1 -> 1).
    priority: int | None = None


@dataclass(frozen=True)
class FailoverConfig:
    """The ``failover`` object of interfaces.json (docs/failover.md)."""

    # Probed through each uplink besides its gateway; an uplink is healthy while one answers.
    targets: tuple[IPAddress, ...] = ()
    interval_ms: int = 500  # one probe round per uplink every interval
    down_after: int = 3  # consecutive lost rounds
    up_after: int = 4  # consecutive answered rounds


@dataclass(frozen=True)
class BridgeConfig:
    name: str
    interface_hardware_addrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Interfaces:
    interfaces: tuple[InterfaceConfig, ...] = ()
    bridges: tuple[BridgeConfig, ...] = ()
    failover: FailoverConfig = field(default_factory=FailoverConfig)

    def by_name(self, name: str) -> InterfaceConfig | None:
        return next((i for i in self.interfaces if i.name == name), None)

    def uplink_priorities(self, primary: str = "uplink0") -> dict[str, int]:
        """{uplink: priority} of every configured uplink (``uplink*``), ``primary`` always."""
        out = {}
        for i in self.interfaces:
            if i.name == primary or (i.name.startswith("uplink") and i.name[6:].isdigit()):
                default = int(i.name[6:]) if i.name[6:].isdigit() else 0
                out[i.name] = i.priority if i.priority is not None else default
        out.setdefault(primary, 0)
        return out


@dataclass(frozen=True)
class Forwarding:
    protos: tuple[str, ...]
    port: tuple[int, int]
    dest_addr: IPAddress
    dest_port: tuple[int, int] | None  # None: keep the original port(s)


@dataclass(frozen=True)
class WireguardPeer:
    public_key: str
    endpoint: str = ""
    allowed_ips: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True)
class WireguardInterface:
    name: str
    private_key: str
    port: int = 0
    peers: tuple[WireguardPeer, ...] = ()


@dataclass(frozen=True)
class Dhcp4Lease:
    address: ipaddress.IPv4Interface
    router: ipaddress.IPv4Address | None = None


@dataclass(frozen=True)
class Dhcp6Lease:
    prefixes: tuple[ipaddress.IPv6Network, ...] = ()
    addresses: tuple[ipaddress.IPv6Address, ...] = ()


@dataclass(frozen=True)
class Inputs:
    """Everything a plan is computed from (a snapshot of /perm)."""

    interfaces: Interfaces = field(default_factory=Interfaces)
    forwardings: tuple[Forwarding, ...] = ()
    wireguard: tuple[WireguardInterface, ...] = ()
    dhcp4: Dhcp4Lease | None = None
    dhcp6: Dhcp6Lease | None = None
    # Failover (docs/failover.md): each backup uplink's DHCPv4 lease, and the uplink
    # failoverd chose to carry the default route (None: the primary, as with one uplink).
    backup_dhcp4: tuple[tuple[str, Dhcp4Lease], ...] = ()
    backup_dhcp6: tuple[tuple[str, Dhcp6Lease], ...] = ()
    active_uplink: str | None = None


# --- schemas and parsers (one per file) ----------------------------------------

_INTERFACES_SCHEMA = {
    "interfaces": Optional(
        [
            {
                "name": _ifname,
                "hardware_addr": Optional(_mac, ""),
                "spoof_hardware_addr": Optional(_mac, ""),
                "addr": Optional(_maybe(_cidr), None),
                "extra_addrs": Optional([_cidr], []),
                "extra_routes": Optional(
                    [{"destination": ip_network, "gateway": Optional(_maybe(ip_address), None)}],
                    [],
                ),
                "mtu": Optional(_mtu, 0),
                "fec": Optional(_fec, ""),
                "priority": Optional(_maybe(_priority), None),
            }
        ],
        [],
    ),
    "bridges": Optional([{"name": _ifname, "interface_hardware_addrs": Optional([_mac], [])}], []),
    "failover": Optional(
        {
            "targets": Optional([ip_address], []),
            "interval_ms": Optional(_bounded(100, 60000), 500),
            "down_after": Optional(_bounded(1, 100), 3),
            "up_after": Optional(_bounded(1, 100), 4),
        },
        {},
    ),
}


def parse_interfaces(obj: Any, path: str) -> Interfaces:
    v = validate(obj, _INTERFACES_SCHEMA, path)
    ifaces = tuple(
        InterfaceConfig(
            name=i["name"],
            hardware_addr=i["hardware_addr"] or None,
            spoof_hardware_addr=i["spoof_hardware_addr"] or None,
            addr=i["addr"],
            extra_addrs=tuple(i["extra_addrs"]),
            extra_routes=tuple(
                ExtraRoute(r["destination"], r["gateway"]) for r in i["extra_routes"]
            ),
            mtu=i["mtu"],
            fec=i["fec"],
            priority=i["priority"],
        )
        for i in v["interfaces"]
    )
    bridges = tuple(
        BridgeConfig(b["name"], tuple(m for m in b["interface_hardware_addrs"] if m))
        for b in v["bridges"]
    )
    seen: set[str] = set()
    for n, i in enumerate(ifaces):
        if i.name in seen:
            raise StateFileError(path, f"interfaces[{n}].name", f"{i.name!r} is configured twice")
        seen.add(i.name)
    f = v["failover"]
    failover = FailoverConfig(
        targets=tuple(f.get("targets", ())),
        interval_ms=f.get("interval_ms", 500),
        down_after=f.get("down_after", 3),
        up_after=f.get("up_after", 4),
    )
    return Interfaces(ifaces, bridges, failover)


_FORWARDINGS_SCHEMA = {
    "forwardings": Optional(
        [
            {
                "proto": Optional(_protos, ("tcp",)),
                "port": port_range,
                "dest_addr": ip_address,
                "dest_port": Optional(_maybe(port_range), None),
            }
        ],
        [],
    )
}


def parse_forwardings(obj: Any, path: str) -> tuple[Forwarding, ...]:
    v = validate(obj, _FORWARDINGS_SCHEMA, path)
    out = []
    for n, f in enumerate(v["forwardings"]):
        where = f"forwardings[{n}]"
        port, dest_port, addr = f["port"], f["dest_port"], f["dest_addr"]
        if dest_port is not None and dest_port[1] - dest_port[0] not in (0, port[1] - port[0]):
            raise StateFileError(
                path, f"{where}.dest_port", "must be one port or a range as long as 'port'"
            )
        if addr.version == 6 and dest_port not in (None, port):
            # An IPv6 entry opens a pinhole to a routed LAN address: no NAT, no port change.
            raise StateFileError(
                path, f"{where}.dest_port", "IPv6 forwardings cannot change the port"
            )
        out.append(Forwarding(f["proto"], port, addr, dest_port))
    return tuple(out)


def _endpoint(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError('expected "host:port" or "[v6]:port"')
    if value and not re.match(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+):\d{1,5}$", value):
        raise ValueError(f"not host:port: {value!r}")
    return value


def _allowed_ip(value: Any) -> IPNetwork:
    if not isinstance(value, str):
        raise ValueError(f"expected a prefix, got {json.dumps(value)}")
    try:
        return ipaddress.ip_network(value, strict=False)  # a bare address means a host route
    except ValueError:
        raise ValueError(f"not a prefix: {value!r}") from None


_WIREGUARD_SCHEMA = {
    "interfaces": Optional(
        [
            {
                "name": _ifname,
                "private_key": _wg_key,
                "port": Optional(int, 0),
                "peers": Optional(
                    [
                        {
                            "public_key": _wg_key,
                            "endpoint": Optional(_endpoint, ""),
                            "allowed_ips": Optional([_allowed_ip], []),
                        }
                    ],
                    [],
                ),
            }
        ],
        [],
    )
}


def parse_wireguard(obj: Any, path: str) -> tuple[WireguardInterface, ...]:
    v = validate(obj, _WIREGUARD_SCHEMA, path)
    for n, i in enumerate(v["interfaces"]):
        if not 0 <= i["port"] <= 65535:
            raise StateFileError(path, f"interfaces[{n}].port", "outside 0..65535")
    return tuple(
        WireguardInterface(
            i["name"],
            i["private_key"],
            i["port"],
            tuple(
                WireguardPeer(p["public_key"], p["endpoint"], tuple(p["allowed_ips"]))
                for p in i["peers"]
            ),
        )
        for i in v["interfaces"]
    )


def parse_dhcp4_lease(obj: Any, path: str) -> Dhcp4Lease | None:
    """dhcp4's lease.json, through its owner's reader (ours or router7's format)."""
    lease = dhcp4_lease.Lease.from_json(obj, path)
    return Dhcp4Lease(lease.address, lease.router)


def parse_dhcp6_lease(obj: Any, path: str) -> Dhcp6Lease | None:
    """dhcp6's lease.json, through its owner's reader (ours or router7's format)."""
    lease = dhcp6_lease.Lease.from_json(obj, path)
    return Dhcp6Lease(
        tuple(h.network for h in lease.prefixes),
        tuple(h.network.network_address for h in lease.addresses),
    )


def read_backup_leases(
    perm: Path, interfaces: Interfaces, primary: str = "uplink0", family: int = 4
) -> tuple[tuple[tuple[str, Any], ...], list[StateFileError]]:
    """The DHCPv4 (or DHCPv6) leases of the backup uplinks named in interfaces.json."""
    owner, parse = (
        (dhcp4_lease, parse_dhcp4_lease) if family == 4 else (dhcp6_lease, parse_dhcp6_lease)
    )
    out, errors = [], []
    for name in interfaces.uplink_priorities(primary):
        if name == primary:
            continue
        path = owner.lease_path(perm, name)
        try:
            lease = parse(read_json_raw(path)[0], str(path))
        except StateFileError as e:
            if e.reason != "does not exist":
                errors.append(e)
            continue
        if lease is not None:
            out.append((name, lease))
    return tuple(out), errors


def read_interfaces(perm: Path) -> Interfaces:
    """``<perm>/interfaces.json`` for the other services (dhcp4's spoofed MAC, dnsd's
    lan0 address): absent means no interfaces; StateFileError if it is wrong."""
    value, _ = load_file(Path(perm) / SOURCES[0].relpath, SOURCES[0])
    return value


# --- loading with last-good fallback ---------------------------------------------


class InterfacesReader:
    """``read_interfaces`` with netconfigd's last-good semantics, for the other services
    (dnsd): a bad file keeps the last good version read by this process, else the copy
    netconfigd cached in ``<run-dir>/netconfigd-last-good/``, else means no interfaces.
    Never raises for a bad file; each problem is logged once per change of the file."""

    def __init__(self, perm: Path, run_dir: Path | None = None):
        self.perm = Path(perm)
        self.cached = (
            Path(run_dir) / "netconfigd-last-good" / "interfaces.json" if run_dir else None
        )
        self.last_good: Interfaces | None = None

    def read(self) -> Interfaces:
        source = SOURCES[0]
        try:
            value, _ = load_file(self.perm / source.relpath, source)
        except StateFileError as e:
            if self.last_good is not None:
                log.error("%s; keeping the last good version of this file", e)
                return self.last_good
            if self.cached is not None and self.cached.exists():
                try:
                    value, _ = load_file(self.cached, source)
                except StateFileError:
                    pass
                else:
                    log.error("%s; using netconfigd's last good copy %s", e, self.cached)
                    self.last_good = value
                    return value
            log.error("%s; no good version known, treating the file as absent", e)
            return source.absent
        self.last_good = value
        return value


@dataclass(frozen=True)
class Source:
    key: str  # Inputs field name
    relpath: str
    parse: Callable[[Any, str], Any]
    absent: Any  # the value when the file does not exist


SOURCES = (
    Source("interfaces", "interfaces.json", parse_interfaces, Interfaces()),
    Source("forwardings", "portforwardings.json", parse_forwardings, ()),
    Source("wireguard", "wireguard.json", parse_wireguard, ()),
    Source("dhcp4", "dhcp4/wire/lease.json", parse_dhcp4_lease, None),
    Source("dhcp6", "dhcp6/wire/lease.json", parse_dhcp6_lease, None),
)


def load_file(path: Path, source: Source) -> tuple[Any, bytes | None]:
    """Parse one file: (value, raw bytes) or (absent, None) if missing; StateFileError if bad."""
    try:
        obj, raw = read_json_raw(path)
    except StateFileError as e:
        if e.reason == "does not exist":
            return source.absent, None
        raise
    return source.parse(obj, str(path)), raw


class ConfigStore:
    """Loads all inputs; a bad file falls back to its last good version."""

    def __init__(self, perm: Path, cache_dir: Path | None = None):
        self.perm = Path(perm)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._last_good: dict[str, Any] = {}

    def load(self) -> tuple[Inputs, list[StateFileError]]:
        values: dict[str, Any] = {}
        errors: list[StateFileError] = []
        for source in SOURCES:
            path = self.perm / source.relpath
            try:
                value, raw = load_file(path, source)
            except StateFileError as e:
                errors.append(e)
                value = self._fallback(source, e)
            else:
                self._last_good[source.key] = value
                self._cache(source, raw)
            values[source.key] = value
        return Inputs(**values), errors

    def _fallback(self, source: Source, error: StateFileError) -> Any:
        if source.key in self._last_good:
            log.error("%s; keeping the last good version of this file", error)
            return self._last_good[source.key]
        cached = self._cache_path(source)
        if cached is not None and cached.exists():
            try:
                value, _ = load_file(cached, source)
            except StateFileError as e:
                log.error("%s; the cached copy is bad too (%s)", error, e)
            else:
                log.error("%s; using the copy cached at %s", error, cached)
                self._last_good[source.key] = value
                return value
        log.error("%s; no good version known, treating the file as absent", error)
        return source.absent

    def _cache_path(self, source: Source) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / source.relpath.replace("/", "_")

    def _cache(self, source: Source, raw: bytes | None) -> None:
        path = self._cache_path(source)
        if path is None:
            return
        try:
            if raw is None:
                path.unlink(missing_ok=True)
            elif not path.exists() or path.read_bytes() != raw:
                write_bytes_atomic(path, raw)
        except OSError as e:
            log.warning("cannot cache %s: %s", path, e)
