#!/usr/bin/env python3
"""Forwarding throughput through a router namespace: no ruleset, router7's, with fast path.

Not a test: prints a table. Needs root and iperf3. Three namespaces joined by veths

    lan (192.168.42.50) ── lan0 [router] uplink0 ── wan (85.195.207.1, iperf3 -s)

and one iperf3 TCP run (LAN → WAN, --seconds each) per case:

1. plain forwarding, no nftables at all (what the kernel does here: the limit);
2. router7's ruleset applied by ``router7-netconfigd --once`` (stateful filter, NAT,
   MSS clamping, named counters), without the flowtable;
3. the same with the flowtable fast path, if the kernel supports flowtables.

    .venv/bin/python bench/forwarding.py [--seconds 5] [--streams 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def sh(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if check and proc.returncode:
        raise SystemExit(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


class Bench:
    def __init__(self, seconds: int, streams: int):
        tag = f"fwb{os.getpid() % 10000}"
        self.r, self.lan, self.wan = f"{tag}r", f"{tag}l", f"{tag}w"
        self.seconds, self.streams = seconds, streams
        self.tmp = Path(tempfile.mkdtemp(prefix="router7-fwbench-"))
        self.server: subprocess.Popen | None = None

    def up(self) -> None:
        for ns in (self.r, self.lan, self.wan):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "-n",
            self.r,
            "link",
            "add",
            "uplink0",
            "address",
            "02:72:37:bb:00:01",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.wan,
        )
        sh(
            "ip",
            "-n",
            self.r,
            "link",
            "add",
            "lan0",
            "address",
            "02:72:37:bb:01:01",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.lan,
        )
        for cmd in (
            ("addr", "add", "85.195.207.1/25", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            # for the no-ruleset case, where nothing masquerades the LAN's addresses
            ("route", "add", "192.168.42.0/24", "via", "85.195.207.62"),
        ):
            sh("ip", "-n", self.wan, *cmd)
        for cmd in (
            ("addr", "add", "192.168.42.50/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("route", "add", "default", "via", "192.168.42.1"),
        ):
            sh("ip", "-n", self.lan, *cmd)
        perm = self.tmp / "perm"
        (perm / "dhcp4/wire").mkdir(parents=True)
        (perm / "interfaces.json").write_text(
            json.dumps(
                {
                    "interfaces": [
                        {"hardware_addr": "02:72:37:bb:00:01", "name": "uplink0"},
                        {
                            "hardware_addr": "02:72:37:bb:01:01",
                            "name": "lan0",
                            "addr": "192.168.42.1/24",
                        },
                    ]
                }
            )
        )
        (perm / "dhcp4/wire/lease.json").write_text(
            json.dumps({"address": "85.195.207.62/25", "router": "85.195.207.1", "dns": []})
        )
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.wan, "iperf3", "-s", "-B", "85.195.207.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def down(self) -> None:
        if self.server:
            self.server.terminate()
            self.server.wait(10)
        for ns in (self.r, self.lan, self.wan):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def netconfigd(self) -> None:
        """Addresses, routes, sysctls and router7's ruleset."""
        sh(
            "ip",
            "netns",
            "exec",
            self.r,
            str(VENV_BIN / "router7-netconfigd"),
            "--perm",
            str(self.tmp / "perm"),
            "--run-dir",
            str(self.tmp / "run"),
            "--once",
            "--log-level",
            "warning",
            check=False,
        )

    def flush(self) -> None:
        sh("ip", "netns", "exec", self.r, "nft", "flush", "ruleset")

    def iperf(self) -> float:
        out = sh(
            "ip",
            "netns",
            "exec",
            self.lan,
            "iperf3",
            "-c",
            "85.195.207.1",
            "-t",
            str(self.seconds),
            "-P",
            str(self.streams),
            "-J",
            "--connect-timeout",
            "3000",
            check=False,
        ).stdout
        result = json.loads(out)
        if "error" in result:
            raise SystemExit(f"iperf3: {result['error']}")
        return result["end"]["sum_received"]["bits_per_second"]

    def ruleset_has_flowtable(self) -> bool:
        return (
            "flowtable fastpath"
            in sh("ip", "netns", "exec", self.r, "nft", "list", "ruleset").stdout
        )

    def strip_flowtable(self) -> None:
        """router7's ruleset minus the fast path: rebuild the forward chain without it."""
        rules = sh(
            "ip",
            "netns",
            "exec",
            self.r,
            "nft",
            "-a",
            "list",
            "chain",
            "inet",
            "router7",
            "forward",
        ).stdout
        for line in rules.splitlines():
            if "flow add @fastpath" in line:
                handle = line.rsplit("# handle ", 1)[1].strip()
                sh(
                    "ip",
                    "netns",
                    "exec",
                    self.r,
                    "nft",
                    "delete",
                    "rule",
                    "inet",
                    "router7",
                    "forward",
                    "handle",
                    handle,
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("iperf3"):
        raise SystemExit("needs root and iperf3 (apt-get install -y iperf3)")
    b = Bench(args.seconds, args.streams)
    try:
        b.up()
        b.netconfigd()  # addresses, routes, forwarding sysctls
        flowtable = b.ruleset_has_flowtable()
        b.flush()
        results = [("plain forwarding, no ruleset", b.iperf())]
        b.netconfigd()
        if flowtable:
            b.strip_flowtable()
        results.append(("router7 ruleset, no flowtable", b.iperf()))
        if flowtable:
            (b.tmp / "run" / "netconfigd-firewall.json").unlink(missing_ok=True)
            b.netconfigd()
            results.append(("router7 ruleset + flowtable", b.iperf()))
        else:
            results.append(("router7 ruleset + flowtable", None))
    finally:
        b.down()
    limit = results[0][1]
    print(
        f"iperf3 TCP LAN -> WAN through a router namespace, {args.seconds} s, "
        f"{args.streams} stream(s), kernel {os.uname().release}"
    )
    for name, bps in results:
        if bps is None:
            print(f"  {name:<32} n/a (the kernel has no flowtable support)")
        else:
            print(f"  {name:<32} {bps / 1e9:7.2f} Gbit/s  {bps / limit:6.1%} of plain forwarding")


if __name__ == "__main__":
    main()
