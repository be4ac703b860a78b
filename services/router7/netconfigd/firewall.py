"""The nftables ruleset (pure): generation, rendering and the transaction to apply it.

Format: nft's text language, applied with one ``nft -f -`` (a single atomic
netlink batch, like ``nft -j -f``). Text rather than nft JSON because the golden
file is then the same language an owner reads in ``nft list ruleset``, nft's
error messages point at a line of it, and expressions such as
``tcp option maxseg size set rt mtu`` stay one readable line instead of a nest
of JSON objects. Every value put into the text is validated first (interface
names match ``[A-Za-z0-9_.-]``, addresses and ports are parsed objects), so the
text cannot be injected into.

The ruleset is modelled as tables -> chains -> rule strings, which lets
``transaction`` compare the new ruleset with the last applied one:

* identical: nothing is sent, so rule state and counters are untouched;
* only the rules of regular (hook-less) chains differ, e.g. the port
  forwardings: those chains alone are flushed and refilled in one batch;
* anything else: router7's own tables are deleted and recreated in one batch,
  named counters carrying their previous values over. Foreign tables (podman,
  docker, a hand-made table) are never touched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from router7.netconfigd.config import Forwarding, WireguardInterface
from router7.runtime.uplink import uplink_patterns

FILTER_TABLE = ("inet", "router7")
NAT_TABLE = ("ip", "router7-nat")
FLOWTABLE = "fastpath"
# Named counters, one per hook and family; metrics.py exports them (router7's names).
COUNTER_HOOKS = ("fwded", "inputc", "outputc")
FAMILIES = ("ipv4", "ipv6")

# ICMPv6 that must not be dropped (RFC 4890 §4.3.1 transit, §4.4.1 local).
ICMPV6_ERRORS = "destination-unreachable, packet-too-big, time-exceeded, parameter-problem"
ICMPV6_ECHO = "echo-request, echo-reply"
# Neighbour discovery is only valid with hop limit 255 (RFC 4861), i.e. from the link.
ICMPV6_ND = "nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert"
ICMPV6_MLD = "mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report"
ICMP_TYPES = "echo-request, destination-unreachable, time-exceeded, parameter-problem"


@dataclass(frozen=True)
class Chain:
    name: str
    rules: tuple[str, ...] = ()
    hook: str | None = None  # e.g. "type filter hook input priority filter; policy accept;"

    @property
    def is_base(self) -> bool:
        return self.hook is not None


@dataclass(frozen=True)
class Table:
    family: str
    name: str
    chains: tuple[Chain, ...] = ()
    counters: tuple[str, ...] = ()
    flowtables: tuple[tuple[str, str], ...] = ()  # (name, body)

    @property
    def key(self) -> tuple[str, str]:
        return (self.family, self.name)

    def chain(self, name: str) -> Chain:
        return next(c for c in self.chains if c.name == name)

    def skeleton(self) -> tuple:
        """Everything but the rules of regular chains (what an incremental update keeps)."""
        return (
            self.key,
            self.counters,
            self.flowtables,
            tuple((c.name, c.hook, c.rules if c.is_base else None) for c in self.chains),
        )


CounterValues = Mapping[tuple[str, str, str], tuple[int, int]]  # (family, table, name) -> (p, b)


@dataclass(frozen=True)
class Ruleset:
    tables: tuple[Table, ...] = ()

    def table(self, family: str, name: str) -> Table:
        return next(t for t in self.tables if t.key == (family, name))

    def render(self, counters: CounterValues | None = None) -> str:
        return "".join(render_table(t, counters or {}) for t in self.tables)

    def to_json(self) -> list:
        return [
            {
                "family": t.family,
                "name": t.name,
                "counters": list(t.counters),
                "flowtables": [list(f) for f in t.flowtables],
                "chains": [
                    {"name": c.name, "hook": c.hook, "rules": list(c.rules)} for c in t.chains
                ],
            }
            for t in self.tables
        ]

    @classmethod
    def from_json(cls, obj: list) -> Ruleset:
        return cls(
            tuple(
                Table(
                    t["family"],
                    t["name"],
                    chains=tuple(
                        Chain(c["name"], tuple(c["rules"]), c["hook"]) for c in t["chains"]
                    ),
                    counters=tuple(t["counters"]),
                    flowtables=tuple(tuple(f) for f in t["flowtables"]),
                )
                for t in obj
            )
        )


@dataclass(frozen=True)
class FirewallSpec:
    """What the ruleset depends on."""

    uplink: str = "uplink0"
    lan: str = "lan0"
    backup_uplinks: tuple[str, ...] = ()  # failover: each is filtered and NATed like uplink
    internal_v4: tuple[ipaddress.IPv4Network, ...] = ()
    forwardings: tuple[Forwarding, ...] = ()
    wireguard: tuple[WireguardInterface, ...] = ()
    # Devices of the fast path (existing links only); empty or flowtable=False: no fast path.
    flowtable_devices: tuple[str, ...] = ()
    flowtable: bool = True
    extra_input_uplink: tuple[str, ...] = field(default=())


def _counters(hook: str) -> list[str]:
    return [f'meta nfproto {fam} counter name "{hook}_{fam}"' for fam in FAMILIES]


def _ports(lo_hi: tuple[int, int]) -> str:
    lo, hi = lo_hi
    return str(lo) if lo == hi else f"{lo}-{hi}"


def forwarding_rules(spec: FirewallSpec) -> tuple[list[str], list[str]]:
    """(DNAT rules for the nat table, IPv6 pinhole rules for the filter table)."""
    exclude = ", ".join(["127.0.0.0/8", *(str(n) for n in spec.internal_v4)])
    nat: list[str] = []
    pinholes: list[str] = []
    for f in spec.forwardings:
        for proto in f.protos:
            match = f"{proto} dport {_ports(f.port)}"
            if f.dest_addr.version == 6:
                pinholes.append(f"ip6 daddr {f.dest_addr} {match} accept")
                continue
            if f.dest_port is None or f.dest_port == f.port:
                # The kernel keeps an original port that lies inside the target range,
                # so a same-range forwarding maps every port onto itself.
                target = (
                    str(f.dest_addr) if f.dest_port is None else f"{f.dest_addr}:{_ports(f.port)}"
                )
            elif f.port[0] == f.port[1]:
                target = f"{f.dest_addr}:{f.dest_port[0]}"
            else:
                # Shifted range (8000-8010 -> 9000-9010): a plain range would pick any
                # port in it, so map each port explicitly.
                pairs = ", ".join(
                    f"{p} : {f.dest_port[0] + p - f.port[0]}"
                    for p in range(f.port[0], f.port[1] + 1)
                )
                target = f"{f.dest_addr} : {proto} dport map {{ {pairs} }}"
            # Any address of the router (the WAN address changes with the lease) except
            # loopback and the LAN side (reference §3.4, without its /24 assumption).
            nat.append(f"fib daddr type local ip daddr != {{ {exclude} }} {match} dnat to {target}")
    return nat, pinholes


def build(spec: FirewallSpec) -> Ruleset:
    up, lan = spec.uplink, spec.lan
    nat_rules, pinhole_rules = forwarding_rules(spec)
    fast = spec.flowtable and bool(spec.flowtable_devices)

    input_uplink = [
        "ct state established,related accept",
        f"icmpv6 type {{ {ICMPV6_ERRORS}, {ICMPV6_ECHO} }} accept",
        f"icmpv6 type {{ {ICMPV6_ND} }} ip6 hoplimit 255 accept",
        f"icmpv6 type {{ {ICMPV6_MLD} }} ip6 saddr fe80::/10 accept",
        f"icmp type {{ {ICMP_TYPES} }} accept",
        "ct state invalid drop",
        # DHCPv6 replies come from the server's link-local address to our new socket,
        # which conntrack cannot relate to the multicast Solicit.
        "meta nfproto ipv6 udp sport 547 udp dport 546 accept",
        # dhcp4 reads a packet socket (before netfilter); this keeps UDP clients working.
        "meta nfproto ipv4 udp sport 67 udp dport 68 accept",
    ]
    input_uplink += [f"udp dport {wg.port} accept" for wg in spec.wireguard if wg.port]
    input_uplink += list(spec.extra_input_uplink)
    input_uplink.append("drop")  # management ports and everything else: not from the ISP side

    forward = _counters("fwded")
    if fast:
        forward.append(f"meta l4proto {{ tcp, udp }} ct state established flow add @{FLOWTABLE}")
    for u in (up, *spec.backup_uplinks):
        forward += [
            # MSS clamping to the route MTU, for SYN and SYN/ACK leaving the uplink.
            f'oifname "{u}" tcp flags syn tcp option maxseg size set rt mtu',
            f'iifname "{u}" jump forward_uplink',
        ]
    forward_uplink = [
        "ct state established,related accept",
        f"icmpv6 type {{ {ICMPV6_ERRORS}, {ICMPV6_ECHO} }} accept",
        "icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
        "ct state invalid drop",
        "ct status dnat accept",  # port forwardings, DNATed in ip router7-nat
        "jump pinholes",
        # New connections to the LAN are refused (RFC 6092 REC-11: admin prohibited).
        "reject with icmpx admin-prohibited",
    ]
    filter_table = Table(
        *FILTER_TABLE,
        counters=tuple(f"{h}_{f}" for h in COUNTER_HOOKS for f in FAMILIES),
        flowtables=(
            (
                (
                    FLOWTABLE,
                    "hook ingress priority filter; devices = { "
                    + ", ".join(f'"{d}"' for d in sorted(spec.flowtable_devices))
                    + " };",
                ),
            )
            if fast
            else ()
        ),
        chains=(
            Chain(
                "input",
                # Input from every uplink (uplink*, and --uplink) is filtered, as the
                # management listeners stay off every uplink: one definition of both.
                tuple(
                    [*_counters("inputc")]
                    + [f'iifname "{p}" jump input_uplink' for p in uplink_patterns(up)]
                ),
                "type filter hook input priority filter; policy accept;",
            ),
            Chain("input_uplink", tuple(input_uplink)),
            Chain(
                "forward",
                tuple(forward),
                "type filter hook forward priority filter; policy accept;",
            ),
            Chain("forward_uplink", tuple(forward_uplink)),
            Chain("pinholes", tuple(pinhole_rules)),
            Chain(
                "output",
                tuple(_counters("outputc")),
                "type filter hook output priority filter; policy accept;",
            ),
        ),
    )
    nat_table = Table(
        *NAT_TABLE,
        chains=(
            Chain("portforwardings", tuple(nat_rules)),
            Chain(
                "prerouting",
                ("jump portforwardings",),
                "type nat hook prerouting priority dstnat; policy accept;",
            ),
            Chain(
                "postrouting",
                (
                    # Each uplink masquerades with its own address (failover: conntrack
                    # entries of a failed uplink are flushed by failoverd).
                    *(f'oifname "{u}" masquerade' for u in (up, *spec.backup_uplinks)),
                    # Hairpin NAT (router7 issue #53): a LAN host that reached a LAN server
                    # through the WAN address must see the replies come from the router.
                    f'iifname "{lan}" oifname "{lan}" ct status dnat masquerade',
                ),
                "type nat hook postrouting priority srcnat; policy accept;",
            ),
        ),
    )
    return Ruleset((filter_table, nat_table))


def render_table(t: Table, counters: CounterValues) -> str:
    lines = [f"table {t.family} {t.name} {{"]
    for name in t.counters:
        p, b = counters.get((t.family, t.name, name), (0, 0))
        lines.append(f"\tcounter {name} {{ packets {p} bytes {b} }}")
    for name, body in t.flowtables:
        lines.append(f"\tflowtable {name} {{ {body} }}")
    for c in t.chains:
        lines.append(f"\tchain {c.name} {{")
        if c.hook:
            lines.append(f"\t\t{c.hook}")
        lines += [f"\t\t{r}" for r in c.rules]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _replace_all(tables: Iterable[Table], old: Ruleset | None, counters: CounterValues) -> str:
    out = []
    for t in tables:
        # "add" then "delete" so the delete never fails on the first run.
        out.append(f"add table {t.family} {t.name}\ndelete table {t.family} {t.name}\n")
        out.append(render_table(t, counters))
    if old is not None:  # tables we no longer generate (none today; keeps renames clean)
        new_keys = {t.key for t in tables}
        for t in old.tables:
            if t.key not in new_keys:
                out.append(f"add table {t.family} {t.name}\ndelete table {t.family} {t.name}\n")
    return "".join(out)


def needs_rebuild(new: Ruleset, old: Ruleset | None) -> bool:
    """True unless ``old`` and ``new`` differ at most in the rules of regular chains."""
    return old is None or [t.skeleton() for t in old.tables] != [t.skeleton() for t in new.tables]


def transaction(
    new: Ruleset, old: Ruleset | None, counters: CounterValues | None = None
) -> str | None:
    """The nft script that turns ``old`` (last applied) into ``new``; None if nothing to do.

    ``counters`` are the named counters' current values, carried over by a rebuild.
    """
    if old == new:
        return None
    if needs_rebuild(new, old):
        return _replace_all(new.tables, old, counters or {})
    out = []
    for t_old, t_new in zip(old.tables, new.tables, strict=True):
        for c_old, c_new in zip(t_old.chains, t_new.chains, strict=True):
            if c_old.rules == c_new.rules:
                continue
            out.append(f"flush chain {t_new.family} {t_new.name} {c_new.name}\n")
            out += [f"add rule {t_new.family} {t_new.name} {c_new.name} {r}\n" for r in c_new.rules]
    return "".join(out)


def changed_chains(script: str) -> set[str]:
    """Chains an incremental script touches (for logs and tests)."""
    return {
        " ".join(line.split()[2:5])
        for line in script.splitlines()
        if line.startswith("flush chain ")
    }
