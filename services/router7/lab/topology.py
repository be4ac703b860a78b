"""The `Lab`: builds, inspects and tears down one lab of network namespaces.

    internet ── isp ── router ── sw ── lan1..lanN
        └──── isp2 ───┘          (optional: Lab(isp2=True), a second uplink)

Every name carries the lab prefix (`r7-isp`, ...), and veths are created
directly inside the namespaces, so several labs coexist and nothing ever
appears in the host namespace. See docs/lab.md for the full plan.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from router7.lab import leases, peers, procs
from router7.lab.addresses import ADDR, LabAddresses, mac_for
from router7.lab.configs import RUN_SCRIPT_HOOK, StatePaths
from router7.lab.netns import (
    NETNS_ETC,
    LabError,
    child_env,
    ip,
    ip_json,
    link_exists,
    need,
    netns_add,
    netns_del,
    netns_exists,
    netns_list,
    netns_pids,
    remove_netns_etc,
    sysctl,
    which,
    write_resolv_conf,
)

log = logging.getLogger(__name__)

STATE_ROOT = Path("/run/router7-lab")
FIXED_NODES = ("internet", "isp", "router", "sw")
OPTIONAL_NODES = ("isp2",)  # the second ISP, for failover
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_NODE_RE = re.compile(r"^(internet|isp2?|router|sw|lan[1-9][0-9]*)$")
REQUIRED_TOOLS = ("ip", "ss", "sysctl", "kea-dhcp4", "kea-dhcp6", "dnsmasq", "radvd")


class Lab:
    """One lab, identified by its prefix.

    A `Lab` object holds no live state: everything is found again from the
    namespaces and the state dir, so `Lab("r7").down()` works from any process.

    Attributes:
        prefix: the lab prefix (namespaces are `<prefix>-<node>`).
        addr: the numbering plan (`LabAddresses`), the same for every lab.
        state_dir: `/run/router7-lab/<prefix>`: configs, logs, pids, leases.
        paths: `StatePaths` for files inside `state_dir`.
    """

    def __init__(
        self,
        prefix: str = "r7",
        lan_hosts: int | None = None,
        *,
        state_root: Path = STATE_ROOT,
        addresses: LabAddresses = ADDR,
        isp2: bool | None = None,
    ) -> None:
        """`lan_hosts` None means: as many as the running lab has, else 1.
        `isp2` adds the second ISP (router uplink1); None: as the running lab has."""
        if not _PREFIX_RE.match(prefix):
            raise LabError(f"bad lab prefix {prefix!r}: want [a-z][a-z0-9]{{0,11}}")
        if lan_hosts is not None and not 1 <= lan_hosts <= 200:
            raise LabError("lan_hosts must be between 1 and 200")
        self.prefix = prefix
        self.addr = addresses
        self.state_dir = state_root / prefix
        self.paths = StatePaths(self.state_dir)
        self._state_root = state_root
        self._lan_hosts = lan_hosts
        self._isp2 = isp2

    @property
    def isp2(self) -> bool:
        """Whether this lab has (or will have) the second ISP."""
        if self._isp2 is not None:
            return self._isp2
        return "isp2" in self.existing_nodes()

    def __repr__(self) -> str:
        return f"Lab(prefix={self.prefix!r}, lan_hosts={self.lan_hosts})"

    # ---- naming ---------------------------------------------------------

    def ns(self, node: str) -> str:
        """Namespace name of `node` ("internet", "isp", "router", "sw", "lanN")."""
        if not _NODE_RE.match(node):
            raise LabError(f"unknown node {node!r}: want internet, isp, isp2, router, sw or lanN")
        return f"{self.prefix}-{node}"

    @property
    def lan_hosts(self) -> int:
        if self._lan_hosts is not None:
            return self._lan_hosts
        existing = [int(n[3:]) for n in self.existing_nodes() if n.startswith("lan")]
        return max(existing, default=1)

    @property
    def nodes(self) -> list[str]:
        """The nodes this lab should have: fixed ones plus lan1..lanN."""
        optional = ["isp2"] if self.isp2 else []
        return [*FIXED_NODES, *optional, *(f"lan{i}" for i in range(1, self.lan_hosts + 1))]

    def existing_nodes(self) -> list[str]:
        """Nodes whose namespace exists right now."""
        head = f"{self.prefix}-"
        found = [
            n[len(head) :]
            for n in netns_list()
            if n.startswith(head) and _NODE_RE.match(n[len(head) :])
        ]
        return sorted(found, key=_node_order)

    def exists(self) -> bool:
        return bool(self.existing_nodes())

    # ---- lifecycle ------------------------------------------------------

    def up(self, timeout: float = 15.0) -> Lab:
        """Create (or repair) the topology and start every peer not running.

        Idempotent: on a running lab it only starts peers that died and adds
        or removes LAN hosts to match `lan_hosts`. Returns self.
        Raises LabError (with a log tail for peers) on failure.
        """
        if os.geteuid() != 0:
            raise LabError("router7-lab needs root (network namespaces)")
        for tool in REQUIRED_TOOLS:
            need(tool)
        if not RUN_SCRIPT_HOOK.exists():
            raise LabError(f"kea run_script hook missing: {RUN_SCRIPT_HOOK}")
        with self._locked():
            before = set(self.existing_nodes())
            try:
                self._build(timeout)
            except BaseException:
                self._undo_failed_up(before)
                raise
        return self

    def _build(self, timeout: float) -> None:
        wanted = self.nodes
        self.paths.mkdirs()
        for node in self.existing_nodes():
            if node not in wanted:  # fewer LAN hosts than before
                self._remove_node(node)
        for node in wanted:
            self._make_node(node)
        renewed = self._wire()
        self._address()
        self._wait_link_local("isp", "down0", timeout)
        if self.isp2:
            self._wait_link_local("isp2", "down0", timeout)
        for name in (*peers.PEER_NAMES, *(peers.ISP2_PEERS if self.isp2 else ())):
            # A peer bound to a link that was since recreated (its other
            # namespace got deleted) would serve nothing: restart it.
            if peers.spec(name).node in renewed:
                peers.stop(self, name)
            peers.start(self, name, timeout=timeout)
        (self.state_dir / "lab.json").write_text(
            json.dumps({"prefix": self.prefix, "lan_hosts": self.lan_hosts, "isp2": self.isp2})
            + "\n"
        )

    def _undo_failed_up(self, before: set[str]) -> None:
        """Remove what a failed up() created, or the next up() would take its
        namespaces for a lab. A lab that existed before keeps its nodes (and
        running peers); only the nodes this up() added go."""
        try:
            if not before:
                self._teardown()
            else:
                for node in set(self.existing_nodes()) - before:
                    self._remove_node(node)
        except Exception as e:  # the original failure is the one to report
            log.warning("cleaning up after a failed up() of %s: %s", self.prefix, e)

    def down(self) -> None:
        """Remove everything: processes, namespaces, /etc/netns dirs, state dir.

        Safe to call when the lab does not (or only partly) exists.
        """
        with self._locked():
            self._teardown()

    def _teardown(self) -> None:
        for name in peers.ALL_PEERS:  # graceful first: kea gets to clean up
            if self.paths.pidfile(name).exists():
                peers.stop(self, name)
        nodes = self.existing_nodes()
        # Anything else still running in the lab (dhclient from a test, ...).
        procs.terminate([pid for n in nodes for pid in netns_pids(self.ns(n))])
        for node in nodes:
            self._remove_node(node)
        for d in NETNS_ETC.glob(f"{self.prefix}-*"):
            if _NODE_RE.match(d.name[len(self.prefix) + 1 :]):
                shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    # ---- peers ----------------------------------------------------------

    def start_peer(self, name: str, timeout: float = 15.0) -> int:
        """Start peer `name` (see `peers.PEER_NAMES`) if stopped; return its pid."""
        return peers.start(self, name, timeout=timeout)

    def stop_peer(self, name: str) -> None:
        """Stop peer `name`; a no-op if it is not running."""
        peers.stop(self, name)

    def peer_running(self, name: str) -> bool:
        return peers.pid_of(self, name) is not None

    def peer_pid(self, name: str) -> int | None:
        return peers.pid_of(self, name)

    def renumber_prefix_delegation(self, pd_pool: str, timeout: float = 15.0) -> None:
        """Make the ISP delegate prefixes from ``pd_pool`` instead, forgetting every
        PD lease, as an ISP does when it renumbers its customers.

        kea-dhcp6 restarts with the new pool and an empty lease file, so the next
        Renew gets a new prefix (and the old one with zero lifetimes). Affects this
        `Lab` object: a later ``up()`` through another object goes back to the plan.
        """
        pool = ipaddress.IPv6Network(pd_pool)  # raises ValueError on a bad prefix
        self.addr = dataclasses.replace(self.addr, pd_pool=str(pool))
        with self._locked():
            peers.stop(self, "isp-dhcp6")
            self.paths.leases6.unlink(missing_ok=True)
            ip(self.ns("isp"), "-6", "route", "replace", "unreachable", str(pool))
            peers.start(self, "isp-dhcp6", timeout=timeout)

    # ---- running things in nodes ---------------------------------------

    def exec(
        self,
        node: str,
        *cmd: str,
        check: bool = True,
        timeout: float | None = 60,
        capture: bool = True,
        input: str | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `cmd` in `node`'s namespace and wait for it.

        Output is captured as text unless `capture=False`. With `check`, a
        non-zero exit raises LabError carrying stdout/stderr (the
        CompletedProcess is in its `.result`). `timeout` raises
        subprocess.TimeoutExpired.
        """
        argv = [need("ip"), "netns", "exec", self.ns(node), *cmd]
        proc = subprocess.run(
            argv,
            capture_output=capture,
            text=True,
            timeout=timeout,
            input=input,
            env=child_env(env),
            check=False,
        )
        if check and proc.returncode != 0:
            err = LabError(
                f"in {node}: {' '.join(cmd)} exited {proc.returncode}\n"
                f"stdout: {(proc.stdout or '').strip()[-2000:]}\n"
                f"stderr: {(proc.stderr or '').strip()[-2000:]}"
            )
            err.result = proc  # type: ignore[attr-defined]
            raise err
        return proc

    def popen(self, node: str, *cmd: str, **kw) -> subprocess.Popen:
        """Start `cmd` in `node`'s namespace; `kw` goes to subprocess.Popen.

        The caller owns the process; `down()` kills it anyway if it still
        runs in the lab's namespaces.
        """
        kw.setdefault("env", child_env())
        return subprocess.Popen([need("ip"), "netns", "exec", self.ns(node), *cmd], **kw)

    def reset_node(self, node: str) -> None:
        """Return a client node (router, lanN) to its just-created state.

        Kills every process in it, flushes addresses (but link-locals), non-kernel
        routes and nftables, and turns forwarding off: what tests do between
        runs of router7's services against one long-lived lab.
        """
        if node in ("internet", "isp", "sw"):
            raise LabError(f"reset_node: {node} runs lab peers; use up() to repair it")
        ns = self.ns(node)
        procs.terminate(netns_pids(ns))
        ip(ns, "-4", "route", "flush", "table", "main")
        for r in ip_json(ns, "-6", "route", "show", "table", "main"):
            if r.get("protocol") != "kernel":
                ip(ns, "-6", "route", "del", r["dst"], "table", "main", check=False)
        for link in ip_json(ns, "link", "show"):
            if link["ifname"] != "lo":
                ip(ns, "addr", "flush", "dev", link["ifname"], "scope", "global")
        if nft := which("nft"):
            self.exec(node, nft, "flush", "ruleset", check=False)
        sysctl(ns, "net.ipv4.ip_forward", 0)
        sysctl(ns, "net.ipv6.conf.all.forwarding", 0)

    def route_router_via_isp(self, *families: int) -> None:
        """Give the router default routes via the ISP, as router7-netconfigd would:
        IPv4 via the ISP's access address, IPv6 via its link-local on down0.
        `families` are 4 and/or 6 (default both).

        `replace`, not `add`: until forwarding is on, the router accepts the
        ISP's RAs, so the kernel may already hold the IPv6 default route via
        that same link-local (proto ra), and `add` would fail with "File
        exists" whenever an RA came first. Idempotent.
        """
        ns = self.ns("router")
        if 4 in (families or (4,)):
            ip(ns, "-4", "route", "replace", "default", "via", self.addr.isp_access_v4)
        if 6 in (families or (6,)):
            via = self.link_local("isp", "down0")
            ip(ns, "-6", "route", "replace", "default", "via", via, "dev", "uplink0")

    # ---- inspection -----------------------------------------------------

    def link_local(self, node: str, ifname: str) -> str:
        """The fe80:: address of `node`'s `ifname` (e.g. the ISP's next hop)."""
        for link in ip_json(self.ns(node), "-6", "addr", "show", "dev", ifname):
            for info in link.get("addr_info", []):
                if info.get("scope") == "link":
                    return info["local"]
        raise LabError(f"no link-local address on {node}/{ifname}")

    def leases4(self) -> list[dict]:
        """DHCPv4 leases kea currently holds (from its memfile)."""
        return leases.current_leases4(self.paths.leases4)

    def leases6(self) -> list[dict]:
        """DHCPv6 IA_NA and IA_PD leases kea currently holds."""
        return leases.current_leases6(self.paths.leases6)

    def pd_routes(self) -> list[dict]:
        """The ISP's routes to delegated prefixes: [{prefix, via, dev}]."""
        if not netns_exists(self.ns("isp")):
            return []
        pool = ipaddress.IPv6Network(self.addr.pd_pool)
        out = []
        for r in ip_json(self.ns("isp"), "-6", "route", "show"):
            dst = r.get("dst", "")
            if "/" not in dst or not r.get("gateway"):
                continue
            net = ipaddress.IPv6Network(dst, strict=False)
            if net.subnet_of(pool) and net != pool:
                out.append({"prefix": str(net), "via": r["gateway"], "dev": r.get("dev", "")})
        return out

    def interfaces(self, node: str) -> list[dict]:
        """[{ifname, state, mac, addresses: ["a/len", ...]}] of `node`."""
        result = []
        for link in ip_json(self.ns(node), "addr", "show"):
            result.append(
                {
                    "ifname": link["ifname"],
                    "state": link.get("operstate", "?"),
                    "mac": link.get("address", ""),
                    "master": link.get("master"),
                    "addresses": [
                        f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                    ],
                }
            )
        return result

    def status(self) -> dict:
        """Everything `router7-lab status` shows, as a JSON-able dict."""
        nodes = self.existing_nodes()
        peer_status = {}
        for name, p in peers.PEERS.items():
            if name in peers.ISP2_PEERS and not self.isp2:
                continue  # a lab without the second ISP
            pid = peers.pid_of(self, name)
            peer_status[name] = {
                "node": p.node,
                "running": pid is not None,
                "pid": pid,
                "description": p.description,
                "log": str(self.paths.log(name)),
            }
        return {
            "prefix": self.prefix,
            "exists": bool(nodes),
            "state_dir": str(self.state_dir),
            "namespaces": {n: self.ns(n) for n in nodes},
            "peers": peer_status,
            "interfaces": {n: self.interfaces(n) for n in nodes},
            "leases4": self.leases4(),
            "leases6": self.leases6(),
            "pd_routes": self.pd_routes(),
        }

    # ---- building blocks ------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # One lab operation at a time on this host (flock on the state root:
        # no lock file is left behind by down()).
        self._state_root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._state_root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _resolv_conf(self, node: str) -> str:
        a = self.addr
        servers = {
            "internet": [a.internet_v4],
            "isp": list(a.isp_dns_v4),
        }.get(node, ["127.0.0.1"])
        lines = [f"# router7-lab {self.prefix}: resolv.conf of namespace {self.ns(node)}"]
        return "\n".join([*lines, *(f"nameserver {s}" for s in servers)]) + "\n"

    def _make_node(self, node: str) -> None:
        ns = self.ns(node)
        netns_add(ns)
        write_resolv_conf(ns, self._resolv_conf(node))
        ip(ns, "link", "set", "lo", "up")
        # Before any link exists, so new interfaces inherit it: DAD would keep
        # link-local addresses tentative (unusable by DHCPv6) for ~1 s.
        for scope in ("all", "default"):
            sysctl(ns, f"net.ipv6.conf.{scope}.accept_dad", 0)
        if node == "sw":  # a switch has no IP stack of its own on its ports
            for scope in ("all", "default"):
                sysctl(ns, f"net.ipv6.conf.{scope}.disable_ipv6", 1)
        if node in ("isp", "isp2"):
            sysctl(ns, "net.ipv4.ip_forward", 1)
            sysctl(ns, "net.ipv6.conf.all.forwarding", 1)

    def _remove_node(self, node: str) -> None:
        ns = self.ns(node)
        procs.terminate(netns_pids(ns))
        netns_del(ns)
        remove_netns_etc(ns)

    def _veth(self, a_node: str, a_if: str, b_node: str, b_if: str) -> bool:
        """veth a_if (in a_node) <-> b_if (in b_node), created in place.

        Returns True if it had to be (re)created."""
        a_ns, b_ns = self.ns(a_node), self.ns(b_node)
        if link_exists(a_ns, a_if):
            return False
        if link_exists(b_ns, b_if):  # half a pair cannot exist; a stale name can
            ip(b_ns, "link", "del", b_if)
        args = ["link", "add", a_if]
        if mac := mac_for(self.prefix, a_node, a_if):
            args += ["address", mac]
        args += ["type", "veth", "peer", "name", b_if]
        if mac := mac_for(self.prefix, b_node, b_if):
            args += ["address", mac]
        ip(a_ns, *args, "netns", b_ns)
        return True

    def _wire(self) -> set[str]:
        """Create missing links; return the nodes whose peer-facing links are new."""
        renewed = set()
        if self._veth("isp", "up0", "internet", "eth0"):
            renewed |= {"isp", "internet"}
        if self._veth("isp", "down0", "router", "uplink0"):
            renewed.add("isp")
        sw = self.ns("sw")
        if not link_exists(sw, "br0"):
            ip(sw, "link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
        if self.isp2:
            if self._veth("isp2", "up0", "internet", "eth1"):
                renewed |= {"isp2", "internet"}
            if self._veth("isp2", "down0", "router", "uplink1"):
                renewed.add("isp2")
        ports = ["p-router"]
        self._veth("router", "lan0", "sw", "p-router")
        for i in range(1, self.lan_hosts + 1):
            self._veth(f"lan{i}", "eth0", "sw", f"p-lan{i}")
            ports.append(f"p-lan{i}")
        for port in ports:
            ip(sw, "link", "set", port, "master", "br0", "up")
        ip(sw, "link", "set", "br0", "up")
        isp = self.ns("isp")
        # Kernels built without CONFIG_DUMMY lack "dummy"; a bridge with no
        # ports is always up and serves as one.
        if (
            not link_exists(isp, "dns0")
            and ip(isp, "link", "add", "dns0", "type", "dummy", check=False).returncode
        ):
            ip(isp, "link", "add", "dns0", "type", "bridge")
        up = {
            "internet": ["eth0"],
            "isp": ["up0", "down0", "dns0"],
            "router": ["uplink0", "lan0"],
            **{f"lan{i}": ["eth0"] for i in range(1, self.lan_hosts + 1)},
        }
        if self.isp2:
            up["internet"].append("eth1")
            up["isp2"] = ["up0", "down0"]
            up["router"].append("uplink1")
        for node, ifaces in up.items():
            for ifname in ifaces:
                if node != "sw":
                    sysctl(self.ns(node), f"net.ipv6.conf.{ifname}.accept_dad", 0)
                ip(self.ns(node), "link", "set", ifname, "up")
        return renewed

    def _address(self) -> None:
        a = self.addr
        inet, isp = self.ns("internet"), self.ns("isp")

        def addr(ns: str, cidr: str, dev: str) -> None:
            extra = ["nodad"] if ":" in cidr else []
            ip(ns, "addr", "replace", cidr, "dev", dev, *extra)

        addr(inet, f"{a.internet_v4}/{a.transit_v4_prefixlen}", "eth0")
        addr(inet, f"{a.internet_v6}/{a.transit_v6_prefixlen}", "eth0")
        ip(inet, "route", "replace", "default", "via", a.isp_transit_v4)
        ip(inet, "-6", "route", "replace", "default", "via", a.isp_transit_v6)

        addr(isp, f"{a.isp_transit_v4}/{a.transit_v4_prefixlen}", "up0")
        addr(isp, f"{a.isp_transit_v6}/{a.transit_v6_prefixlen}", "up0")
        v4len = ipaddress.IPv4Network(a.access_v4_subnet).prefixlen
        v6len = ipaddress.IPv6Network(a.access_v6_subnet).prefixlen
        addr(isp, f"{a.isp_access_v4}/{v4len}", "down0")
        addr(isp, f"{a.isp_access_v6}/{v6len}", "down0")
        # Resolver v4 addresses live on a dummy (routed to, like anycast);
        # their v6 addresses sit inside the on-link access /64, so they must
        # be on down0 itself for neighbour discovery to answer for them.
        for v4 in a.isp_dns_v4:
            addr(isp, f"{v4}/32", "dns0")
        for v6 in a.isp_dns_v6:
            addr(isp, f"{v6}/128", "down0")
        # Undelegated parts of the PD pool are unreachable, not blackholed.
        ip(isp, "-6", "route", "replace", "unreachable", a.pd_pool)
        if self.isp2:
            self._address_isp2(addr)

    def _address_isp2(self, addr) -> None:
        """The second ISP: its transit link to the internet host and its access segment."""
        from router7.lab.addresses import (
            INTERNET_ISP2_V4,
            INTERNET_ISP2_V6,
            ISP2_ADDR,
            ISP2_TRANSIT_V4,
            ISP2_TRANSIT_V6,
        )

        b = ISP2_ADDR
        inet, isp2 = self.ns("internet"), self.ns("isp2")
        addr(inet, f"{INTERNET_ISP2_V4}/24", "eth1")
        addr(inet, f"{INTERNET_ISP2_V6}/64", "eth1")
        addr(isp2, f"{ISP2_TRANSIT_V4}/24", "up0")
        addr(isp2, f"{ISP2_TRANSIT_V6}/64", "up0")
        addr(
            isp2,
            f"{b.isp_access_v4}/{ipaddress.IPv4Network(b.access_v4_subnet).prefixlen}",
            "down0",
        )
        addr(
            isp2,
            f"{b.isp_access_v6}/{ipaddress.IPv6Network(b.access_v6_subnet).prefixlen}",
            "down0",
        )
        ip(isp2, "route", "replace", "default", "via", INTERNET_ISP2_V4)
        ip(isp2, "-6", "route", "replace", "default", "via", INTERNET_ISP2_V6)
        ip(isp2, "-6", "route", "replace", "unreachable", b.pd_pool)
        # The internet host answers the second ISP's customers through it.
        ip(inet, "route", "replace", b.access_v4_subnet, "via", ISP2_TRANSIT_V4)
        ip(inet, "-6", "route", "replace", b.access_v6_subnet, "via", ISP2_TRANSIT_V6)
        ip(inet, "-6", "route", "replace", b.pd_pool, "via", ISP2_TRANSIT_V6)

    def set_forwarding(self, node: str, on: bool) -> None:
        """Make an ISP stop (or resume) forwarding while its links stay up: the silent
        loss a failover must detect (its router still answers pings to itself)."""
        if node not in ("isp", "isp2"):
            raise LabError(f"set_forwarding: {node} is not an ISP")
        ns = self.ns(node)
        sysctl(ns, "net.ipv4.ip_forward", 1 if on else 0)
        sysctl(ns, "net.ipv6.conf.all.forwarding", 1 if on else 0)

    def _wait_link_local(self, node: str, ifname: str, timeout: float) -> None:
        """kea-dhcp6 and radvd need a usable link-local on their interface."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for link in ip_json(self.ns(node), "-6", "addr", "show", "dev", ifname):
                for info in link.get("addr_info", []):
                    if info.get("scope") == "link" and not info.get("tentative"):
                        return
            time.sleep(0.05)
        raise LabError(f"no link-local address on {node}/{ifname} after {timeout:.0f}s")


def _node_order(node: str) -> tuple[int, int]:
    if node in FIXED_NODES:
        return (FIXED_NODES.index(node), 0)
    if node in OPTIONAL_NODES:
        return (len(FIXED_NODES), OPTIONAL_NODES.index(node))
    return (len(FIXED_NODES), int(node[3:]))
