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

CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(f"router7.{name}.service")
    heavy = sorted(m for m in ("scapy", "pyroute2") if m in sys.modules)
    if heavy:
        print(f"router7.{name}.service imports {heavy}")
        sys.exit(1)
"""


def test_no_daemon_module_imports_scapy_or_pyroute2():
    # A fresh interpreter: this test process has imported scapy for other tests.
    names = [s.name for s in SERVICES]
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, *names], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
