"""Addresses, routes and sysctls through netlink/procfs, diffed against the kernel.

Idempotence: an address or route that is already right is not touched (no
"replace" that would generate netlink events or reset an IPv6 address), and
only state we own is removed: addresses carrying our IFA_PROTO mark, routes
with proto dhcp, and static routes we installed in an earlier run.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from router7.netconfigd.plan import ADDR_PROTO, RTPROT_DHCP, Plan, RouteSpec

log = logging.getLogger(__name__)

RT_TABLE_MAIN = 254
RTN_UNICAST, RTN_UNREACHABLE = 1, 7
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
_KINDS = {"unicast": RTN_UNICAST, "unreachable": RTN_UNREACHABLE}
_SCOPES = {"universe": RT_SCOPE_UNIVERSE, "link": RT_SCOPE_LINK}


@dataclass(frozen=True)
class KernelAddr:
    index: int
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    proto: int


@dataclass(frozen=True)
class KernelRoute:
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    oif: int | None
    gateway: str | None
    prefsrc: str | None
    proto: int
    kind: int
    scope: int
    priority: int | None


def read_addrs(ipr) -> list[KernelAddr]:
    out = []
    for msg in ipr.get_addr():
        # For IPv4 IFA_LOCAL is our address (IFA_ADDRESS is the peer on p2p links).
        a = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if not a:
            continue
        out.append(
            KernelAddr(
                msg["index"],
                ipaddress.ip_interface(f"{a}/{msg['prefixlen']}"),
                msg.get_attr("IFA_PROTO") or 0,
            )
        )
    return out


def read_routes(ipr) -> list[KernelRoute]:
    out = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, table=RT_TABLE_MAIN):
            if (msg.get_attr("RTA_TABLE") or msg["table"]) != RT_TABLE_MAIN:
                continue
            zero = "0.0.0.0" if family == socket.AF_INET else "::"
            dst = ipaddress.ip_network(
                f"{msg.get_attr('RTA_DST') or zero}/{msg['dst_len']}", strict=False
            )
            out.append(
                KernelRoute(
                    dst=dst,
                    oif=msg.get_attr("RTA_OIF"),
                    gateway=msg.get_attr("RTA_GATEWAY"),
                    prefsrc=msg.get_attr("RTA_PREFSRC"),
                    proto=msg["proto"],
                    kind=msg["type"],
                    scope=msg["scope"],
                    priority=msg.get_attr("RTA_PRIORITY"),
                )
            )
    return out


def route_matches(k: KernelRoute, r: RouteSpec, oif: int | None) -> bool:
    return (
        k.dst == r.dst
        and k.kind == _KINDS[r.kind]
        and k.proto == r.proto
        and (r.ifname is None or k.oif == oif)
        and (str(r.gateway) if r.gateway else None) == k.gateway
        and (str(r.src) if r.src else None) == k.prefsrc
        and k.scope == _SCOPES[r.scope]
    )


class AddressApplier:
    def __init__(self, ipr, sysctl_root: Path = Path("/proc/sys")):
        self.ipr = ipr
        self.sysctl_root = sysctl_root
        self._previous_routes: tuple[RouteSpec, ...] = ()

    def apply(self, plan: Plan, names: dict[str, int]) -> tuple[list[str], bool]:
        """Returns (errors, whether any address changed)."""
        errors: list[str] = []
        changed = self._addresses(plan, names, errors)
        self._routes(plan, names, errors)
        self._sysctls(plan, names, errors)
        return errors, changed

    # --- addresses ----------------------------------------------------------

    def _addresses(self, plan: Plan, names: dict[str, int], errors: list[str]) -> bool:
        changed = False
        current = read_addrs(self.ipr)
        have = {(a.index, a.address) for a in current}
        wanted: set[tuple[int, object]] = set()
        for spec in plan.addresses:
            index = names.get(spec.ifname)
            if index is None:
                log.warning("%s does not exist (yet): not adding %s", spec.ifname, spec.address)
                continue
            wanted.add((index, spec.address))
            if (index, spec.address) in have:
                continue  # already right: never flap it
            try:
                self.ipr.addr(
                    "replace",
                    index=index,
                    address=str(spec.address.ip),
                    prefixlen=spec.address.network.prefixlen,
                    proto=ADDR_PROTO,
                )
                log.info("%s: added %s", spec.ifname, spec.address)
                changed = True
            except Exception as e:  # noqa: BLE001
                errors.append(f"address {spec.address} on {spec.ifname}: {e}")
        exclusive = {(names.get(ifname), family) for ifname, family in plan.exclusive}
        by_index = {v: k for k, v in names.items()}
        for a in current:
            if (a.index, a.address) in wanted:
                continue
            ours = a.proto == ADDR_PROTO
            # An old DHCP lease's address, whoever added it (router7 issue #57).
            stale_lease = (
                a.index,
                a.address.version,
            ) in exclusive and not a.address.ip.is_link_local
            if not (ours or stale_lease):
                continue
            try:
                self.ipr.addr(
                    "del",
                    index=a.index,
                    address=str(a.address.ip),
                    prefixlen=a.address.network.prefixlen,
                )
                log.info("%s: removed stale %s", by_index.get(a.index, a.index), a.address)
                changed = True
            except Exception as e:  # noqa: BLE001
                errors.append(f"removing {a.address}: {e}")
        return changed

    # --- routes -------------------------------------------------------------

    def _routes(self, plan: Plan, names: dict[str, int], errors: list[str]) -> None:
        current = read_routes(self.ipr)
        applied = []
        for r in plan.routes:
            oif = names.get(r.ifname) if r.ifname else None
            if r.ifname and oif is None:
                log.warning("%s does not exist (yet): not adding route %s", r.ifname, r.dst)
                continue
            if any(route_matches(k, r, oif) for k in current):
                applied.append(r)
                continue
            kw = {
                "dst": str(r.dst),
                "proto": r.proto,
                "type": r.kind,
                "scope": _SCOPES[r.scope],
                "table": RT_TABLE_MAIN,
            }
            if oif is not None:
                kw["oif"] = oif
            if r.gateway is not None:
                kw["gateway"] = str(r.gateway)
            if r.src is not None:
                kw["prefsrc"] = str(r.src)
            try:
                self.ipr.route("replace", **kw)
                log.info("route %s", _describe(r))
                applied.append(r)
            except Exception as e:  # noqa: BLE001
                errors.append(f"route {_describe(r)}: {e}")
        # Stale: DHCP routes we no longer want (old gateway, old prefix) and static
        # routes an earlier run installed that left the config.
        wanted = set(plan.routes)
        dropped_static = [
            r for r in self._previous_routes if r not in wanted and r.proto != RTPROT_DHCP
        ]
        for k in read_routes(self.ipr):
            ours_dhcp = k.proto == RTPROT_DHCP
            ours_static = any(
                route_matches(k, r, names.get(r.ifname) if r.ifname else None)
                for r in dropped_static
            )
            if not (ours_dhcp or ours_static):
                continue
            if any(
                route_matches(k, r, names.get(r.ifname) if r.ifname else None) for r in plan.routes
            ):
                continue
            try:
                kw = {"dst": str(k.dst), "proto": k.proto, "type": k.kind, "table": RT_TABLE_MAIN}
                if k.oif is not None:
                    kw["oif"] = k.oif
                if k.gateway:
                    kw["gateway"] = k.gateway
                if k.priority is not None:
                    kw["priority"] = k.priority
                self.ipr.route("del", **kw)
                log.info("removed stale route %s", k.dst)
            except Exception as e:  # noqa: BLE001
                errors.append(f"removing route {k.dst}: {e}")
        self._previous_routes = tuple(applied)

    # --- sysctls ------------------------------------------------------------

    def _sysctls(self, plan: Plan, names: dict[str, int], errors: list[str]) -> None:
        for key, value in plan.sysctls:
            path = self.sysctl_root / key
            try:
                if path.read_text().strip() == value:
                    continue
                path.write_text(value)
                log.info("sysctl %s=%s", key.replace("/", "."), value)
            except FileNotFoundError:
                if f"/conf/{plan.uplink}/" in key and plan.uplink not in names:
                    log.warning("%s does not exist (yet): not setting %s", plan.uplink, key)
                else:
                    errors.append(f"sysctl {key}: not available")
            except OSError as e:
                errors.append(f"sysctl {key}: {e}")


def _describe(r: RouteSpec) -> str:
    parts = [r.kind if r.kind != "unicast" else "", str(r.dst)]
    if r.gateway:
        parts.append(f"via {r.gateway}")
    if r.ifname:
        parts.append(f"dev {r.ifname}")
    if r.src:
        parts.append(f"src {r.src}")
    return " ".join(p for p in parts if p)
