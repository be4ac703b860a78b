"""Inputs -> the kernel state netconfigd wants (pure: no netlink, no files).

The applier (apply.py) diffs this against the kernel. Keeping the decision of
*what* apart from *how* makes every rule of reference §3 a unit test.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from router7.netconfigd.config import (
    Forwarding,
    Inputs,
    IPAddress,
    IPInterface,
    IPNetwork,
    WireguardInterface,
)

log = logging.getLogger(__name__)

# Route protocols (rtnetlink RTPROT_*): `ip route` shows them as "proto static/dhcp".
RTPROT_STATIC = 4
RTPROT_DHCP = 16
# IFA_PROTO of the addresses we add (any value the kernel does not use itself). It
# tells our addresses apart from those someone added by hand, so that stale ones
# (an old lease's address, an old prefix's ::1) can be removed safely.
ADDR_PROTO = 0x37

V4_DEFAULT = ipaddress.IPv4Network("0.0.0.0/0")


@dataclass(frozen=True)
class LinkSpec:
    """A configured link, found by MAC (current or spoofed) or else by name."""

    name: str
    macs: tuple[str, ...] = ()
    mtu: int = 0
    spoof_mac: str | None = None
    fec: str = ""


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    members: tuple[str, ...]  # MACs; the bridge takes the first one's MAC


@dataclass(frozen=True)
class AddrSpec:
    ifname: str
    address: IPInterface


@dataclass(frozen=True)
class RouteSpec:
    dst: IPNetwork
    ifname: str | None = None
    gateway: IPAddress | None = None
    src: IPAddress | None = None
    proto: int = RTPROT_STATIC
    kind: str = "unicast"  # or "unreachable"
    scope: str = "universe"  # or "link"

    @property
    def family(self) -> int:
        return self.dst.version


@dataclass(frozen=True)
class Plan:
    links: tuple[LinkSpec, ...] = ()
    bridges: tuple[BridgeSpec, ...] = ()
    wireguard: tuple[WireguardInterface, ...] = ()
    forwardings: tuple[Forwarding, ...] = ()
    addresses: tuple[AddrSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    # (interface, family): every other global address of that family there is stale.
    exclusive: tuple[tuple[str, int], ...] = ()
    sysctls: tuple[tuple[str, str], ...] = ()
    uplink: str = "uplink0"
    lan: str = "lan0"
    backup_uplinks: tuple[str, ...] = ()  # failover: further uplinks with a lease
    # Firewall inputs that come from the config rather than the kernel.
    internal_v4: tuple[ipaddress.IPv4Network, ...] = field(default=())


def lan_address_for(prefix: ipaddress.IPv6Network) -> ipaddress.IPv6Interface:
    """``<prefix>::1/64``: the first /64 of a shorter delegated prefix (reference §3.1 step 4)."""
    plen = max(prefix.prefixlen, 64)
    return ipaddress.IPv6Interface(f"{prefix.network_address + 1}/{plen}")


# all.forwarding before accept_ra: writing it resets per-interface settings.
FORWARDING = (("net/ipv4/ip_forward", "1"), ("net/ipv6/conf/all/forwarding", "1"))


def sysctls_for(uplink: str, backups: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    return (
        *FORWARDING,
        ("net/ipv4/icmp_ratelimit", "0"),
        ("net/ipv6/icmp/ratelimit", "0"),
        # 2 = accept RAs although forwarding: keeps the ISP's default route (and SLAAC).
        (f"net/ipv6/conf/{uplink}/accept_ra", "2"),
        *((f"net/ipv6/conf/{b}/accept_ra", "2") for b in backups),
    )


def endpoint_host(endpoint: str) -> str:
    host = endpoint.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


def literal_resolver(host: str) -> list[IPAddress]:
    """Default resolver: IP literals only (plan stays pure; the service passes DNS)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        return []


