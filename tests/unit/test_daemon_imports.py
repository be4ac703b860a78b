"""No daemon imports scapy or pyroute2 when it loads: an import-graph rule, not a
timing test.

scapy is the tool of the tests, the fuzzers and the benchmarks. Imported by a daemon
it costs that process about 32 MiB and 0.15 s of start-up (bench/memory.py), so the
daemons use small codecs of their own (dhcp4/wire.py, dhcp4d/wire.py, dhcp6/wire.py,
radvd/wire.py, diagd/icmp.py) whose tests check them against scapy. pyroute2 costs
10 MiB and 0.08 s; only netconfigd, which configures links, needs more of rtnetlink
than runtime/rtnl.py reads, and it imports pyroute2 when it applies a plan.
"""

from __future__ import annotations

import subprocess
import sys

from router7.lab.router import SERVICES

# Daemons that use twisted.web only for their management site: they build it (and
# import twisted.web, 4.7 MiB) at the port's first connection. diagd's checks use
# twisted.web's client all the time.
WEB_ON_DEMAND = {"dhcp4", "dhcp6", "dhcp4d", "radvd", "dnsd", "netconfigd", "backupd", "statusd"}

CHECK = """
import importlib, sys
banned = sys.argv[1].split(",")
for name in sys.argv[2:]:
    importlib.import_module(f"router7.{name}.service")
    heavy = sorted(m for m in banned if m in sys.modules)
    if heavy:
        print(f"router7.{name}.service imports {heavy}")
        sys.exit(1)
"""


def imports_none_of(banned: list[str], names: list[str]) -> subprocess.CompletedProcess:
    # A fresh interpreter: this test process has imported scapy for other tests.
    return subprocess.run(
        [sys.executable, "-c", CHECK, ",".join(banned), *names],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_no_daemon_module_imports_scapy_or_pyroute2():
    proc = imports_none_of(["scapy", "pyroute2"], [s.name for s in SERVICES])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_daemons_with_only_metrics_pages_start_without_twisted_web():
    proc = imports_none_of(["twisted.web"], sorted(WEB_ON_DEMAND))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = imports_none_of(["twisted.web"], ["diagd"])  # the check can fail
    assert proc.returncode == 1 and "twisted.web" in proc.stdout
