"""Configuration files and command lines of the lab's peers.

Pure functions from (addresses, state paths) to text or argv, so they can be
unit-tested and read without running anything. All state (leases, sockets,
pid and lock files, logs) stays under the lab's state dir: kea defaults to
/run/kea and /var/lib/kea, which several labs would share.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from router7.lab.addresses import LabAddresses

KEA_HOOKS_DIR = Path("/usr/lib/x86_64-linux-gnu/kea/hooks")
RUN_SCRIPT_HOOK = KEA_HOOKS_DIR / "libdhcp_run_script.so"

# Links may come up after kea starts (e.g. `up` re-run while a veth is being
# recreated): let kea keep retrying to bind instead of serving nothing.
_SOCKET_RETRIES = {"service-sockets-max-retries": 100, "service-sockets-retry-wait-time": 200}


@dataclass(frozen=True)
class StatePaths:
    """Layout of a lab's state dir (/run/router7-lab/<prefix>/)."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "conf"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def run(self) -> Path:
        """Daemons' own pid/lock files and control sockets."""
        return self.root / "run"

    @property
    def leases(self) -> Path:
        return self.root / "leases"

    @property
    def www(self) -> Path:
        return self.root / "www"

    @property
    def leases4(self) -> Path:
        return self.leases / "kea-leases4.csv"

    @property
    def leases6(self) -> Path:
        return self.leases / "kea-leases6.csv"

    @property
    def pd_hook_log(self) -> Path:
        return self.logs / "kea-pd-route.log"

    def log(self, peer: str) -> Path:
        return self.logs / f"{peer}.log"

    def pidfile(self, peer: str) -> Path:
        return self.pids / f"{peer}.pid"

    def mkdirs(self) -> None:
        for d in (self.conf, self.logs, self.pids, self.run, self.leases, self.www):
            d.mkdir(parents=True, exist_ok=True)


def _kea_logger(name: str, path: Path) -> list[dict]:
    return [
        {
            "name": name,
            "output_options": [{"output": str(path), "flush": True}],
            "severity": "INFO",
        }
    ]


def kea_dhcp4(a: LabAddresses, st: StatePaths, iface: str = "down0") -> str:
    """kea-dhcp4: the /25 access segment, 120 s leases, routers + two resolvers."""
    conf = {
        "Dhcp4": {
            "interfaces-config": {
                "interfaces": [iface],
                "dhcp-socket-type": "raw",
                **_SOCKET_RETRIES,
            },
            "control-socket": {"socket-type": "unix", "socket-name": str(st.run / "kea4.sock")},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(st.leases4),
                "lfc-interval": 0,
            },
            "valid-lifetime": a.dhcp4_valid_lifetime,
            "renew-timer": a.dhcp4_valid_lifetime // 2,
            "rebind-timer": a.dhcp4_valid_lifetime * 7 // 8,
            # Reclaim expired leases quickly so tests see them go.
            "expired-leases-processing": {"reclaim-timer-wait-time": 5},
            "subnet4": [
                {
                    "id": 1,
                    "subnet": a.access_v4_subnet,
                    "interface": iface,
                    "pools": [{"pool": f"{a.dhcp4_pool_start} - {a.dhcp4_pool_end}"}],
                    "option-data": [
                        {"name": "routers", "data": a.isp_access_v4},
                        {"name": "domain-name-servers", "data": ", ".join(a.isp_dns_v4)},
                    ],
                }
            ],
            "loggers": _kea_logger("kea-dhcp4", st.log("isp-dhcp4")),
        }
    }
    return json.dumps(conf, indent=2) + "\n"