def build(
    inputs: Inputs,
    uplink: str = "uplink0",
    lan: str = "lan0",
    resolve: Callable[[str], list[IPAddress]] = literal_resolver,
) -> Plan:
    ifaces = inputs.interfaces
    links = tuple(
        LinkSpec(
            name=i.name,
            macs=tuple(m for m in (i.hardware_addr, i.spoof_hardware_addr) if m),
            mtu=i.mtu,
            spoof_mac=i.spoof_hardware_addr,
            fec=i.fec,
        )
        for i in ifaces.interfaces
    )
    bridges = tuple(BridgeSpec(b.name, b.interface_hardware_addrs) for b in ifaces.bridges)

    addresses: list[AddrSpec] = []
    routes: list[RouteSpec] = []
    for i in ifaces.interfaces:
        for a in (i.addr, *i.extra_addrs):
            if a is not None:
                addresses.append(AddrSpec(i.name, a))
        for r in i.extra_routes:
            routes.append(RouteSpec(dst=r.destination, ifname=i.name, gateway=r.gateway))

    exclusive: list[tuple[str, int]] = []
    lease4 = inputs.dhcp4
    # Failover: the default route leaves through the uplink failoverd chose, if it has
    # a lease; every uplink keeps its address and on-link gateway (probes, tables).
    active = inputs.active_uplink or uplink
    backups = dict(inputs.backup_dhcp4)
    if active != uplink and (active not in backups or backups[active].router is None):
        active = uplink
    for name, lease in backups.items():
        addresses.append(AddrSpec(name, lease.address))
        exclusive.append((name, 4))
        if lease.router is None:
            continue
        src = lease.address.ip
        routes.append(
            RouteSpec(
                ipaddress.ip_network(f"{lease.router}/32"), name, None, src, RTPROT_DHCP,
                scope="link",
            )
        )  # fmt: skip
        if name == active:
            routes.append(RouteSpec(V4_DEFAULT, name, lease.router, src, RTPROT_DHCP))
    if lease4 is not None:
        addresses.append(AddrSpec(uplink, lease4.address))
        # Only the lease's address (and static ones) stay: an old lease's address goes
        # (router7 issue #57).
        exclusive.append((uplink, 4))
        gw = lease4.router
        src = lease4.address.ip
        if gw is not None:
            routes.append(
                RouteSpec(
                    ipaddress.ip_network(f"{gw}/32"), uplink, None, src, RTPROT_DHCP, scope="link"
                )
            )
            if _wireguard_has_default(inputs):
                # The tunnel carries the default route; only its endpoints go via the ISP.
                for wg in inputs.wireguard:
                    for peer in wg.peers:
                        if not peer.endpoint:
                            continue
                        for ip in resolve(endpoint_host(peer.endpoint)):
                            if ip.version == 4 and ip != gw:
                                routes.append(
                                    RouteSpec(
                                        ipaddress.ip_network(f"{ip}/32"),
                                        uplink,
                                        gw,
                                        src,
                                        RTPROT_DHCP,
                                    )
                                )
            elif active == uplink:
                routes.append(RouteSpec(V4_DEFAULT, uplink, gw, src, RTPROT_DHCP))

    lease6 = inputs.dhcp6
    for name, backup6 in inputs.backup_dhcp6:
        # Each uplink's delegation gets its own /64 on the LAN; failoverd routes by source
        # prefix and radvd deprecates the prefix of an uplink that is down.
        for prefix in backup6.prefixes:
            addresses.append(AddrSpec(lan, lan_address_for(prefix)))
            if prefix.prefixlen < 64:
                routes.append(RouteSpec(prefix, None, None, None, RTPROT_DHCP, kind="unreachable"))
        for a in backup6.addresses:
            addresses.append(AddrSpec(name, ipaddress.IPv6Interface(f"{a}/128")))
    if lease6 is not None:
        for prefix in lease6.prefixes:
            addresses.append(AddrSpec(lan, lan_address_for(prefix)))
            if prefix.prefixlen < 64:
                # The rest of the delegation must not bounce between us and the ISP's
                # default route (RFC 7084 WPD-5): drop it here with an ICMP unreachable.
                routes.append(RouteSpec(prefix, None, None, None, RTPROT_DHCP, kind="unreachable"))
        for a in lease6.addresses:
            # IA_NA addresses are /128 (RFC 8415 §21.6); on-link comes from RAs.
            addresses.append(AddrSpec(uplink, ipaddress.IPv6Interface(f"{a}/128")))

    internal_v4 = tuple(
        dict.fromkeys(
            a.address.network
            for a in addresses
            if a.ifname != uplink and a.ifname not in backups and a.address.version == 4
        )
    )
    return Plan(
        links=links,
        bridges=bridges,
        wireguard=inputs.wireguard,
        forwardings=inputs.forwardings,
        addresses=tuple(dict.fromkeys(addresses)),
        routes=tuple(dict.fromkeys(routes)),
        exclusive=tuple(exclusive),
        sysctls=sysctls_for(uplink, tuple(backups)),
        uplink=uplink,
        lan=lan,
        backup_uplinks=tuple(backups),
        internal_v4=internal_v4,
    )


def _wireguard_has_default(inputs: Inputs) -> bool:
    """router7's rule: some wg* interface has an extra route to 0.0.0.0/0."""
    return any(
        i.name.startswith("wg") and any(r.destination == V4_DEFAULT for r in i.extra_routes)
        for i in inputs.interfaces.interfaces
    )
