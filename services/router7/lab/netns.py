"""Thin wrappers around `ip`, `ss` and sysctl for network namespaces.

Everything is done by shelling out to iproute2 so that every step the lab
takes can be replayed by hand from the commands it logs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

NETNS_ETC = Path("/etc/netns")
# Daemons live in sbin, which a non-login PATH (e.g. a venv's pytest) may lack.
_EXTRA_PATH = ("/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin")


class LabError(RuntimeError):
    """A lab operation failed; the message says what and, for peers, why."""


def which(prog: str) -> str | None:
    """Like shutil.which but also looks in sbin directories."""
    found = shutil.which(prog)
    if found:
        return found
    path = os.pathsep.join(_EXTRA_PATH)
    return shutil.which(prog, path=path)


def need(prog: str) -> str:
    found = which(prog)
    if not found:
        raise LabError(f"{prog} not found (looked in PATH and {', '.join(_EXTRA_PATH)})")
    return found


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment plus sbin dirs on PATH (for commands run in namespaces)."""
    env = dict(os.environ)
    parts = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(
        [*filter(None, parts), *(d for d in _EXTRA_PATH if d not in parts)]
    )
    return {**env, **(extra or {})}


def run(
    *argv: str, check: bool = True, timeout: float | None = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing output; raise LabError with stderr on failure."""
    argv = (need(argv[0]), *argv[1:]) if "/" not in argv[0] else argv
    log.debug("run: %s", " ".join(argv))
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, input=input, check=False
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr.strip()}"
        )
    return proc


def ip(ns: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`ip [-n ns] args...`."""
    prefix = ("-n", ns) if ns else ()
    return run("ip", *prefix, *args, check=check)


def ip_json(ns: str, *args: str) -> list[dict]:
    out = ip(ns, "-j", *args).stdout.strip()
    return json.loads(out) if out else []


def netns_list() -> list[str]:
    out = run("ip", "netns", "list").stdout
    # Lines look like "r7-isp (id: 3)" or just "r7-isp".
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_exists(ns: str) -> bool:
    return Path("/run/netns", ns).exists()


def netns_add(ns: str) -> None:
    if not netns_exists(ns):
        run("ip", "netns", "add", ns)


def netns_del(ns: str) -> None:
    if netns_exists(ns):
        run("ip", "netns", "del", ns)


def netns_pids(ns: str) -> list[int]:
    if not netns_exists(ns):
        return []
    out = run("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def link_exists(ns: str, ifname: str) -> bool:
    return ip(ns, "link", "show", "dev", ifname, check=False).returncode == 0


def sysctl(ns: str, key: str, value: str | int) -> None:
    """Write a sysctl inside `ns` (net.* sysctls are per namespace)."""
    run("ip", "netns", "exec", ns, need("sysctl"), "-q", "-w", f"{key}={value}")


def write_resolv_conf(ns: str, text: str) -> Path:
    """Give `ns` its own resolv.conf: `ip netns exec` bind-mounts it over
    /etc/resolv.conf, so nothing run in the lab can rewrite the host's."""
    d = NETNS_ETC / ns
    d.mkdir(parents=True, exist_ok=True)
    path = d / "resolv.conf"
    path.write_text(text)
    return path


def remove_netns_etc(ns: str) -> None:
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)


def listening(ns: str, proto: str, port: int) -> list[str]:
    """Local addresses with a socket bound to `port` in `ns` (proto tcp|udp)."""
    flag = "-t" if proto == "tcp" else "-u"
    out = run("ss", "-N", ns, "-H", "-l", "-n", flag, f"sport = :{port}", check=False).stdout
    # Columns: State Recv-Q Send-Q Local:Port Peer:Port ...
    return [line.split()[3] for line in out.splitlines() if len(line.split()) >= 4]
