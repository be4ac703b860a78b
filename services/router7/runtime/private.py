"""Which addresses are private (LAN, loopback, ULA, CGNAT): the management fences.

Apart from mgmt.py (the HTTP sites) so that the listener pool can ask without
importing twisted.web: a daemon loads twisted.web only when its management port
gets its first connection (runtime/service.py).
"""

from __future__ import annotations

import ipaddress

_PRIVATE_NETS = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT range, used by tailnets
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
]
# gokrazy's gdns ULA, which is reachable from elsewhere by design.
EXCLUDED_NETS = [ipaddress.ip_network("fdf5:3606:2a21::/48")]


def is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return any(address in n for n in _PRIVATE_NETS)
