#!/usr/bin/env python3
"""Memory of router7's ten services in the namespace lab, beside dhcpcd + dnsmasq + radvd
doing the same jobs in the same lab. Root only; builds its own lab (prefix mem<pid>) and
tears it down. Prints numbers; asserts nothing.

    .venv/bin/python bench/memory.py [--names 100000] [--clients 10000] [--skip-others]

Per process: Rss and Pss from /proc/PID/smaps_rollup (Pss splits pages shared between
processes, e.g. libpython's text, so the Pss column adds up; the Rss column double
counts). Read at three points:

* settled: the router holds a WAN lease and a delegated prefix, the LAN host its address.
* workload: then `--names` DNS queries for distinct names from the LAN host (dnsperf;
  every one a cache miss forwarded upstream, so the cache fills to its cap), `--clients`
  DHCP clients' DISCOVERs to the LAN's DHCP server (perfdhcp as a relay, 10^4 MACs),
  and the traffic of both fills and wraps captured's ring. Lease renewals run meanwhile
  (the lab's ISP leases last 120 s).
* `--idle` seconds later, to see what stays.

The same three readings are then taken of dhcpcd (uplink0, v4 + v6 with a delegated
prefix), dnsmasq (DHCP and DNS on lan0, cache 10000) and radvd (lan0) after router7's
services are stopped. They do fewer jobs (no capture ring, no status pages, no diagnosis,
no backups): the comparison is for the shared jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from router7.lab.router import RouterServices, start_lan_clients  # noqa: E402
from router7.lab.topology import Lab  # noqa: E402

ROUTER_LAN = "192.168.42.1"


def rollup(pid: int) -> tuple[float, float]:
    """(Rss, Pss) of one process in MiB, from smaps_rollup."""
    values = {}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0, 0.0
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("Rss", 0.0), values.get("Pss", 0.0)


def children(pid: int) -> list[int]:
    """pid and its descendants (dhcpcd 9 forks privilege-separated helpers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def table(title: str, pids: dict[str, int]) -> tuple[float, float]:
    print(f"\n{title}")
    print(f"  {'process':12} {'pid':>7} {'RSS MiB':>8} {'PSS MiB':>8}")
    total_rss = total_pss = 0.0
    for name, pid in pids.items():
        rss = pss = 0.0
        for p in children(pid):
            r, s = rollup(p)
            rss, pss = rss + r, pss + s
        total_rss, total_pss = total_rss + rss, total_pss + pss
        print(f"  {name:12} {pid:>7} {rss:8.1f} {pss:8.1f}")
    print(f"  {'total':12} {'':>7} {total_rss:8.1f} {total_pss:8.1f}")
    return total_rss, total_pss


def router7_pids(router: RouterServices) -> dict[str, int]:
    pids = {}
    for s in router.services():
        out = router.ctl("pid", s.name).strip()
        if out.isdigit() and out != "0":
            pids[s.name] = int(out)
    return pids


def dns_names(path: Path, n: int) -> Path:
    tag = os.getpid()
    path.write_text("".join(f"n{i}-{tag}.example.test A\n" for i in range(n)))
    return path


def workload(lab: Lab, work: Path, names: int, clients: int) -> None:
    """Distinct DNS names and many DHCP clients from lan1, against the router's LAN side."""
    lan_ip = lab.exec("lan1", "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout
    lan_ip = lan_ip.split()[3].split("/")[0]
    start = time.monotonic()
    limit = names // 1000 + 30  # dnsperf stops there even if answers go missing
    dns = lab.exec(
        "lan1", "dnsperf", "-s", ROUTER_LAN, "-d", str(dns_names(work / "names", names)),
        "-n", "1", "-Q", "3000", "-t", "2", "-l", str(limit), timeout=limit + 30, check=False,
    )  # fmt: skip
    dns_s = time.monotonic() - start
    start = time.monotonic()
    # perfdhcp as a relay (giaddr = lan1's address): the DHCP logic for `clients` MACs,
    # without a raw socket on lan1.
    seconds = max(10, clients // 500)
    dhcp = lab.exec(
        "lan1", "perfdhcp", "-4", "-l", lan_ip, "-r", "1000", "-p", str(seconds),
        "-R", str(clients), "-b", "mac=02:42:00:00:00:00", "-d", "2", ROUTER_LAN,
        check=False, timeout=seconds + 30,
    )  # fmt: skip
    print(
        f"\nworkload: {names} distinct DNS names in {dns_s:.0f} s, "
        f"{clients} DHCP clients' DISCOVERs for {time.monotonic() - start:.0f} s"
    )
    for line in dns.stdout.splitlines():
        if "Queries completed" in line or "Queries lost" in line:
            print(f"  dnsperf: {line.strip()}")
    for line in dhcp.stdout.splitlines():
        if line.strip().startswith(("sent packets", "received packets", "drops")):
            print(f"  perfdhcp: {line.strip()}")


def others_config(lab: Lab, work: Path) -> dict[str, list[str]]:
    """dhcpcd, dnsmasq and radvd doing router7's jobs, as commands for the router ns."""
    dhcpcd_conf = work / "dhcpcd.conf"
    dhcpcd_conf.write_text(
        "noipv6rs\nipv6rs\nduid\nclientid\noption domain_name_servers\n"
        "interface uplink0\n  ia_na 1\n  ia_pd 2 lan0/0\n"
    )
    dnsmasq_conf = work / "dnsmasq.conf"
    a = lab.addr
    dnsmasq_conf.write_text(
        f"interface=lan0\nbind-dynamic\nno-resolv\nserver={a.isp_dns1_v4}\ncache-size=10000\n"
        f"dhcp-range=192.168.42.100,192.168.42.250,1h\ndhcp-leasefile={work}/dnsmasq.leases\n"
        f"pid-file={work}/dnsmasq.pid\n"
    )
    radvd_conf = work / "radvd.conf"
    radvd_conf.write_text(
        "interface lan0 {\n  AdvSendAdvert on;\n  prefix ::/64 { AdvOnLink on; "
        "AdvAutonomous on; };\n  RDNSS fe80::1 { };\n};\n"
    )
    radvd_conf.chmod(0o644)
    return {
        "dhcpcd": ["dhcpcd", "-B", "-f", str(dhcpcd_conf), "uplink0"],
        "dnsmasq": ["dnsmasq", "-k", "-C", str(dnsmasq_conf)],
        "radvd": ["radvd", "-n", "-C", str(radvd_conf), "-p", str(work / "radvd.pid")],
    }


def run_others(lab: Lab, work: Path, args) -> list[tuple[float, float]]:
    procs = {}
    for name, argv in others_config(lab, work).items():
        procs[name] = lab.popen(
            "router", *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    try:
        time.sleep(args.settle)  # dhcpcd: lease + prefix; dnsmasq and radvd: nothing to wait for
        pids = {n: p.pid for n, p in procs.items()}
        totals = [table("dhcpcd + dnsmasq + radvd, settled", pids)]
        workload(lab, work, args.names, args.clients)
        totals.append(table("dhcpcd + dnsmasq + radvd, after the workload", pids))
        time.sleep(args.idle)
        totals.append(table(f"dhcpcd + dnsmasq + radvd, {args.idle:g} s later", pids))
        return totals
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--names", type=int, default=100_000, help="distinct DNS names queried")
    p.add_argument("--clients", type=int, default=10_000, help="DHCP clients (perfdhcp -R)")
    p.add_argument("--idle", type=float, default=30.0, help="seconds before the last reading")
    p.add_argument("--settle", type=float, default=20.0, help="seconds the others get to bind")
    p.add_argument("--skip-others", action="store_true", help="router7 only")
    p.add_argument("--keep", action="store_true", help="leave the lab up (prefix printed)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/memory.py needs root (network namespaces)")
    lab = Lab(f"mem{os.getpid() % 100000}", lan_hosts=1)
    work = Path(tempfile.mkdtemp(prefix="router7-memory-"))
    try:
        lab.up()
        router = RouterServices(lab)
        start = time.monotonic()
        router.start()
        start_lan_clients(lab)
        if not router.wait_settled(180):
            sys.exit(f"router did not settle in 180 s: see {router.logs}")
        print(f"router settled {time.monotonic() - start:.1f} s after the services started")
        pids = router7_pids(router)
        ours = [table("router7, settled", pids)]
        workload(lab, work, args.names, args.clients)
        ours.append(table("router7, after the workload", pids))
        time.sleep(args.idle)
        ours.append(table(f"router7, {args.idle:g} s later", pids))
        restarted = {n for n, pid in router7_pids(router).items() if pids.get(n) != pid}
        if restarted:
            print(f"  restarted during the run (numbers above are of the old pid): {restarted}")
        router.stop()
        stop_deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in pids.values()):
            if time.monotonic() > stop_deadline:
                sys.exit("router7's services did not stop in 30 s")
            time.sleep(0.2)  # their ports (DNS, DHCP) must be free for dnsmasq
        if not args.skip_others:
            theirs = run_others(lab, work, args)
            print("\nsummary (RSS / PSS MiB):  settled      workload     idle")
            for name, t in (("router7 (10 services)", ours), ("dhcpcd+dnsmasq+radvd", theirs)):
                print(f"  {name:22}" + "".join(f" {r:5.0f} /{s:5.0f}" for r, s in t))
    finally:
        if args.keep:
            print(f"lab {lab.prefix} left up")
        else:
            RouterServices(lab).stop()
            lab.down()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
