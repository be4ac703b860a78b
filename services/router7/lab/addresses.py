"""Every address, prefix, lifetime and MAC of the lab, in one place.

Tests and the demo import these instead of hard-coding literals, so the lab's
numbering plan can change in one spot. The plan mirrors fiber7: a /25 access
segment for DHCPv4, DHCPv6 IA_NA from an on-link /64 (no SLAAC), and a /48
delegated out of a /40 pool.
"""

from __future__ import annotations

import ipaddress
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class LabAddresses:
    """The lab's numbering plan (identical for every lab prefix).

    Labs live in separate namespaces, so they can all reuse the same addresses.
    """

    # internet <-> isp transit link (isp up0, internet eth0).
    internet_v4: str = "203.0.113.10"
    isp_transit_v4: str = "203.0.113.1"
    transit_v4_prefixlen: int = 24
    internet_v6: str = "2001:db8:ffff::10"
    isp_transit_v6: str = "2001:db8:ffff::1"
    transit_v6_prefixlen: int = 64

    # Access segment (isp down0 <-> router uplink0).
    isp_access_v4: str = "192.0.2.1"
    access_v4_subnet: str = "192.0.2.0/25"
    dhcp4_pool_start: str = "192.0.2.10"
    dhcp4_pool_end: str = "192.0.2.100"
    dhcp4_valid_lifetime: int = 120
    isp_access_v6: str = "2001:db8:1::1"
    access_v6_subnet: str = "2001:db8:1::/64"
    dhcp6_pool_start: str = "2001:db8:1::1000"
    dhcp6_pool_end: str = "2001:db8:1::1fff"
    pd_pool: str = "2001:db8:100::/40"
    pd_delegated_len: int = 48
    dhcp6_preferred_lifetime: int = 1800
    dhcp6_valid_lifetime: int = 3600
    ra_router_lifetime: int = 1800

    # ISP resolvers: dns1 and dns2 are separate dnsmasq processes.
    isp_dns1_v4: str = "198.51.100.53"
    isp_dns2_v4: str = "198.51.100.54"
    isp_dns1_v6: str = "2001:db8:1::53"
    isp_dns2_v6: str = "2001:db8:1::54"

    # What the internet host serves.
    dns_zone: str = "example.test"
    www_name: str = "www.example.test"
    http_port: int = 80
    http_body: str = "router7 lab internet host\n"

    @property
    def isp_dns_v4(self) -> tuple[str, str]:
        return (self.isp_dns1_v4, self.isp_dns2_v4)

    @property
    def isp_dns_v6(self) -> tuple[str, str]:
        return (self.isp_dns1_v6, self.isp_dns2_v6)

    @property
    def http_url(self) -> str:
        return f"http://{self.internet_v4}:{self.http_port}/"

    def in_dhcp4_pool(self, addr: str) -> bool:
        a = ipaddress.IPv4Address(addr)
        return (
            ipaddress.IPv4Address(self.dhcp4_pool_start)
            <= a
            <= ipaddress.IPv4Address(self.dhcp4_pool_end)
        )

    def in_dhcp6_pool(self, addr: str) -> bool:
        a = ipaddress.IPv6Address(addr)
        return (
            ipaddress.IPv6Address(self.dhcp6_pool_start)
            <= a
            <= ipaddress.IPv6Address(self.dhcp6_pool_end)
        )

    def is_delegated_prefix(self, prefix: str) -> bool:
        """True if `prefix` ("addr/len") is a /48 carved out of the PD pool."""
        net = ipaddress.IPv6Network(prefix, strict=True)
        return net.prefixlen == self.pd_delegated_len and net.subnet_of(
            ipaddress.IPv6Network(self.pd_pool)
        )


ADDR = LabAddresses()


def lab_byte(prefix: str) -> int:
    """A per-lab MAC byte: 0 for the default lab `r7`, a stable hash otherwise.

    Labs never share a layer-2 segment, so collisions would be harmless; the
    byte only makes captures from different labs easy to tell apart.
    """
    if prefix == "r7":
        return 0
    return zlib.crc32(prefix.encode()) % 255 + 1


# MAC plan 02:72:37:<lab>:<segment>:<host>; segment 00 = access, 01 = LAN,
# ff = transit. The router's MACs are what fiber7 would see as the CPE.
_MACS = {
    ("router", "uplink0"): (0x00, 0x01),
    ("isp", "down0"): (0x00, 0xFE),
    ("router", "lan0"): (0x01, 0x01),
    ("isp", "up0"): (0xFF, 0x01),
    ("internet", "eth0"): (0xFF, 0x10),
}


def mac_for(prefix: str, node: str, ifname: str) -> str | None:
    """Deterministic MAC of a lab interface, or None if the kernel may pick one."""
    if node.startswith("lan") and node[3:].isdigit() and ifname == "eth0":
        seg, host = 0x01, 0x10 + int(node[3:])
    elif (node, ifname) in _MACS:
        seg, host = _MACS[(node, ifname)]
    else:
        return None
    return f"02:72:37:{lab_byte(prefix):02x}:{seg:02x}:{host:02x}"
