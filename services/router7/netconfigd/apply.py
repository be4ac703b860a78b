"""One apply run: plan -> links, WireGuard, nftables, addresses, routes, sysctls.

The ruleset comes before the addresses, routes and forwarding sysctls. Loading it
switches conntrack on before its NAT rules take effect (the transaction sets up its
expressions first), so a packet forwarded meanwhile gets a conntrack entry without
NAT, and a flow that keeps sending (a ping, a VoIP or WireGuard stream from a fixed
port) keeps that entry alive and leaves the router with its private source address
for good. Seen after an update under qemu; tests/integration/test_netconfigd.py
widens the window to catch it. Forwarding is on only while our ruleset is loaded.

Steps collect errors and keep going (reference §3.1): a broken port forwarding
must not stop the DHCP address from being configured. The Applier lives as long
as the service, because it remembers what it applied last (the ruleset, our
static routes) to tell "unchanged" from "changed" without touching the kernel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from router7.netconfigd import firewall
from router7.netconfigd.addrs import AddressApplier
from router7.netconfigd.links import LinkApplier, read_links
from router7.netconfigd.nft import Nft, NftError
from router7.netconfigd.plan import FORWARDING, Plan
from router7.netconfigd.wireguard import WireguardApplier
from router7.runtime.statefile import write_json_atomic

log = logging.getLogger(__name__)


@dataclass
class Result:
    errors: list[str] = field(default_factory=list)
    addresses_changed: bool = False
    firewall: str = "unchanged"  # "unchanged", "chains: ...", "rebuilt", "failed"


class Applier:
    def __init__(
        self,
        ipr_factory: Callable | None = None,
        nft: Nft | None = None,
        sysctl_root=None,
        state_file: Path | None = None,
    ):
        if ipr_factory is None:
            from pyroute2 import IPRoute

            ipr_factory = IPRoute
        self.ipr_factory = ipr_factory
        self.nft = nft or Nft()
        self.sysctl_root = sysctl_root
        self.state_file = state_file
        self._state: tuple[firewall.Ruleset, dict] | None = None
        self.last_script: str | None = None
        self.flowtable: tuple[bool, str] | None = None  # probe result, once
        # Long-lived: they remember what they warned about and what they installed.
        self._links = LinkApplier(None)
        self._wireguard = WireguardApplier(None)
        kw = {"sysctl_root": sysctl_root} if sysctl_root else {}
        self._addresses = AddressApplier(None, **kw)

    def apply(self, plan: Plan) -> Result:
        result = Result()
        # A fresh netlink socket per run: nothing stale is left to read from it.
        with self.ipr_factory() as ipr:
            self._links.ipr = self._wireguard.ipr = self._addresses.ipr = ipr
            result.errors += self._links.apply(plan)
            result.errors += self._wireguard.create_links(plan.wireguard)
            names = {lk.name: lk.index for lk in read_links(ipr)}
            self._firewall(plan, set(names), result)
            if not self._ruleset_loaded(result):  # module docstring
                off = tuple((k, "0") if (k, v) in FORWARDING else (k, v) for k, v in plan.sysctls)
                plan = replace(plan, sysctls=off)
                result.errors.append("forwarding off: no firewall in place")
            errors, result.addresses_changed = self._addresses.apply(plan, names)
            result.errors += errors
            result.errors += self._wireguard.configure(plan.wireguard)
        return result

    def _ruleset_loaded(self, result: Result) -> bool:
        """Our tables are in the kernel: just applied or verified unchanged, or, when
        this run's transaction failed, left from an earlier one (a batch is all or
        nothing)."""
        if result.firewall != "failed":
            return True
        try:
            return {firewall.FILTER_TABLE, firewall.NAT_TABLE} <= set(self.nft.tables())
        except NftError:
            return False

    def firewall_spec(self, plan: Plan, existing: set[str]) -> firewall.FirewallSpec:
        devices = tuple(
            sorted(d for d in {plan.uplink, plan.lan, *plan.backup_uplinks} if d in existing)
        )
        if self.flowtable is None and devices:
            self.flowtable = self.nft.supports_flowtable(devices[0])
            if not self.flowtable[0]:
                log.warning(
                    "no flowtable fast path: the kernel refused one (%s)", self.flowtable[1]
                )
        return firewall.FirewallSpec(
            uplink=plan.uplink,
            lan=plan.lan,
            backup_uplinks=plan.backup_uplinks,
            internal_v4=plan.internal_v4,
            forwardings=plan.forwardings,
            wireguard=plan.wireguard,
            flowtable_devices=devices,
            flowtable=bool(self.flowtable and self.flowtable[0]),
        )

    def _last_applied(self) -> firewall.Ruleset | None:
        """The ruleset we applied last, if the kernel still has exactly that.

        Remembered in memory and in ``state_file`` (so a restarted netconfigd does
        not rebuild either), and checked against the kernel's own listing, so a
        table someone edited or flushed by hand is rebuilt.
        """
        state = self._state
        if state is None and self.state_file is not None:
            try:
                raw = json.loads(self.state_file.read_text())
                state = (firewall.Ruleset.from_json(raw["ruleset"]), raw["listings"])
            except (OSError, ValueError, KeyError, TypeError):
                state = None
        if state is None:
            return None
        ruleset, listings = state
        for t in ruleset.tables:
            if self.nft.listing(t.family, t.name) != listings.get(f"{t.family} {t.name}"):
                log.warning(
                    "table %s %s differs from what we applied: rebuilding", t.family, t.name
                )
                return None
        return ruleset

    def _remember(self, ruleset: firewall.Ruleset) -> None:
        listings = {
            f"{t.family} {t.name}": self.nft.listing(t.family, t.name) for t in ruleset.tables
        }
        self._state = (ruleset, listings)
        if self.state_file is not None:
            try:
                write_json_atomic(
                    self.state_file, {"ruleset": ruleset.to_json(), "listings": listings}
                )
            except OSError as e:
                log.warning("cannot save %s: %s", self.state_file, e)

    def _firewall(self, plan: Plan, existing: set[str], result: Result) -> None:
        try:
            ruleset = firewall.build(self.firewall_spec(plan, existing))
            old = self._last_applied()
            counters = (
                self.nft.counters(*firewall.FILTER_TABLE)
                if firewall.needs_rebuild(ruleset, old)
                else {}
            )
            script = firewall.transaction(ruleset, old, counters)
            if script is None:
                result.firewall = "unchanged"
                return
            self.nft.apply(script)
            self.last_script = script
            self._remember(ruleset)
            chains = firewall.changed_chains(script)
            result.firewall = f"chains: {', '.join(sorted(chains))}" if chains else "rebuilt"
            log.info("nftables: %s", result.firewall)
        except NftError as e:
            result.firewall = "failed"
            result.errors.append(f"nftables: {e}")
