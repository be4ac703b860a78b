"""Links through netlink (pyroute2): bridges, rename by MAC, MTU, spoofed MAC, up.

Each step compares with the kernel first and only changes what differs, so a
second run sends nothing and never takes a link down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from router7.netconfigd.plan import LinkSpec, Plan

log = logging.getLogger(__name__)

IFF_UP = 0x1


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    mac: str | None
    mtu: int
    up: bool
    kind: str | None
    master: int | None


def read_links(ipr) -> list[Link]:
    out = []
    for msg in ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        mac = msg.get_attr("IFLA_ADDRESS")
        out.append(
            Link(
                index=msg["index"],
                name=msg.get_attr("IFLA_IFNAME"),
                # wg/sit/lo have no (or an all-zero) MAC: they are matched by name only
                mac=mac.lower() if mac and mac != "00:00:00:00:00:00" else None,
                mtu=msg.get_attr("IFLA_MTU") or 0,
                up=bool(msg["flags"] & IFF_UP),
                kind=info.get_attr("IFLA_INFO_KIND") if info else None,
                master=msg.get_attr("IFLA_MASTER"),
            )
        )
    return out


def find_spec(link: Link, specs: tuple[LinkSpec, ...]) -> LinkSpec | None:
    """By current MAC (hardware or spoofed), else by name (reference §3.2)."""
    if link.mac and link.master is None:
        for s in specs:
            if link.mac in s.macs:
                return s
    return next((s for s in specs if s.name == link.name), None)


class LinkApplier:
    def __init__(self, ipr):
        self.ipr = ipr
        self._fec_warned = False

    def apply(self, plan: Plan) -> list[str]:
        errors: list[str] = []
        self._bridges(plan, errors)
        for link in read_links(self.ipr):
            spec = find_spec(link, plan.links)
            if spec is None or (link.kind == "bridge" and link.name != spec.name):
                continue
            try:
                self._link(link, spec)
            except Exception as e:  # noqa: BLE001 - one bad link must not stop the rest
                errors.append(f"link {link.name} ({spec.name}): {e}")
        return errors

    def _bridges(self, plan: Plan, errors: list[str]) -> None:
        for bridge in plan.bridges:
            try:
                self._bridge(bridge.name, bridge.members)
            except Exception as e:  # noqa: BLE001
                errors.append(f"bridge {bridge.name}: {e}")

    def _bridge(self, name: str, members: tuple[str, ...]) -> None:
        links = read_links(self.ipr)
        br = next((lk for lk in links if lk.name == name), None)
        if br is None:
            # Created with its first member's MAC, so dhcp4 never sees a random one.
            kw = {"address": members[0]} if members else {}
            self.ipr.link("add", ifname=name, kind="bridge", **kw)
            log.info("created bridge %s", name)
            links = read_links(self.ipr)
            br = next(lk for lk in links if lk.name == name)
        for lk in links:
            if lk.index == br.index or lk.kind == "bridge" or lk.mac not in members:
                continue
            if lk.master != br.index:
                self.ipr.link("set", index=lk.index, master=br.index)
                log.info("enslaved %s to bridge %s", lk.name, name)
            if not lk.up:
                self.ipr.link("set", index=lk.index, state="up")
        if not br.up:
            self.ipr.link("set", index=br.index, state="up")

    def _link(self, link: Link, spec: LinkSpec) -> None:
        up = link.up
        if link.name != spec.name:
            taken = next((lk for lk in read_links(self.ipr) if lk.name == spec.name), None)
            if taken is not None:
                raise RuntimeError(
                    f"cannot rename to {spec.name}: the name is taken by index {taken.index}"
                )
            if up:  # the kernel renames only links that are down
                self.ipr.link("set", index=link.index, state="down")
                up = False
            self.ipr.link("set", index=link.index, ifname=spec.name)
            log.info("renamed %s to %s", link.name, spec.name)
        if spec.mtu and link.mtu != spec.mtu:
            self.ipr.link("set", index=link.index, mtu=spec.mtu)
            log.info("%s: MTU %d", spec.name, spec.mtu)
        if spec.spoof_mac and link.mac != spec.spoof_mac:
            self.ipr.link("set", index=link.index, address=spec.spoof_mac)
            log.info("%s: MAC %s", spec.name, spec.spoof_mac)
        if spec.fec and not self._fec_warned:
            self._fec_warned = True
            log.warning(
                "%s: fec=%s ignored: FEC (ethtool netlink) is not implemented", spec.name, spec.fec
            )
        if not up:
            self.ipr.link("set", index=link.index, state="up")
            log.info("%s: up", spec.name)
