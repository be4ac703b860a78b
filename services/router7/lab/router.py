"""router7's own services running in the lab's router namespace.

The services run under supervisord, as they would under systemd on the image:
one process per service, restarted when it exits, except with exit code 125
(a deliberate RELEASE-and-stop), each with its own log file. supervisord is a
well-kept supervisor that does exactly this, so we generate its config rather
than write a process supervisor of our own.

Layout under the lab's state dir: router/perm (the router's /perm),
router/run (pid files for notify), router/logs/<service>.log.
"""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp4d import store as dhcp4d_store
from router7.dhcp6 import lease as dhcp6_lease
from router7.lab.addresses import mac_for
from router7.lab.netns import LabError, netns_pids
from router7.runtime.statefile import StateFileError, write_json_atomic

LAN_ADDRESS = "192.168.42.1/24"


@dataclass(frozen=True)
class RouterService:
    name: str  # console script router7-<name>, module router7.<name>.service
    priority: int  # supervisord starts lower numbers first
    lan: bool = True  # takes --lan
    uplink: bool = True  # takes --uplink


# netconfigd first: it names and addresses the links the others use.
SERVICES = (
    RouterService("netconfigd", 10),
    RouterService("dhcp4", 20, lan=False),
    RouterService("dhcp6", 20, lan=False),
    RouterService("failoverd", 20, lan=False),
    RouterService("dhcp4d", 30),
    RouterService("radvd", 30),
    RouterService("dnsd", 30),
    RouterService("captured", 40),
    RouterService("diagd", 40),
    RouterService("backupd", 40, lan=False),
    RouterService("updated", 40, uplink=False),
    RouterService("statusd", 50),
)


def available(service: RouterService) -> bool:
    """Whether this checkout has the service (later issues add more)."""
    return importlib.util.find_spec(f"router7.{service.name}.service") is not None


