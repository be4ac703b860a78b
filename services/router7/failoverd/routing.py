"""Policy routing per uplink and the conntrack flush (the kernel edge of failoverd).

Each uplink ``uplinkN`` gets routing table ``100 + N`` holding its own default
route, and rules that send into it what must leave through that uplink whatever
the main table's default route says:

* ``from <uplink address>``: the router's own traffic sourced from that uplink
  (probes, replies to port forwards and pings arriving there);
* ``oif <uplink>``: sockets bound to the uplink (the probes).

A rule ``lookup main suppress_prefixlength 0`` before them keeps every specific
route (the LAN, the ISP's on-link subnets) in charge: only the default route is
per uplink. The main table's default route itself belongs to netconfigd, which
points it at the active uplink.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)

TABLE_BASE = 100
RULE_MAIN = 900  # lookup main suppress_prefixlength 0
RULE_FROM = 1000  # + N: from <address of uplinkN>
RULE_OIF = 1100  # + N: oif uplinkN
RTPROT_FAILOVER = 0x38  # marks our routes in the per-uplink tables
OUR_PRIORITIES = (RULE_MAIN, *range(RULE_FROM, RULE_FROM + 100), *range(RULE_OIF, RULE_OIF + 100))


def uplink_number(ifname: str) -> int:
    tail = ifname[6:] if ifname.startswith("uplink") else ""
    return int(tail) if tail.isdigit() else 0


def table_for(ifname: str) -> int:
    return TABLE_BASE + uplink_number(ifname)


@dataclass(frozen=True)
class UplinkRoute:
    ifname: str
    address: ipaddress.IPv4Address | None
    gateway: ipaddress.IPv4Address | None
    # IPv6: the delegated prefixes (LAN hosts' source addresses) and the router the
    # uplink's RAs announce (a link-local address).
    prefixes6: tuple[ipaddress.IPv6Network, ...] = ()
    gateway6: str | None = None


@dataclass(frozen=True)
class Rule:
    priority: int
    table: int
    src: str | None = None  # "a.b.c.d/32", "2001:db8::/48"
    oif: str | None = None
    suppress_prefixlength: int | None = None
    family: int = socket.AF_INET


def wanted_rules(uplinks: list[UplinkRoute]) -> list[Rule]:
    rules = [Rule(RULE_MAIN, 254, suppress_prefixlength=0)]
    rules6 = [Rule(RULE_MAIN, 254, suppress_prefixlength=0, family=socket.AF_INET6)]
    for u in uplinks:
        n, table = uplink_number(u.ifname), table_for(u.ifname)
        if u.address is not None:
            rules.append(Rule(RULE_FROM + n, table, src=f"{u.address}/32"))
        rules.append(Rule(RULE_OIF + n, table, oif=u.ifname))
        # Source routing: LAN hosts' packets leave through the uplink that owns their
        # source prefix (the other ISP would drop them, BCP 38). One prefix per uplink.
        if u.prefixes6:
            rules6.append(
                Rule(RULE_FROM + n, table, src=str(u.prefixes6[0]), family=socket.AF_INET6)
            )
        rules6.append(Rule(RULE_OIF + n, table, oif=u.ifname, family=socket.AF_INET6))
    return rules + rules6


class PolicyRouting:
    """Keeps the tables and rules of ``wanted_rules`` in the kernel (pyroute2)."""

    def __init__(self, ipr_factory=None):
        if ipr_factory is None:
            from pyroute2 import IPRoute

            ipr_factory = IPRoute
        self.ipr_factory = ipr_factory

    def apply(self, uplinks: list[UplinkRoute]) -> list[str]:
        errors: list[str] = []
        with self.ipr_factory() as ipr:
            rules = wanted_rules(uplinks)
            for family in (socket.AF_INET, socket.AF_INET6):
                self._rules(ipr, family, [r for r in rules if r.family == family], errors)
            for u in uplinks:
                self._table(ipr, u, errors)
                self._table6(ipr, u, errors)
        return errors

    def _table6(self, ipr, u: UplinkRoute, errors: list[str]) -> None:
        table = table_for(u.ifname)
        idx = ipr.link_lookup(ifname=u.ifname)
        current = [
            m
            for m in ipr.get_routes(family=socket.AF_INET6, table=table)
            if m["proto"] == RTPROT_FAILOVER
        ]
        if not idx or u.gateway6 is None:
            for m in current:
                _delete(ipr, m, table, errors, family=socket.AF_INET6)
            return
        if any(
            m.get_attr("RTA_GATEWAY") == u.gateway6 and m.get_attr("RTA_OIF") == idx[0]
            for m in current
        ):
            return
        for m in current:
            _delete(ipr, m, table, errors, family=socket.AF_INET6)
        try:
            ipr.route(
                "replace", family=socket.AF_INET6, dst="::/0", gateway=u.gateway6, oif=idx[0],
                table=table, proto=RTPROT_FAILOVER,
            )  # fmt: skip
            log.info("table %d: default via %s dev %s", table, u.gateway6, u.ifname)
        except Exception as e:  # noqa: BLE001
            errors.append(f"table {table} default via {u.gateway6}: {e}")

    def _rules(self, ipr, family: int, wanted: list[Rule], errors: list[str]) -> None:
        have = {}
        for msg in ipr.get_rules(family=family):
            prio = msg.get_attr("FRA_PRIORITY")
            if prio in OUR_PRIORITIES:
                have[prio] = msg
        want = {r.priority: r for r in wanted}
        for prio, msg in have.items():
            r = want.get(prio)
            if r is not None and _rule_matches(msg, r):
                want.pop(prio)
                continue
            try:
                ipr.rule("del", family=family, priority=prio)
            except Exception as e:  # noqa: BLE001
                errors.append(f"rule {prio}: {e}")
        for r in want.values():
            kw = {"family": family, "priority": r.priority, "table": r.table}
            if r.src:
                addr, plen = r.src.split("/")
                kw.update(src=addr, src_len=int(plen))
            if r.oif:
                kw["oifname"] = r.oif
            if r.suppress_prefixlength is not None:
                kw["suppress_prefixlen"] = r.suppress_prefixlength
            try:
                ipr.rule("add", **kw)
                log.info("rule %s", r)
            except Exception as e:  # noqa: BLE001
                errors.append(f"rule {r}: {e}")

    def _table(self, ipr, u: UplinkRoute, errors: list[str]) -> None:
        table = table_for(u.ifname)
        try:
            idx = ipr.link_lookup(ifname=u.ifname)
        except Exception:  # noqa: BLE001
            idx = []
        current = [
            m
            for m in ipr.get_routes(family=socket.AF_INET, table=table)
            if m["proto"] == RTPROT_FAILOVER
        ]
        if not idx or u.gateway is None or u.address is None:
            for m in current:
                _delete(ipr, m, table, errors)
            return
        kw = {
            "dst": "0.0.0.0/0",
            "gateway": str(u.gateway),
            "oif": idx[0],
            "prefsrc": str(u.address),
            "table": table,
            "proto": RTPROT_FAILOVER,
        }
        ok = any(
            m.get_attr("RTA_GATEWAY") == kw["gateway"]
            and m.get_attr("RTA_OIF") == kw["oif"]
            and m.get_attr("RTA_PREFSRC") == kw["prefsrc"]
            and m["dst_len"] == 0
            for m in current
        )
        if ok:
            return
        for m in current:
            _delete(ipr, m, table, errors)
        try:
            # The gateway is on-link even when the lease's subnet does not say so.
            ipr.route(
                "replace", dst=f"{u.gateway}/32", oif=idx[0], scope=253, table=table,
                proto=RTPROT_FAILOVER, prefsrc=str(u.address),
            )  # fmt: skip
            ipr.route("replace", **kw)
            log.info("table %d: default via %s dev %s", table, u.gateway, u.ifname)
        except Exception as e:  # noqa: BLE001
            errors.append(f"table {table} default via {u.gateway}: {e}")


def _rule_matches(msg, r: Rule) -> bool:
    table = msg.get_attr("FRA_TABLE") or msg["table"]
    if table != r.table:
        return False
    if r.src:
        addr, plen = r.src.split("/")
        if msg.get_attr("FRA_SRC") != addr or msg["src_len"] != int(plen):
            return False
    elif msg["src_len"]:
        return False
    if (msg.get_attr("FRA_OIFNAME") or None) != r.oif:
        return False
    supp = msg.get_attr("FRA_SUPPRESS_PREFIXLEN")
    return r.suppress_prefixlength is None or supp == r.suppress_prefixlength


def _delete(ipr, m, table: int, errors: list[str], family: int = socket.AF_INET) -> None:
    zero = "0.0.0.0" if family == socket.AF_INET else "::"
    try:
        ipr.route(
            "del", family=family, table=table, dst=f"{m.get_attr('RTA_DST') or zero}/{m['dst_len']}",
            proto=m["proto"],
        )  # fmt: skip
    except Exception as e:  # noqa: BLE001
        errors.append(f"table {table}: removing a route: {e}")


def flush_conntrack(address: str, conntrack_factory=None) -> int:
    """Forget connections NATed to ``address`` (an uplink that no longer carries traffic):
    their next packet starts a new connection through the active uplink instead of being
    masqueraded to an address whose replies can no longer arrive. Returns how many."""
    if conntrack_factory is None:
        from pyroute2 import Conntrack

        conntrack_factory = Conntrack
    flushed = 0
    ct = conntrack_factory()
    try:
        stale = [
            e
            for e in ct.dump_entries()
            if e.tuple_reply.daddr == address and e.tuple_orig.saddr != address
        ]
        for e in stale:
            try:
                ct.delete(e)
                flushed += 1
            except Exception as err:  # noqa: BLE001  (gone already, or raced)
                log.debug("conntrack delete %s: %s", e, err)
    finally:
        ct.close()
    return flushed
