"""The lease table: who holds which address until when. Pure; time is passed in.

Times are seconds since the epoch (the reactor's ``seconds()``). A static lease
has ``expiry is None`` and never expires. Expired leases are kept, so a client
that comes back gets its previous address again unless somebody else took it.

Against a hostile LAN (issue 16):

- a name stays with the lease that holds it: a client announcing a hostname an
  unexpired lease of another MAC has (or a static lease's) gets no name, and the
  conflict is logged; the owner's override always wins (as dnsmasq does);
- an OFFER reserves its address only weakly: when the pool has nothing else,
  the oldest offer made to another client is given away;
- when the pool is full, a lease whose client did not renew at T1 (a real client
  renews at half the lease time; a flood of random MACs never does) is
  reclaimed, the longest silent first.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from router7.dhcp4d.pool import Pool

log = logging.getLogger(__name__)

# A lease whose last ACK is older than this part of its lease time missed its
# renewal at T1 (0.5): reclaimable when the pool is full.
STALE_FRACTION = 0.6

# How long an OFFER reserves its address for the client it was made to: enough
# for the REQUEST to follow, short enough that lost offers do not drain the pool.
OFFER_HOLD = 30.0


@dataclass
class Lease:
    addr: IPv4Address
    hardware_addr: str  # lowercase aa:bb:cc:dd:ee:ff
    hostname: str = ""
    hostname_override: str = ""
    expiry: float | None = None  # None: static, never expires
    last_ack: float | None = None
    vendor_class: str = ""

    @property
    def static(self) -> bool:
        return self.expiry is None

    def expired(self, now: float) -> bool:
        return self.expiry is not None and self.expiry <= now


@dataclass(frozen=True)
class StaticLease:
    addr: IPv4Address
    hostname: str = ""


_LABEL_JUNK = re.compile(r"[^a-z0-9-]+")


def sanitize_hostname(raw: bytes | str | None) -> str:
    """A client's option 12 as a single DNS label: [a-z0-9-], at most 63 characters.

    Clients send anything (spaces, UTF-8, dots, NULs); dnsd serves the result as
    ``<name>.lan``, so only a valid label is kept, or "" when nothing is left.
    """
    if raw is None:
        return ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    label = text.strip().split(".", 1)[0].lower()
    label = _LABEL_JUNK.sub("-", label).strip("-")
    return label[:63].rstrip("-")


@dataclass
class LeaseTable:
    pool: Pool
    statics: dict[str, StaticLease] = field(default_factory=dict)  # by MAC, from the config
    overrides: dict[str, str] = field(default_factory=dict)  # MAC -> hostname, from the config
    decline_hold: float = 600.0
    leases: dict[IPv4Address, Lease] = field(default_factory=dict)
    by_mac: dict[str, IPv4Address] = field(default_factory=dict)
    declined: dict[IPv4Address, float] = field(default_factory=dict)  # addr -> unusable until
    offers: dict[IPv4Address, tuple[str, float]] = field(default_factory=dict)  # (mac, until)
    _offer_of: dict[str, IPv4Address] = field(default_factory=dict)  # mac -> offered addr

    def __post_init__(self) -> None:
        self._apply_statics()

    # --- loading and configuration ----------------------------------------

    def load(self, leases: list[Lease]) -> list[Lease]:
        """Adopt persisted leases; returns the ones dropped because they no longer fit."""
        dropped = []
        for lease in leases:
            fits = lease.addr in self.pool or (lease.static and self.pool.usable(lease.addr))
            if not fits or lease.addr in self.leases:
                dropped.append(lease)
                continue
            old = self.by_mac.get(lease.hardware_addr)
            if old is not None:  # one lease per MAC: keep the newer
                if _newer(self.leases[old], lease):
                    dropped.append(lease)
                    continue
                dropped.append(self.leases.pop(old))
            self._put(lease)
        self._apply_statics()
        return dropped

    def reconfigure(
        self, pool: Pool, statics: dict[str, StaticLease], overrides: dict[str, str]
    ) -> list[Lease]:
        """New subnet or config (SIGUSR1): keep what still fits; returns dropped leases."""
        current = list(self.leases.values())
        # Static leases that came from the old config become ordinary ones again.
        for mac, st in self.statics.items():
            lease = self.leases.get(st.addr)
            if lease is not None and lease.hardware_addr == mac and mac not in statics:
                lease.expiry = lease.last_ack or 0.0
        self.pool, self.statics, self.overrides = pool, dict(statics), dict(overrides)
        self.leases, self.by_mac, self.offers, self._offer_of = {}, {}, {}, {}
        self.declined = {a: t for a, t in self.declined.items() if a in pool}
        return self.load(current)

    def _apply_statics(self) -> None:
        for mac, st in self.statics.items():
            if not self.pool.usable(st.addr):
                continue
            prev = self.leases.get(st.addr)
            mine = self.by_mac.get(mac)
            if mine is not None and mine != st.addr:
                self._drop(mine)
            if prev is not None and prev.hardware_addr != mac:
                self._drop(st.addr)
                prev = None
            self._put(
                Lease(
                    addr=st.addr,
                    hardware_addr=mac,
                    hostname=st.hostname or (prev.hostname if prev else ""),
                    hostname_override=prev.hostname_override if prev else "",
                    expiry=None,
                    last_ack=prev.last_ack if prev else None,
                    vendor_class=prev.vendor_class if prev else "",
                )
            )

    # --- queries -----------------------------------------------------------

    def lease_of(self, mac: str) -> Lease | None:
        addr = self.by_mac.get(mac)
        return self.leases.get(addr) if addr is not None else None

    def all(self) -> list[Lease]:
        return list(self.leases.values())

    def active(self, now: float) -> list[Lease]:
        return [lease for lease in self.leases.values() if not lease.expired(now)]

    def can_lease(self, addr: IPv4Address, mac: str, now: float) -> bool:
        """May ``mac`` hold ``addr`` now?"""
        static = self.statics.get(mac)
        if static is not None and self.pool.usable(static.addr):
            return addr == static.addr
        if addr not in self.pool:
            mine = self.leases.get(addr)
            # a static lease imported from router7's leases.json may lie outside the pool
            return mine is not None and mine.static and mine.hardware_addr == mac
        if self.declined.get(addr, 0.0) > now:
            return False
        lease = self.leases.get(addr)
        if lease is not None and lease.hardware_addr != mac and not lease.expired(now):
            return False
        held = self.offers.get(addr)
        return held is None or held[0] == mac or held[1] <= now

    def choose(self, mac: str, requested: IPv4Address | None, now: float) -> IPv4Address | None:
        """The address to offer ``mac``, or None when the pool is full (RFC 2131 4.3.1)."""
        mine = self.lease_of(mac)
        if mine is not None and mine.static:
            return mine.addr
        if requested is not None and self.can_lease(requested, mac, now):
            return requested
        if mine is not None and self.can_lease(mine.addr, mac, now):
            return mine.addr  # the previous address, even if its lease ran out
        expired: list[Lease] = []
        for addr in self.pool.scan_from(mac):
            if not self.can_lease(addr, mac, now):
                continue
            lease = self.leases.get(addr)
            if lease is None:
                return addr  # never used, or released and forgotten
            expired.append(lease)
        if expired:  # reuse the address whose owner has been gone longest
            return min(expired, key=lambda lease: lease.expiry or 0.0).addr
        return self._reclaim(mac, now)

    def _reclaim(self, mac: str, now: float) -> IPv4Address | None:
        """The pool is full: the oldest offer made to someone else, else the lease
        silent longest past its T1 (expired now, so the REQUEST that follows may take it)."""
        offered = [
            (until, addr)
            for addr, (holder, until) in self.offers.items()
            if holder != mac
            and addr in self.pool
            and self.declined.get(addr, 0.0) <= now
            and not self._held_by_other(addr, mac, now)
        ]
        if offered:
            return min(offered)[1]
        stale = [lease for lease in self.leases.values() if self.stale(lease, now)]
        if not stale:
            return None
        victim = min(stale, key=lambda lease: lease.last_ack or 0.0)
        log.warning(
            "pool full: reclaiming %s from %s (no renewal since its last ACK)",
            victim.addr,
            victim.hardware_addr,
        )
        victim.expiry = now
        return victim.addr

    def _held_by_other(self, addr: IPv4Address, mac: str, now: float) -> bool:
        lease = self.leases.get(addr)
        return lease is not None and lease.hardware_addr != mac and not lease.expired(now)

    def stale(self, lease: Lease, now: float) -> bool:
        """An unexpired dynamic lease in the pool whose client missed its renewal at T1."""
        if lease.static or lease.expired(now) or lease.addr not in self.pool:
            return False
        if lease.last_ack is None:
            return True
        period = lease.expiry - lease.last_ack
        return now - lease.last_ack > STALE_FRACTION * period

    def free(self, now: float) -> int:
        """Pool addresses nobody holds now (no unexpired lease, offer or decline)."""
        busy = {a for a, lease in self.leases.items() if a in self.pool and not lease.expired(now)}
        busy.update(a for a, (_, until) in self.offers.items() if until > now and a in self.pool)
        busy.update(a for a, until in self.declined.items() if until > now and a in self.pool)
        return self.pool.size - len(busy)

    def name_holder(self, name: str, mac: str, now: float) -> Lease | None:
        """Another client's lease (unexpired, or static) that already has ``name``."""
        if not name:
            return None
        for lease in self.leases.values():
            if lease.hardware_addr != mac and lease.hostname == name and not lease.expired(now):
                return lease
        return None

    # --- changes -----------------------------------------------------------

    def hold(self, addr: IPv4Address, mac: str, now: float) -> None:
        """Reserve ``addr`` for ``mac`` between OFFER and REQUEST."""
        self.forget_offer(mac)
        self.offers[addr] = (mac, now + OFFER_HOLD)
        self._offer_of[mac] = addr

    def has_offer(self, mac: str, now: float) -> bool:
        """Does ``mac`` hold an unexpired offer?"""
        addr = self._offer_of.get(mac)
        held = self.offers.get(addr) if addr is not None else None
        return held is not None and held[0] == mac and held[1] > now

    def forget_offer(self, mac: str) -> None:
        addr = self._offer_of.pop(mac, None)
        if addr is not None and self.offers.get(addr, ("",))[0] == mac:
            del self.offers[addr]

    def commit(
        self,
        addr: IPv4Address,
        mac: str,
        now: float,
        lease_time: float,
        hostname: str = "",
        vendor_class: str = "",
    ) -> Lease:
        """Grant ``addr`` to ``mac`` (the caller checked can_lease): an ACK."""
        prev = self.lease_of(mac)
        if prev is not None and prev.addr != addr:
            self._drop(prev.addr)  # the client moved: free its old address
        other = self.leases.get(addr)
        if other is not None and other.hardware_addr != mac:
            self._drop(addr)  # an expired lease of somebody else
        self.forget_offer(mac)
        static = prev is not None and prev.static and prev.addr == addr
        override = self.overrides.get(mac) or (prev.hostname_override if prev else "")
        name = hostname or (prev.hostname if prev else "")
        if static and prev.hostname:
            name = prev.hostname  # a static lease keeps its configured name
        holder = None if override else self.name_holder(name, mac, now)
        if holder is not None:
            log.warning(
                "%s asks for the name %r, which %s (%s) holds: it gets no name",
                mac,
                name,
                holder.hardware_addr,
                holder.addr,
            )
            name = ""
        lease = Lease(
            addr=addr,
            hardware_addr=mac,
            hostname=override or name,
            hostname_override=override,
            expiry=None if static else now + lease_time,
            last_ack=now,
            vendor_class=vendor_class or (prev.vendor_class if prev else ""),
        )
        self._put(lease)
        return lease

    def release(self, addr: IPv4Address, mac: str, now: float) -> bool:
        """DHCPRELEASE: the address is free again, but remembered for the same client."""
        lease = self.leases.get(addr)
        if lease is None or lease.hardware_addr != mac or lease.static or lease.expired(now):
            return False
        lease.expiry = now
        return True

    def decline(self, addr: IPv4Address, mac: str, now: float) -> bool:
        """DHCPDECLINE: somebody else uses ``addr``; keep it out of the pool for a while."""
        lease = self.leases.get(addr)
        if lease is None or lease.hardware_addr != mac or lease.static:
            return False
        self._drop(addr)
        self.declined[addr] = now + self.decline_hold
        return True

    def set_hostname(self, mac: str, hostname: str, now: float) -> Lease | None:
        """The owner renames a device: sticks across renewals (router7's /sethostname)."""
        lease = self.lease_of(mac)
        if lease is None or lease.expired(now):
            return None
        name = sanitize_hostname(hostname)
        lease.hostname = name
        lease.hostname_override = name
        return lease

    def _put(self, lease: Lease) -> None:
        self.leases[lease.addr] = lease
        self.by_mac[lease.hardware_addr] = lease.addr

    def _drop(self, addr: IPv4Address) -> None:
        lease = self.leases.pop(addr, None)
        if lease is not None and self.by_mac.get(lease.hardware_addr) == addr:
            del self.by_mac[lease.hardware_addr]


def _newer(a: Lease, b: Lease) -> bool:
    """Is ``a`` the more recent of two leases of one MAC?"""
    if a.static != b.static:
        return a.static
    return (a.last_ack or 0.0, a.expiry or 0.0) >= (b.last_ack or 0.0, b.expiry or 0.0)
