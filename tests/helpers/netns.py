"""Network namespaces of one integration test module: made, joined by veths, removed.

For scenarios the lab's fixed topology (router7.lab) does not fit: a server that
vanishes, odd lease times, hosts on a bridge. Names are ``<tag>-<node>`` with a tag
unique to the pytest process, so parallel runs and the session's lab never meet.
`down()` kills whatever still runs inside (only the test's own daemons live there)
before deleting the namespaces; `up()` starts with it, so a crashed earlier run with
the same tag leaves nothing in the way.

Also what each such module needs around them: the skip check (root and tools) and
the argv of a router7 daemon run inside.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from router7.lab.netns import which
from tests.helpers.shell import sh


def skip_unless_root_with(*tools: str) -> None:
    """Skip the calling test unless we are root (namespaces) and ``tools`` are
    installed (on PATH or in sbin). scripts/setup installs every one of them."""
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")
    missing = [t for t in tools if not which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (./scripts/setup installs them)")


def unique_tag(kind: str) -> str:
    """A namespace tag for this pytest process: ``kind`` plus the pid."""
    return f"{kind}{os.getpid() % 100000}"


def router7_argv(name: str, perm: Path, run_dir: Path, *extra: str) -> list[str]:
    """The venv's ``router7-<name>`` with its own /perm and run dir, logging at debug."""
    exe = Path(sys.executable).with_name(f"router7-{name}")
    return [
        str(exe),
        "--perm",
        str(perm),
        "--run-dir",
        str(run_dir),
        "--log-level",
        "debug",
        *extra,
    ]


class Namespaces:
    """Namespaces ``<tag>-<node>`` for each of ``nodes`` (their names in `names`).

    With ``ipv6`` (the default) duplicate address detection is off, so link-locals
    and static addresses are usable at once; without it IPv6 is disabled, so no
    router solicitations or MLD reports cross the test links.
    """

    def __init__(self, tag: str, *nodes: str, ipv6: bool = True) -> None:
        self.names = [f"{tag}-{node}" for node in nodes]
        self.ipv6 = ipv6

    def up(self):
        self.down()
        for ns in self.names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # "default" before any link exists, so new links inherit it.
            for key in ("all", "default"):
                if self.ipv6:
                    self.sysctl(ns, f"net.ipv6.conf.{key}.accept_dad", 0)
                else:
                    self.sysctl(ns, f"net.ipv6.conf.{key}.disable_ipv6", 1)
        return self

    def __enter__(self):
        """up(), or down() and re-raise if it fails part-way."""
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc) -> None:
        self.down()

    def down(self) -> None:
        for ns in self.names:
            if Path("/run/netns", ns).exists():
                for pid in sh("ip", "netns", "pids", ns, check=False).split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
                sh("ip", "netns", "del", ns, check=False)

    # --- links and addresses ---------------------------------------------------

    def veth(
        self,
        a: str,
        a_if: str,
        b: str,
        b_if: str,
        *,
        a_mac: str | None = None,
        b_mac: str | None = None,
        up: bool = True,
    ) -> None:
        """A veth from ``a_if`` in namespace ``a`` to ``b_if`` in ``b`` (may be ``a``)."""
        argv = ["ip", "-n", a, "link", "add", a_if, *(("address", a_mac) if a_mac else ())]
        argv += ["type", "veth", "peer", "name", b_if, *(("address", b_mac) if b_mac else ())]
        sh(*argv, "netns", b)
        if up:
            self.ip(a, "link", "set", a_if, "up")
            self.ip(b, "link", "set", b_if, "up")

    def addr(self, ns: str, dev: str, *cidrs: str) -> None:
        for cidr in cidrs:
            self.ip(ns, "addr", "add", cidr, "dev", dev)

    def link_local(self, ns: str, dev: str) -> str:
        for link in json.loads(self.ip(ns, "-j", "-6", "addr", "show", "dev", dev) or "[]"):
            for a in link.get("addr_info", []):
                if a.get("scope") == "link":
                    return a["local"]
        raise AssertionError(f"no link-local address on {ns}/{dev}")

    # --- running things ----------------------------------------------------------

    def ip(self, ns: str, *args: str, check: bool = True) -> str:
        """``ip -n ns args...``; its stdout."""
        return sh("ip", "-n", ns, *args, check=check)

    @staticmethod
    def sysctl(ns: str, key: str, value: object) -> None:
        sh("ip", "netns", "exec", ns, which("sysctl") or "sysctl", "-qw", f"{key}={value}")

    @staticmethod
    def popen(ns: str, *argv: object, **kw) -> subprocess.Popen:
        """Start ``argv`` in ``ns``; keywords go to subprocess.Popen. Caller owns it."""
        cmd = [str(a) for a in argv]
        cmd[0] = which(cmd[0]) or cmd[0]
        return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)


class UplinkPair(Namespaces):
    """An ISP-side server and a router7 client on one link:
    ``srv`` (down0, with ``server_cidr``) and ``cli`` (uplink0, unaddressed)."""

    def __init__(self, tag: str, server_cidr: str) -> None:
        super().__init__(tag, "srv", "cli")
        self.srv, self.cli = self.names
        self.server_cidr = server_cidr

    def up(self):
        super().up()
        self.veth(self.srv, "down0", self.cli, "uplink0")
        self.addr(self.srv, "down0", self.server_cidr)
        return self