class RouterServices:
    """Start, stop and inspect router7's services inside ``lab``'s router namespace."""

    def __init__(self, lab):
        self.lab = lab
        self.root = lab.state_dir / "router"
        self.perm = self.root / "perm"
        self.run_dir = self.root / "run"
        self.logs = self.root / "logs"
        self.conf = self.root / "supervisord.conf"
        self.bin = Path(sys.executable).parent

    def services(self) -> list[RouterService]:
        return [s for s in SERVICES if available(s)]

    def default_interfaces(self) -> dict:
        """interfaces.json for the lab: links named by their lab MACs, lan0 addressed."""
        prefix = self.lab.prefix
        config = {
            "interfaces": [
                {"hardware_addr": mac_for(prefix, "router", "uplink0"), "name": "uplink0"},
                {
                    "hardware_addr": mac_for(prefix, "router", "lan0"),
                    "name": "lan0",
                    "addr": LAN_ADDRESS,
                },
            ]
        }
        if self.lab.isp2:
            # The second ISP is the backup uplink; probes go to the lab's internet host.
            config["interfaces"].insert(
                1,
                {
                    "hardware_addr": mac_for(prefix, "router", "uplink1"),
                    "name": "uplink1",
                    "priority": 1,
                },
            )
            config["failover"] = {"targets": [self.lab.addr.internet_v4]}
        return config

    def default_diagd(self) -> dict:
        """diagd checks reachability of the lab's internet host, not the real internet."""
        a = self.lab.addr
        return {
            "targets": [f"{a.internet_v4}:{a.http_port}", f"[{a.internet_v6}]:{a.http_port}"],
            "dns_name": a.www_name,
        }

    def write_config(self) -> None:
        for d in (self.perm, self.run_dir, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        # Defaults for the lab's world; the owner's edits survive `up`.
        for name, content in (
            ("interfaces.json", self.default_interfaces()),
            ("diagd/config.json", self.default_diagd()),
        ):
            if not (self.perm / name).exists():
                write_json_atomic(self.perm / name, content)
        sock = self.root / "supervisor.sock"
        parts = [
            f"""\
            [supervisord]
            logfile={self.logs}/supervisord.log
            pidfile={self.root}/supervisord.pid
            childlogdir={self.logs}
            [unix_http_server]
            file={sock}
            [rpcinterface:supervisor]
            supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
            [supervisorctl]
            serverurl=unix://{sock}
            """
        ]
        programs = [(s, s.name, "uplink0") for s in self.services()]
        if self.lab.isp2:  # the backup uplink's own DHCP clients
            programs += [
                (s, f"{s.name}-uplink1", "uplink1")
                for s in self.services()
                if s.name in ("dhcp4", "dhcp6")
            ]
        for s, program, uplink in programs:
            args = f"--perm {self.perm} --run-dir {self.run_dir}"
            args += f" --uplink {uplink}" if s.uplink else ""
            args += " --lan lan0" if s.lan else ""
            parts.append(
                f"""\
                [program:{program}]
                command={self.bin}/router7-{s.name} {args}
                priority={s.priority}
                autorestart=unexpected
                exitcodes=0,125
                startsecs=1
                startretries=1000000
                stopwaitsecs=10
                redirect_stderr=true
                stdout_logfile={self.logs}/{program}.log
                stdout_logfile_maxbytes=10MB
                """
            )
        self.conf.write_text("".join(textwrap.dedent(p) for p in parts))

    def running(self) -> bool:
        pid_file = self.root / "supervisord.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return False
        return Path(f"/proc/{pid}").exists()

    @staticmethod
    def require_supervisord() -> None:
        """Fail early and clearly when supervisord is missing (it is the lab extra)."""
        if not (Path(sys.executable).parent / "supervisord").exists():
            raise LabError(
                f"supervisord not found in {Path(sys.executable).parent}: the lab runs "
                "router7's services under it. Install the lab extra into this "
                "environment: pip install 'router7[lab]' (or use --no-router)"
            )

    def start(self) -> None:
        """Start supervisord (and so every service) in the router namespace; idempotent."""
        self.require_supervisord()
        self.write_config()
        if self.running():
            self.ctl("update")  # picks up services added since
            self.ctl("start", "all")
            return
        self.lab.exec("router", str(self.bin / "supervisord"), "-c", str(self.conf))

    def stop(self) -> None:
        if self.running():
            self.ctl("shutdown")

    def ctl(self, *args: str) -> str:
        proc = self.lab.exec(
            "router", str(self.bin / "supervisorctl"), "-c", str(self.conf), *args, check=False
        )
        # supervisorctl exits 3 when a program is not RUNNING: that is information here
        if proc.returncode not in (0, 3):
            raise LabError(f"supervisorctl {' '.join(args)}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def wait_settled(self, timeout: float) -> bool:
        """Wait until the router has a WAN lease and a delegated prefix, and the LAN hosts
        their addresses."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.status()
            if (
                (s["wan"] or {}).get("address")
                and (s["ipv6"] or {}).get("prefixes")
                and s["clients"]
                and self._lan_hosts_addressed()
            ):
                return True
            time.sleep(0.5)
        return False

    def _lan_hosts_addressed(self) -> bool:
        """Every LAN host has its DHCPv4 address configured (dhcpcd ARP-probes it first)."""
        lan_prefix = LAN_ADDRESS.rsplit(".", 1)[0] + "."
        hosts = [n for n in self.lab.existing_nodes() if n.startswith("lan")]
        return all(
            lan_prefix in self.lab.exec(n, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
            for n in hosts
        )

    def status(self) -> dict:
        """Services and what the router learned: WAN address, prefix, LAN clients."""
        services = {}
        if self.running():
            for line in self.ctl("status").splitlines():
                name, _, rest = line.partition(" ")
                services[name] = rest.strip()
        return {
            "services": services,
            "wan": _wan(self.perm),
            "ipv6": _ipv6(self.perm),
            "lan_address": LAN_ADDRESS,
            "clients": _clients(self.perm),
        }


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# The router's state files, through their owners' readers (None: not written yet or bad).


def _wan(perm: Path) -> dict | None:
    try:
        lease = dhcp4_lease.read(dhcp4_lease.lease_path(perm))
    except StateFileError:
        return None
    return {"address": str(lease.address), "router": str(lease.router or "-")}


def _ipv6(perm: Path) -> dict | None:
    try:
        lease = dhcp6_lease.read(dhcp6_lease.lease_path(perm))
    except StateFileError:
        return None
    return {"prefixes": [{"prefix": str(h.network)} for h in lease.prefixes]}


def _clients(perm: Path) -> list[dict]:
    try:
        leases, _ = dhcp4d_store.read(perm / "dhcp4d" / "leases.json")
    except StateFileError:
        return []
    return [
        {
            "addr": str(lease.addr),
            "hardware_addr": lease.hardware_addr,
            "hostname": lease.hostname_override or lease.hostname,
        }
        for lease in leases
    ]


def format_status(status: dict) -> str:
    """A router owner's summary of RouterServices.status()."""
    lines = ["router services:"]
    if not status["services"]:
        lines.append("  (not running)")
    lines += [f"  {name:<11} {state}" for name, state in status["services"].items()]
    wan = status["wan"] or {}
    lines.append(f"WAN address:      {wan.get('address', '(no DHCPv4 lease yet)')}")
    lines.append(f"default gateway:  {wan.get('router', '-')}")
    v6 = status["ipv6"] or {}
    prefixes = ", ".join(p.get("prefix", "?") for p in v6.get("prefixes", [])) or "(none yet)"
    lines.append(f"delegated prefix: {prefixes}")
    lines.append(f"LAN address:      {status['lan_address']}")
    clients = status["clients"]
    lines.append(f"LAN clients:      {len(clients)}")
    for c in clients:
        lines.append(
            f"  {c.get('addr', '?'):<16} {c.get('hardware_addr', '?'):<18} {c.get('hostname', '')}"
        )
    return "\n".join(lines)


def start_lan_clients(lab) -> None:
    """Start `start_lan_client` on every LAN host of the lab."""
    for node in [n for n in lab.existing_nodes() if n.startswith("lan")]:
        start_lan_client(lab, node)


def start_lan_client(lab, node: str) -> None:
    """Let LAN host `node` configure itself by DHCP, like a household device.

    dhcpcd keeps state in /var/lib/dhcpcd and runs hooks that edit host files
    (resolv.conf, hostname): give it tmpfs state directories and /bin/true as
    its script, so the host stays untouched; -L: no 169.254/16 fallback while the
    router is still starting (/var/lib/dhcpcd must exist: the
    dhcpcd-base package creates it). The tmpfs mounts stay private:
    `ip netns exec` runs each command in its own mount namespace, slave to /.
    """
    # pgrep would see every namespace's processes: look only at this node's.
    if any(_comm(pid) == "dhcpcd" for pid in netns_pids(lab.ns(node))):
        return
    script = (
        "mount -t tmpfs tmpfs /run && mkdir -p /run/dhcpcd && "
        "mount -t tmpfs tmpfs /var/lib/dhcpcd && "
        f"exec dhcpcd -f /dev/null -4 -L -b -c /bin/true -h {node} eth0"
    )
    log = (lab.paths.logs / f"{node}-dhcpcd.log").open("ab")
    lab.popen(node, "sh", "-c", script, stdout=log, stderr=log)