def kea_dhcp6(a: LabAddresses, st: StatePaths, hook_script: Path, iface: str = "down0") -> str:
    """kea-dhcp6: IA_NA from the access /64 and IA_PD /48s from a /40.

    The run_script hook (`sync: false`, so kea never waits on it) keeps the
    ISP's routes to delegated prefixes in step with the leases.
    """
    conf = {
        "Dhcp6": {
            "interfaces-config": {"interfaces": [iface], **_SOCKET_RETRIES},
            "control-socket": {"socket-type": "unix", "socket-name": str(st.run / "kea6.sock")},
            # Where kea keeps its server DUID (default /var/lib/kea).
            "data-directory": str(st.leases),
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(st.leases6),
                "lfc-interval": 0,
            },
            "preferred-lifetime": a.dhcp6_preferred_lifetime,
            "valid-lifetime": a.dhcp6_valid_lifetime,
            "renew-timer": a.dhcp6_preferred_lifetime // 2,
            "rebind-timer": a.dhcp6_preferred_lifetime * 4 // 5,
            "expired-leases-processing": {"reclaim-timer-wait-time": 5},
            "subnet6": [
                {
                    "id": 1,
                    "subnet": a.access_v6_subnet,
                    "interface": iface,
                    "pools": [{"pool": f"{a.dhcp6_pool_start}-{a.dhcp6_pool_end}"}],
                    "pd-pools": [
                        {
                            "prefix": a.pd_pool.split("/")[0],
                            "prefix-len": int(a.pd_pool.split("/")[1]),
                            "delegated-len": a.pd_delegated_len,
                        }
                    ],
                    "option-data": [
                        {"name": "dns-servers", "data": ", ".join(a.isp_dns_v6)},
                    ],
                }
            ],
            "hooks-libraries": [
                {
                    "library": str(RUN_SCRIPT_HOOK),
                    "parameters": {"name": str(hook_script), "sync": False},
                }
            ],
            "loggers": _kea_logger("kea-dhcp6", st.log("isp-dhcp6")),
        }
    }
    return json.dumps(conf, indent=2) + "\n"


def pd_route_hook(st: StatePaths, iface: str = "down0") -> str:
    """The run_script hook body (see templates/kea-pd-route.sh)."""
    text = resources.files("router7.lab").joinpath("templates/kea-pd-route.sh").read_text()
    return text.replace("@DEV@", iface).replace("@LOG@", str(st.pd_hook_log))


def radvd(a: LabAddresses, iface: str = "down0") -> str:
    """fiber7-style RAs: M and O set, the /64 on-link but not autonomous, so
    addresses come from DHCPv6 only."""
    return f"""\
# router7-lab: router advertisements on the access segment
interface {iface} {{
    AdvSendAdvert on;
    AdvManagedFlag on;
    AdvOtherConfigFlag on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 10;
    AdvDefaultLifetime {a.ra_router_lifetime};
    prefix {a.access_v6_subnet} {{
        AdvOnLink on;
        AdvAutonomous off;
    }};
}};
"""


def _dnsmasq_common(st: StatePaths, name: str) -> list[str]:
    return [
        "dnsmasq",
        "--conf-file=/dev/null",
        "--keep-in-foreground",
        "--no-hosts",
        "--no-resolv",
        "--bind-interfaces",
        "--user=root",
        f"--pid-file={st.run / f'{name}.dnsmasq.pid'}",
        f"--log-facility={st.log(name)}",
        "--log-queries",
    ]


def dnsmasq_authoritative(a: LabAddresses, st: StatePaths, name: str = "internet-dns") -> list[str]:
    """The internet host's name server: authoritative for the lab zone only."""
    zone = a.dns_zone
    return [
        *_dnsmasq_common(st, name),
        f"--listen-address={a.internet_v4}",
        f"--listen-address={a.internet_v6}",
        f"--auth-server=ns.{zone},{a.internet_v4},{a.internet_v6}",
        f"--auth-zone={zone}",
        f"--auth-soa=1,hostmaster.{zone}",
        f"--local=/{zone}/",
        f"--host-record={zone},{a.internet_v4},{a.internet_v6}",
        f"--host-record={a.www_name},{a.internet_v4},{a.internet_v6}",
        f"--host-record=ns.{zone},{a.internet_v4},{a.internet_v6}",
    ]


def dnsmasq_resolver(
    a: LabAddresses, st: StatePaths, name: str, v4: str, v6: str, upstream: str
) -> list[str]:
    """An ISP resolver: forwards everything to the internet host, no cache so
    an upstream outage shows at once."""
    return [
        *_dnsmasq_common(st, name),
        f"--listen-address={v4}",
        f"--listen-address={v6}",
        f"--server={upstream}",
        "--cache-size=0",
    ]


def http_server(st: StatePaths, port: int) -> list[str]:
    """Twisted's static web server on [::]:port (dual stack: v4 and v6)."""
    return [
        sys.executable,
        "-m",
        "twisted",
        "--log-format",
        "text",
        "web",
        "--listen",
        rf"tcp6:port={port}:interface=\:\:",
        "--path",
        str(st.www),
    ]
