"""What a router advertisement says: the pure core of radvd (no sockets, no files).

Inputs are plain values (the parsed dhcp6 lease, the config, lan0's facts, the
current time, whether the uplink has an IPv6 default route); the output is a
RouterAdvert that wire.py encodes. The Planner keeps one piece of state: which
LAN prefixes hosts may still hold, and until when, so that a prefix that is no
longer delegated keeps being advertised as stale (RFC 9096) until the hosts'
copies have run out.

Lifetime policy (RFC 9096 §3, which updates RFC 7084's L-13):
* a LAN prefix follows the delegated prefix: preferred/valid lifetimes are the
  remaining delegated ones, capped at ND_PREFERRED_LIMIT (2700 s) and
  ND_VALID_LIMIT (5400 s), so a renumbered host loses an address within 90 min
  even when nobody tells it;
* except that the router keeps a delegation it could not renew, even past its
  end (keep connectivity: the dhcp6 client and netconfigd hold on to the last
  lease while the ISP's DHCP server is away), and so do its hosts: the valid
  lifetime of a prefix the router keeps is never advertised below
  ``min_valid_lifetime`` (3 × MaxRtrAdvInterval, outlasting the next RA). RFC
  9096 alone would let the hosts' addresses run out while the router still
  routes the prefix. Preferred lifetimes still follow the delegation;
* a prefix that stopped being delegated (new prefix, lease gone, lifetime run
  out) is advertised with preferred lifetime 0 and a valid lifetime that counts
  down in real time to the moment hosts would drop it anyway (or to the end of
  its delegation, if that comes first). Hosts deprecate addresses from it at
  once, new connections use the new prefix, and the old address disappears.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import Any

# RFC 9096 §3 recommended caps for PIO lifetimes on the LAN.
ND_PREFERRED_LIMIT = 2700
ND_VALID_LIMIT = 5400
# RFC 4862 §5.5.3 e): a host keeps a prefix for at least this long after a lower
# valid lifetime unless its stored lifetime is already shorter. When we do not
# know what an earlier router7 (the Go original advertised 7200 s) told hosts,
# we keep signalling a stale prefix this long.
UNKNOWN_HOST_HOLD = 7200

# RFC 4861 §6.2.1 defaults: MaxRtrAdvInterval 600 s, MinRtrAdvInterval 0.33 × Max,
# AdvDefaultLifetime 3 × Max. RFC 8106 §5.1: RDNSS/DNSSL lifetimes at least 3 × Max.
DEFAULT_MAX_INTERVAL = 600.0


@dataclass(frozen=True)
class Config:
    """``<perm>/radvd/config.json``; every field optional."""

    subnet_id: int = 0  # which /64 of the delegated prefix lan0 gets (0 = the first)
    max_interval: float = DEFAULT_MAX_INTERVAL
    min_interval: float | None = None  # None: 0.33 × max_interval (RFC 4861)
    router_lifetime: int | None = None  # None: 3 × max_interval, at most 9000
    preferred_limit: int = ND_PREFERRED_LIMIT
    valid_limit: int = ND_VALID_LIMIT
    min_valid_lifetime: int | None = None  # None: 3 × max_interval; 0: RFC 9096 alone
    dnssl: tuple[str, ...] = ("lan",)
    rdnss: tuple[ipaddress.IPv6Address, ...] = ()  # empty: lan0's link-local address
    hop_limit: int = 64

    @property
    def effective_min_interval(self) -> float:
        if self.min_interval is not None:
            return self.min_interval
        return max(3.0, 0.33 * self.max_interval)

    @property
    def effective_router_lifetime(self) -> int:
        if self.router_lifetime is not None:
            return self.router_lifetime
        return min(9000, int(3 * self.max_interval))

    @property
    def effective_min_valid(self) -> int:
        if self.min_valid_lifetime is not None:
            return self.min_valid_lifetime
        return min(self.valid_limit, int(3 * self.max_interval))

    @property
    def option_lifetime(self) -> int:
        """RDNSS and DNSSL lifetime: 3 × MaxRtrAdvInterval (RFC 8106 §5.1)."""
        return int(3 * self.max_interval)

    def validate(self) -> Config:
        """Raise ValueError on settings RFC 4861 §6.2.1 forbids."""
        if not 4 <= self.max_interval <= 1800:
            raise ValueError("max_interval must be within 4..1800 seconds")
        if not 3 <= self.effective_min_interval <= 0.75 * self.max_interval:
            raise ValueError("min_interval must be within 3..0.75 × max_interval seconds")
        if not 0 <= self.effective_router_lifetime <= 9000:
            raise ValueError("router_lifetime must be within 0..9000 seconds")
        if self.subnet_id < 0:
            raise ValueError("subnet_id must not be negative")
        if not 0 <= self.hop_limit <= 255:
            raise ValueError("hop_limit must be within 0..255")
        if not 0 <= self.preferred_limit <= self.valid_limit:
            raise ValueError("need 0 <= preferred_limit <= valid_limit")
        if not 0 <= self.effective_min_valid <= self.valid_limit:
            raise ValueError("min_valid_lifetime must be within 0..valid_limit")
        return self


@dataclass(frozen=True)
class Delegated:
    """One prefix of the dhcp6 lease, with absolute end times (epoch seconds; None = unknown)."""

    prefix: ipaddress.IPv6Network
    preferred_until: float | None = None
    valid_until: float | None = None


@dataclass(frozen=True)
class Lease:
    prefixes: tuple[Delegated, ...] = ()
    previous: tuple[Delegated, ...] = ()
    obtained_at: float | None = None


@dataclass(frozen=True)
class LanFacts:
    ifname: str
    ifindex: int
    mac: str
    mtu: int
    link_local: ipaddress.IPv6Address


@dataclass(frozen=True)
class PrefixInfo:
    prefix: ipaddress.IPv6Network
    preferred: int
    valid: int
    on_link: bool = True
    autonomous: bool = True

    @property
    def stale(self) -> bool:
        return self.preferred == 0


@dataclass(frozen=True)
class RouterAdvert:
    router_lifetime: int
    prefixes: tuple[PrefixInfo, ...]
    rdnss: tuple[ipaddress.IPv6Address, ...]
    rdnss_lifetime: int
    dnssl: tuple[str, ...]
    dnssl_lifetime: int
    mtu: int
    source_mac: str
    hop_limit: int = 64

    def final(self) -> RouterAdvert:
        """The RA sent when we stop advertising (RFC 4861 §6.2.5): not a default router."""
        return replace(self, router_lifetime=0)


@dataclass
class _Held:
    """A prefix hosts may hold: until ``host_expiry`` at the latest."""

    host_expiry: float
    # Set once the prefix is stale: the fixed deadline its advertised valid lifetime counts down to.
    stale_deadline: float | None = None


def lan_prefix(
    delegated: ipaddress.IPv6Network, subnet_id: int = 0
) -> ipaddress.IPv6Network | None:
    """The /64 for lan0 inside a delegated prefix; None if it has no such /64."""
    if delegated.prefixlen > 64:
        return None
    if subnet_id >= 1 << (64 - delegated.prefixlen):
        return None
    base = int(delegated.network_address) + (subnet_id << 64)
    return ipaddress.IPv6Network((base, 64))


def _remaining(until: float | None, now: float, limit: int) -> int:
    if until is None:
        return limit
    return max(0, min(limit, int(until - now)))


def _revoked(d: Delegated, lease: Lease) -> bool:
    """The ISP itself ended the delegation (a Reply with valid lifetime 0), as opposed to
    its lifetime running out without a renewal."""
    return (
        d.valid_until is not None
        and lease.obtained_at is not None
        and d.valid_until <= lease.obtained_at
    )


class Planner:
    """Turns inputs into RouterAdverts and remembers what hosts were told."""

    def __init__(self, held: dict[ipaddress.IPv6Network, float] | None = None):
        # prefix → latest moment a host may still hold it (from previous runs, see memory()).
        self._held: dict[ipaddress.IPv6Network, _Held] = {
            p: _Held(host_expiry=t) for p, t in (held or {}).items()
        }
        self._seen_previous: dict[ipaddress.IPv6Network, float] = {}

    def memory(self) -> dict[ipaddress.IPv6Network, float]:
        """What to persist so that a restarted radvd still deprecates old prefixes."""
        return {p: h.host_expiry for p, h in self._held.items()}

    def current_prefixes(
        self,
        now: float,
        lease: Lease | None,
        extra: tuple[ipaddress.IPv6Network, ...],
        config: Config,
    ) -> list[PrefixInfo]:
        """The LAN prefixes that are delegated (or configured) right now, with lifetimes."""
        out: dict[ipaddress.IPv6Network, PrefixInfo] = {}
        for d in lease.prefixes if lease else ():
            lan = lan_prefix(d.prefix, config.subnet_id)
            if lan is None or lan in out:
                continue
            valid = _remaining(d.valid_until, now, config.valid_limit)
            if not _revoked(d, lease):
                valid = max(valid, config.effective_min_valid)  # kept: module docstring
            preferred = min(valid, _remaining(d.preferred_until, now, config.preferred_limit))
            if valid > 0:
                out[lan] = PrefixInfo(lan, preferred, valid)
        for p in extra:
            lan = lan_prefix(p)
            if lan is not None and lan not in out:
                out[lan] = PrefixInfo(lan, config.preferred_limit, config.valid_limit)
        return list(out.values())

    def plan(
        self,
        now: float,
        lease: Lease | None,
        extra: tuple[ipaddress.IPv6Network, ...],
        config: Config,
        facts: LanFacts,
        default_route: bool,
    ) -> RouterAdvert | None:
        """The RA to send now, or None when there is nothing worth saying.

        Call it only for RAs that are sent: it records what hosts were told.
        """
        current = self.current_prefixes(now, lease, extra, config)
        current_set = {p.prefix for p in current}
        # Delegated prefixes that are not current (replaced, or run out): when the ISP
        # stops routing them, which bounds the valid lifetime we may still advertise.
        isp_valid_until: dict[ipaddress.IPv6Network, float] = {}
        for d in (*lease.previous, *lease.prefixes) if lease else ():
            lan = lan_prefix(d.prefix, config.subnet_id)
            if lan is None or lan in current_set:
                continue
            until = d.valid_until if d.valid_until is not None else now
            isp_valid_until[lan] = min(until, isp_valid_until.get(lan, until))
            if d in lease.previous and lan not in self._held:
                # A previous prefix we never advertised ourselves (e.g. restarted without
                # memory): hosts may hold it as long as any RA sent before the change could
                # have said. The change happened about when the new lease was obtained.
                since = self._seen_previous.setdefault(lan, lease.obtained_at or now)
                if now < since + UNKNOWN_HOST_HOLD:
                    self._held[lan] = _Held(host_expiry=since + UNKNOWN_HOST_HOLD)
        for lan in set(self._seen_previous) - set(isp_valid_until):
            del self._seen_previous[lan]

        for info in current:
            held = self._held.get(info.prefix)
            if held is None or held.stale_deadline is not None:  # new, or current again
                held = self._held[info.prefix] = _Held(
                    host_expiry=held.host_expiry if held else now
                )
            held.host_expiry = max(held.host_expiry, now + info.valid)

        stale: list[PrefixInfo] = []
        for prefix, held in sorted(self._held.items()):
            if prefix in current_set:
                continue
            if now >= held.host_expiry:
                del self._held[prefix]  # no host can hold it any more
                self._seen_previous[prefix] = float("-inf")  # and never re-adopt it
                continue
            deadline = min(held.host_expiry, isp_valid_until.get(prefix, held.host_expiry))
            if held.stale_deadline is not None:
                deadline = min(deadline, held.stale_deadline)
            held.stale_deadline = deadline  # fixed from now on: the valid lifetime counts down
            valid = max(0, int(held.stale_deadline - now))
            stale.append(PrefixInfo(prefix, 0, valid))

        prefixes = tuple(current) + tuple(stale)
        if not prefixes:
            return None  # like the original: without a prefix there is nothing to say
        # A default router only when it can route: the uplink has an IPv6 default route
        # and hosts have a current prefix to source traffic from (retired ones are not).
        router_lifetime = config.effective_router_lifetime if default_route and current else 0
        return RouterAdvert(
            router_lifetime=router_lifetime,
            prefixes=prefixes,
            # RDNSS: lan0's link-local, not the global <prefix>::1 (RFC 8106 allows either):
            # it survives renumbering, and dnsd serves private addresses only.
            rdnss=tuple(config.rdnss) or (facts.link_local,),
            rdnss_lifetime=config.option_lifetime,
            dnssl=tuple(config.dnssl),
            dnssl_lifetime=config.option_lifetime if config.dnssl else 0,
            mtu=facts.mtu,
            source_mac=facts.mac,
            hop_limit=config.hop_limit,
        )


def describe(advert: RouterAdvert) -> dict[str, Any]:
    """A JSON-friendly summary for the logs."""
    return {
        "router_lifetime": advert.router_lifetime,
        "prefixes": [
            {"prefix": str(p.prefix), "preferred": p.preferred, "valid": p.valid}
            for p in advert.prefixes
        ],
        "rdnss": [str(a) for a in advert.rdnss],
        "dnssl": list(advert.dnssl),
        "mtu": advert.mtu,
    }


__all__ = [
    "ND_PREFERRED_LIMIT",
    "ND_VALID_LIMIT",
    "Config",
    "Delegated",
    "LanFacts",
    "Lease",
    "Planner",
    "PrefixInfo",
    "RouterAdvert",
    "describe",
    "lan_prefix",
]
