#!/usr/bin/env python3
"""DHCPv4 throughput: kea's perfdhcp against router7-dhcp4d, dnsmasq and kea-dhcp4.

Not a test: prints a table. Needs root (network namespaces). Every server gets the
same two namespaces joined by one veth, the same /16 with a ~51k address pool and
1 h leases, and the same perfdhcp run one after another:

    <p>-srv lan0 10.42.0.1/16  <── veth ──>  <p>-cli eth0 10.42.255.254/16: perfdhcp

perfdhcp acts as a relay (giaddr = 10.42.255.254, replies to port 67), so the
servers' raw-socket paths for address-less clients are not what is measured; the
DHCP logic, the lease bookkeeping and the persistence are.

    sudo .venv/bin/python bench/dhcp4d_perfdhcp.py [--rate 4000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER, CLIENT = "10.42.0.1", "10.42.255.254"
POOL = ("10.42.1.0", "10.42.200.255")


def sh(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


class Net:
    def __init__(self, prefix):
        self.srv, self.cli = f"{prefix}-srv", f"{prefix}-cli"

    def up(self):
        self.down()
        for ns in (self.srv, self.cli):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.srv, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
           "netns", self.cli)  # fmt: skip
        sh("ip", "-n", self.srv, "addr", "add", f"{SERVER}/16", "dev", "lan0")
        sh("ip", "-n", self.cli, "addr", "add", f"{CLIENT}/16", "dev", "eth0")
        sh("ip", "-n", self.srv, "link", "set", "lan0", "up")
        sh("ip", "-n", self.cli, "link", "set", "eth0", "up")

    def down(self):
        for ns in (self.srv, self.cli):
            sh("ip", "netns", "del", ns, check=False)


def start_router7(tmp: Path):
    perm = tmp / "perm"
    (perm / "dhcp4d").mkdir(parents=True)
    (perm / "dhcp4d" / "config.json").write_text(
        json.dumps({"pool": {"start": POOL[0], "end": POOL[1]}, "lease_time": 3600})
    )
    exe = Path(sys.executable).with_name("router7-dhcp4d")
    argv = [str(exe), "--perm", str(perm), "--run-dir", str(tmp / "run"), "--lan", "lan0",
            "--http-port", "0", "--log-level", "warning"]  # fmt: skip
    return argv


def start_dnsmasq(tmp: Path):
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
            "--interface=lan0", "--bind-interfaces", "--dhcp-authoritative",
            f"--dhcp-range={POOL[0]},{POOL[1]},255.255.0.0,1h", "--dhcp-lease-max=100000",
            f"--dhcp-leasefile={tmp / 'dnsmasq.leases'}", f"--pid-file={tmp / 'dnsmasq.pid'}",
            "--no-ping"]  # fmt: skip
    return argv


def start_kea(tmp: Path):
    conf = {
        "Dhcp4": {
            "interfaces-config": {"interfaces": ["lan0"]},
            "lease-database": {
                "type": "memfile",
                "persist": True,
                "name": str(tmp / "kea-leases4.csv"),
                "lfc-interval": 0,
            },
            "valid-lifetime": 3600,
            "subnet4": [
                {"id": 1, "subnet": "10.42.0.0/16", "pools": [{"pool": f"{POOL[0]} - {POOL[1]}"}]}
            ],
            "loggers": [
                {"name": "kea-dhcp4", "severity": "WARN", "output_options": [{"output": "stderr"}]}
            ],
        }
    }
    path = tmp / "kea-dhcp4.json"
    path.write_text(json.dumps(conf))
    return ["kea-dhcp4", "-c", str(path)]


SERVERS = {"router7-dhcp4d": start_router7, "dnsmasq": start_dnsmasq, "kea-dhcp4": start_kea}


def perfdhcp(net, rate, seconds, clients):
    argv = ["ip", "netns", "exec", net.cli, "timeout", str(seconds + 20), "perfdhcp",
            "-4",
            "-l", CLIENT, "-r", str(rate), "-p", str(seconds), "-R", str(clients),
            "-b", "mac=02:42:00:00:00:00", "-d", "2", SERVER]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return parse(out), out


def parse(out: str) -> dict:
    """perfdhcp's report: per exchange (DO, RA) sent/received/drops, and the rate."""
    res = {}
    for stage, title in (("DO", "DISCOVER-OFFER"), ("RA", "REQUEST-ACK")):
        block = out.split(f"Statistics for: {title}", 1)[1] if title in out else ""
        block = block.split("Statistics for:", 1)[0]
        for key in ("sent packets", "received packets", "drops"):
            m = re.search(rf"^{key}: (\d+)", block, re.M)
            res[f"{stage} {key}"] = int(m.group(1)) if m else None
    m = re.search(r"Rate: ([\d.]+) 4-way exchanges/second", out)
    res["rate"] = float(m.group(1)) if m else None
    return res


def run_one(net, name, rate, seconds, clients):
    """A fresh server and a fresh pair of namespaces for one perfdhcp run."""
    net.up()
    try:
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as d:
            tmp = Path(d)
            argv = SERVERS[name](tmp)
            env = {**os.environ, "KEA_PIDFILE_DIR": d, "KEA_LOCKFILE_DIR": d}
            with open(tmp / "server.log", "wb") as log:
                proc = subprocess.Popen(
                    ["ip", "netns", "exec", net.srv, *argv],
                    stdout=log,
                    stderr=log,
                    env=env,
                )
            try:
                time.sleep(2.0)  # let the server bind
                if proc.poll() is not None:
                    print(f"{name} exited:\n{(tmp / 'server.log').read_text()}", file=sys.stderr)
                    return None
                res, out = perfdhcp(net, rate, seconds, clients)
            finally:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if res.get("rate") is None or os.environ.get("BENCH_VERBOSE"):
                print(f"{name} @ {rate}/s: perfdhcp said:\n{out}", file=sys.stderr)
            return res
    finally:
        net.down()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="250,1000,4000", help="offered DORA/s, comma-separated")
    p.add_argument("--seconds", type=int, default=5, help="length of each run")
    p.add_argument("--clients", type=int, default=45000, help="distinct client MACs")
    p.add_argument("--only", nargs="*", choices=list(SERVERS), help="servers to run")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    for tool in ("perfdhcp", "dnsmasq", "kea-dhcp4", "ip"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            sys.exit(f"{tool} not found")
    rates = [int(r) for r in args.rates.split(",")]
    net = Net(f"bp{os.getpid() % 10000}")
    rows = []
    t0 = time.monotonic()
    for name in args.only or SERVERS:
        for rate in rates:
            res = run_one(net, name, rate, args.seconds, args.clients)
            if res is not None:
                rows.append((name, rate, res))
    print(f"\nperfdhcp -4 -p {args.seconds} -R {args.clients} -d 2, relayed, one veth; "
          f"{time.monotonic() - t0:.0f} s in all\n")  # fmt: skip
    cols = ("offered/s", "DORA/s", "DISCOVER", "OFFER", "drop DO", "REQUEST", "ACK", "drop RA")
    head = f"{'server':<16}" + "".join(f"{c:>10}" for c in cols)
    print(head)
    print("-" * len(head))
    for name, rate, r in rows:
        vals = [rate, None if r.get("rate") is None else round(r["rate"])]
        vals += [
            r.get(f"{st} {k}")
            for st in ("DO", "RA")
            for k in ("sent packets", "received packets", "drops")
        ]
        print(f"{name:<16}" + "".join(f"{'?' if v is None else v:>10}" for v in vals))


if __name__ == "__main__":
    main()
