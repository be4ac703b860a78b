"""The router's check tree, built from the config and a set of probes.

    link/uplink0                      exists, up, carrier; packet counters
    ├─ dhcp4: lease                   lease.json's expires_at is in the future
    │  └─ route4: default             default route via uplink0
    │     └─ ping4: default gateway   ICMP echo to that gateway
    │        └─ tcp4: <target>        TCP connect, one per target
    ├─ dhcp6: delegated prefix        a prefix in the dhcp6 lease is still valid
    └─ route6: default                IPv6 default route via uplink0 (from RAs)
       └─ ping6: default gateway      ICMPv6 echo to the (link-local) gateway
          └─ tcp6: <target>
    lan/lan0                          lan0 has its IPv4 address
    ├─ dns: <server>                  the LAN's resolver answers
    └─ dhcp4d: pool                   at least a quarter of the pool is free
    perm: persistent                  /perm is not a tmpfs (it survives a reboot)
    failover: active uplink           failoverd's state: which uplink, since when, why
                                      (fails only when no uplink is up; docs/failover.md)

The probes are injected (``Probes``) so unit tests can build the same tree with
fakes and a task.Clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from router7.diagd import perm, probes
from router7.diagd.config import Config
from router7.diagd.tree import Check
from router7.runtime.netlink import NetState


@dataclass
class Probes:
    """The real probes; each method returns a status or a Deferred of one."""

    reactor: object
    perm: Path
    uplink: str
    lan: str
    net: NetState = field(default_factory=NetState)  # the runtime's netlink view
    ping_timeout: float = 1.0

    def __post_init__(self):
        self.dns_client = probes.DnsClient(self.reactor)

    def link(self):
        return probes.link_status(self.net, self.uplink)

    def dhcp4(self):
        return probes.dhcp4_lease(self.perm)

    def dhcp6(self):
        return probes.dhcp6_lease(self.perm)

    def route(self, version: int):
        return probes.route_status(self.net, version, self.uplink)

    def ping(self, version: int):
        return probes.ping_gateway(self.reactor, self.net, version, self.uplink, self.ping_timeout)

    def tcp(self, version: int, host: str, port: int):
        return probes.tcp_connect(self.reactor, host, port, version)

    def failover(self):
        return probes.failover(self.perm)

    def perm_persistent(self):
        return perm.persistence(self.perm)

    def lan_address(self):
        return probes.lan_status(self.net, self.lan)

    def dns(self, server: str | None, name: str):
        server = server or probes.lan_ipv4(self.net, self.lan)
        return self.dns_client.query(server, name)

    def pool(self):
        return probes.dhcp4d_pool(self.perm, self.net, self.lan)


def build(config: Config, p: Probes) -> list[Check]:
    def tcp(version: int) -> list[Check]:
        return [
            Check(f"tcp{version}: {t.label()}", lambda t=t: p.tcp(version, t.host, t.port))
            for t in config.targets
            if version in t.families
        ]

    v6 = config.ipv6  # False: the IPv6 subtrees are shown but do not count
    uplink = Check(
        f"link/{p.uplink}",
        p.link,
        [
            Check(
                "dhcp4: lease",
                p.dhcp4,
                [
                    Check(
                        "route4: default",
                        lambda: p.route(4),
                        [Check("ping4: default gateway", lambda: p.ping(4), tcp(4))],
                    )
                ],
            ),
            Check("dhcp6: delegated prefix", p.dhcp6, counts=v6),
            Check(
                "route6: default",
                lambda: p.route(6),
                [Check("ping6: default gateway", lambda: p.ping(6), tcp(6))],
                counts=v6,
            ),
        ],
    )
    server = config.dns_server
    lan = Check(
        f"lan/{p.lan}",
        p.lan_address,
        [
            Check(f"dns: {server or p.lan}", lambda: p.dns(server, config.dns_name)),
            Check("dhcp4d: pool", p.pool),
        ],
    )
    return [
        uplink,
        lan,
        Check("perm: persistent", p.perm_persistent),
        Check("failover: active uplink", p.failover),
    ]
