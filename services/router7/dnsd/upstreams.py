"""Which upstream resolvers to ask, and in which order.

Pure policy, no sockets. The list comes from the uplink leases (the resolvers
fiber7 hands out over DHCPv4 and DHCPv6) unless the owner configured an
override in ``<perm>/dnsd/config.json``. Servers are ordered by a smoothed
round-trip time, as BIND and Unbound do: a timeout or SERVFAIL inflates a
server's SRTT, and every time another server is preferred the SRTTs of the
others decay a little, so a demoted server is tried again now and then and
comes back once it answers quickly.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp6 import lease as dhcp6_lease
from router7.failoverd import state as failover_state
from router7.runtime.statefile import Optional, StateFileError, read_json, validate

log = logging.getLogger(__name__)

ALPHA = 0.3  # weight of a new RTT sample in the SRTT (BIND uses 0.3 too)
DECAY = 0.98  # per query, for servers that were not chosen (BIND's aging)
FAILURE_PENALTY = 2.0  # seconds added to the SRTT by a timeout or SERVFAIL
MAX_SRTT = 5.0  # a dead server still comes back for a probe after a few hundred queries
MIN_TIMEOUT = 0.2
MAX_TIMEOUT = 2.0
INITIAL_TIMEOUT = 1.0


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``2001:db8::1`` or ``[2001:db8::1]:5353``."""
    text = text.strip()
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    address = ipaddress.ip_address(host)
    port_number = int(port) if port else 53
    if not 0 < port_number < 65536:
        raise ValueError(f"bad port in {text!r}")
    return Upstream(str(address), port_number)


CONFIG_SCHEMA = {
    "upstreams": Optional([str], None),
    "cache_size": Optional(int, 10000),
    "domain": Optional(str, "lan"),
    "hostname": Optional(str, None),
    "local_ttl": Optional(int, 60),
    "allowed_networks": Optional([str], []),
}


def read_config(perm: Path) -> dict:
    """``<perm>/dnsd/config.json``; absent means defaults, invalid is logged and ignored."""
    path = perm / "dnsd" / "config.json"
    try:
        return read_json(path, CONFIG_SCHEMA)
    except StateFileError as e:
        if e.reason != "does not exist":
            log.error("ignoring config: %s", e)
        return validate({}, CONFIG_SCHEMA)


def resolver_uplinks(perm: Path) -> list[str]:
    """Uplinks whose resolvers to use, the active one first: with failover
    (failoverd's state file) the uplinks that are up, else every one; without it
    the primary only."""
    try:
        state = failover_state.read(perm)
    except StateFileError as e:
        log.warning("failover state: %s", e)
        state = None
    if state is None or not state.uplinks:
        return ["uplink0"]
    names = [u.name for u in state.uplinks if u.up] or [u.name for u in state.uplinks]
    if state.active in names:
        names.remove(state.active)
        names.insert(0, state.active)
    return names


def lease_resolvers(perm: Path) -> list[Upstream]:
    """The DNS servers of the dhcp4 and dhcp6 leases of the uplinks that are up (read
    through their owners), IPv4 first per uplink, duplicates dropped."""
    out: list[Upstream] = []
    for uplink in resolver_uplinks(perm):
        for read, path in (
            (dhcp4_lease.read, dhcp4_lease.lease_path(perm, uplink)),
            (dhcp6_lease.read, dhcp6_lease.lease_path(perm, uplink)),
        ):
            try:
                lease = read(path)
            except StateFileError as e:
                if e.reason != "does not exist":
                    log.warning("no resolvers from %s", e)
                continue
            for address in lease.dns:
                up = Upstream(str(address))
                if up not in out:
                    out.append(up)
    return out


def configured_upstreams(perm: Path, config: dict) -> list[Upstream]:
    """The owner's override list if there is one, else the ISP's resolvers from the leases."""
    if config.get("upstreams"):
        out = []
        for text in config["upstreams"]:
            try:
                out.append(parse_upstream(text))
            except ValueError:
                log.error("config: ignoring upstream %r", text)
        if out:
            return out
    return lease_resolvers(perm)


@dataclass
class _Stats:
    srtt: float = 0.0  # 0 = never measured: untried servers are tried first
    answers: int = 0
    failures: int = 0


class UpstreamPolicy:
    def __init__(self, upstreams: list[Upstream] | None = None):
        self._stats: dict[Upstream, _Stats] = {}
        self.upstreams: list[Upstream] = []
        self.set_upstreams(upstreams or [])

    def set_upstreams(self, upstreams: list[Upstream]) -> None:
        """Replace the list; servers that stay keep what we learnt about them."""
        self.upstreams = list(dict.fromkeys(upstreams))
        self._stats = {u: self._stats.get(u, _Stats()) for u in self.upstreams}

    def srtt(self, upstream: Upstream) -> float:
        return self._stats[upstream].srtt

    def order(self) -> list[Upstream]:
        """Servers to try for one query, best first; the others' SRTTs age a little."""
        stats = self._stats
        ranked = [
            u for _, _, u in sorted((stats[u].srtt, i, u) for i, u in enumerate(self.upstreams))
        ]
        for u in ranked[1:]:
            self._stats[u].srtt *= DECAY
        return ranked

    def timeout(self, upstream: Upstream) -> float:
        """How long to wait for ``upstream`` before moving on: a few SRTTs, within bounds."""
        stats = self._stats.get(upstream)
        if stats is None or stats.answers == 0:
            return INITIAL_TIMEOUT
        return min(MAX_TIMEOUT, max(MIN_TIMEOUT, 4 * stats.srtt))

    def success(self, upstream: Upstream, rtt: float) -> None:
        stats = self._stats.get(upstream)
        if stats is None:  # removed while the query was in flight
            return
        stats.srtt = rtt if stats.answers == 0 else (1 - ALPHA) * stats.srtt + ALPHA * rtt
        stats.answers += 1

    def failure(self, upstream: Upstream) -> None:
        stats = self._stats.get(upstream)
        if stats is None:
            return
        stats.srtt = min(MAX_SRTT, stats.srtt + FAILURE_PENALTY)
        stats.failures += 1
