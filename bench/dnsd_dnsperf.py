#!/usr/bin/env python3
"""dnsperf against router7-dnsd and dnsmasq, both forwarding to one upstream dnsmasq.

Not a test: it prints numbers. Needs root, dnsperf and dnsmasq. Namespaces:

    bench-up:  down0 10.99.0.53/24        upstream dnsmasq, *.bench.test -> 203.0.113.1 (TTL 3600)
    bench-rtr: uplink0 10.99.0.2/24, lan0 10.98.0.1/24
               router7-dnsd on :53, dnsmasq (cache 10000) on :5300
    bench-cli: eth0 10.98.0.23/24         dnsperf

Scenarios: "hit" repeats one cached name; "miss" sends names never asked before
(every one is forwarded upstream). Each run is bounded by --seconds.

    sudo .venv/bin/python bench/dnsd_dnsperf.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

UPSTREAM, ROUTER, CLIENT = "10.99.0.53", "10.98.0.1", "10.98.0.23"
DNSD = Path(sys.executable).with_name("router7-dnsd")


def sh(*cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


class Bench:
    def __init__(self, tmp: Path):
        tag = uuid.uuid4().hex[:4]
        self.up, self.rtr, self.cli = (f"bench-{tag}-{n}" for n in ("up", "rtr", "cli"))
        self.tmp = tmp
        self.procs: list[subprocess.Popen] = []

    def ns(self, ns, *cmd, **kw):
        return sh("ip", "netns", "exec", ns, *cmd, **kw)

    def spawn(self, ns, cmd, name):
        with open(self.tmp / f"{name}.log", "ab") as log:
            p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=log, stderr=log)
        self.procs.append(p)
        return p

    def up_(self):
        for ns in (self.up, self.rtr, self.cli):
            sh("ip", "netns", "add", ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        for here, peer, there in (("uplink0", "down0", self.up), ("lan0", "eth0", self.cli)):
            sh(*f"ip link add {here} netns {self.rtr} type veth peer {peer} netns {there}".split())
        for ns, dev, addr in (
            (self.up, "down0", f"{UPSTREAM}/24"),
            (self.rtr, "uplink0", "10.99.0.2/24"),
            (self.rtr, "lan0", f"{ROUTER}/24"),
            (self.cli, "eth0", f"{CLIENT}/24"),
        ):
            self.ns(ns, "ip", "addr", "add", addr, "dev", dev)
            self.ns(ns, "ip", "link", "set", dev, "up")

    def start(self):
        common = ["dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--keep-in-foreground",
                  "--bind-interfaces"]  # fmt: skip
        self.spawn(self.up, [*common, f"--listen-address={UPSTREAM}", "--local-ttl=3600",
                             "--address=/bench.test/203.0.113.1", f"--pid-file={self.tmp}/up.pid"], "upstream")  # fmt: skip
        self.spawn(self.rtr, [*common, f"--listen-address={ROUTER}", "--port=5300", f"--server={UPSTREAM}",
                              "--cache-size=10000", "--dns-forward-max=1000", f"--pid-file={self.tmp}/fwd.pid"],
                   "dnsmasq")  # fmt: skip
        perm = self.tmp / "perm"
        (perm / "dhcp4/wire").mkdir(parents=True)
        (perm / "dhcp4/wire/lease.json").write_text(
            json.dumps({"address": "10.99.0.2/24", "dns": [UPSTREAM]})
        )
        self.spawn(self.rtr, [str(DNSD), "--perm", str(perm), "--run-dir", str(self.tmp / "run"),
                              "--log-level", "warning", "--hostname", "bench"], "dnsd")  # fmt: skip
        for port in (53, 5300):
            deadline = time.monotonic() + 15
            while self.dig(port, "warm.bench.test") != "203.0.113.1":
                if time.monotonic() > deadline:
                    raise SystemExit(f"server on port {port} did not answer; logs in {self.tmp}")
                time.sleep(0.2)

    def dig(self, port, name):
        out = self.ns(
            self.cli,
            "dig",
            f"@{ROUTER}",
            "-p",
            str(port),
            "+short",
            "+time=1",
            "+tries=1",
            name,
            check=False,
        )
        return out.stdout.strip()

    def dnsperf(self, port, datafile: Path, seconds: int, raw: bool) -> dict:
        # -v prints one line per answer with its latency (for the p99); into a file,
        # since a pipe read by Python would slow dnsperf down.
        report = self.tmp / f"dnsperf-{port}-{datafile.name}.txt"
        with open(report, "w") as f:
            subprocess.run(
                ["ip", "netns", "exec", self.cli, "dnsperf", "-s", ROUTER, "-p", str(port), "-d", str(datafile),
                 "-l", str(seconds), "-n", "1", "-v", "-t", "2"],
                stdout=f, stderr=subprocess.STDOUT, timeout=seconds + 30, check=True,
            )  # fmt: skip
        out = report.read_text()
        if raw:
            print(out[-700:])
        latencies = [float(m) for m in re.findall(r"^> \S+ .* (\d+\.\d+)$", out, re.M)]
        qps = re.search(r"Queries per second:\s+([\d.]+)", out)
        completed = re.search(r"Queries completed:\s+(\d+)", out)
        lost = re.search(r"Queries lost:\s+(\d+)", out)
        latencies.sort()
        return {
            "qps": float(qps.group(1)) if qps else 0.0,
            "completed": int(completed.group(1)) if completed else 0,
            "lost": int(lost.group(1)) if lost else 0,
            "mean_ms": 1000 * statistics.fmean(latencies) if latencies else float("nan"),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]
            if latencies
            else float("nan"),
        }

    def down(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in (self.up, self.rtr, self.cli):
            sh("ip", "netns", "del", ns, check=False)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10, help="length of each dnsperf run")
    parser.add_argument(
        "--miss-names", type=int, default=400_000, help="distinct names per miss run"
    )
    parser.add_argument("--raw", action="store_true", help="also show dnsperf's own output")
    args = parser.parse_args()
    for tool in ("dnsperf", "dnsmasq", "dig", "ip"):
        if shutil.which(tool) is None:
            raise SystemExit(
                f"needs {tool} (apt-get install dnsperf dnsmasq bind9-dnsutils iproute2)"
            )
    with tempfile.TemporaryDirectory(prefix="dnsd-bench-") as tmp:
        tmp = Path(tmp)
        bench = Bench(tmp)
        results = {}
        try:
            bench.up_()
            bench.start()
            for server, port in (("router7-dnsd", 53), ("dnsmasq", 5300)):
                bench.dig(port, "hit.bench.test")  # now cached
                hit = tmp / f"hit-{port}"
                hit.write_text(
                    "hit.bench.test A\n" * 2_000_000
                )  # -n 1: the file bounds the run too
                miss = tmp / f"miss-{port}"
                miss.write_text(
                    "".join(f"m{i}-{port}.bench.test A\n" for i in range(args.miss_names))
                )
                results[(server, "hit")] = bench.dnsperf(port, hit, args.seconds, args.raw)
                results[(server, "miss")] = bench.dnsperf(port, miss, args.seconds, args.raw)
        finally:
            bench.down()
    print(f"dnsperf, {args.seconds} s per run, 100 queries outstanding, one client, UDP, over veth")
    print(
        f"{'server':<14} {'scenario':<6} {'qps':>9} {'mean ms':>8} {'p99 ms':>8} {'completed':>10} {'lost':>6}"
    )
    for (server, scenario), r in results.items():
        print(
            f"{server:<14} {scenario:<6} {r['qps']:>9.0f} {r['mean_ms']:>8.3f} {r['p99_ms']:>8.3f}"
            f" {r['completed']:>10} {r['lost']:>6}"
        )


if __name__ == "__main__":
    main()
