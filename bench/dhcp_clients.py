#!/usr/bin/env python3
"""router7-dhcp4/6 next to dhcpcd doing the same jobs against the lab's kea, side by side:
time from process start to lease written, and memory 60 s after start. Root only; builds
its own lab(s) (prefix bcl<pid>) and tears them down. Prints numbers; asserts nothing.

    .venv/bin/python bench/dhcp_clients.py [--runs 3] [--settle 60] [--labs 2]

Jobs, all on the router namespace's uplink0, each from scratch (fresh --perm for router7,
fresh tmpfs /run and /var/lib/dhcpcd for dhcpcd, `reset_node("router")` in between):

* v4: one DHCPv4 lease (DISCOVER/OFFER/REQUEST/ACK with kea-dhcp4). router7-dhcp4: until
  `<perm>/dhcp4/wire/lease.json` exists. `dhcpcd -4` (noarp, so no RFC 5227 probe of the
  offered address, which router7-dhcp4 does not do either; client id 01+MAC like router7):
  until its hook script sees reason BOUND.
  dhcpcd waits a random time before its first DISCOVER (RFC 2131 4.4.1; router7-dhcp4
  sends at once); it runs with -d to log that wait (to 0.1 s), and the line under the
  table gives the wait and dhcpcd's v4 time minus it (so ±50 ms).
* v6: IA_NA + IA_PD (a /48) from kea-dhcp6. router7-dhcp6: until lease.json holds an
  address and a prefix. `dhcpcd -6` (noipv6rs, DUID-LL like router7, `ia_na 1`,
  `ia_pd 2 -`: request the prefix, assign it to no interface; dhcpcd logs "cannot
  delegate to -" and installs only its reject route): until its hook sees BOUND6 with
  both an IA_NA address and an IA_PD prefix. Both wait a random time before the first
  Solicit, as RFC 8415 requires.
* v4+v6: dhcpcd as it normally runs, one process for both jobs (time: until both are
  bound), against router7-dhcp4 + router7-dhcp6 (time: the later of their two times, an
  estimate of starting both at once with a CPU each; RSS: sum).

Within one router7 or split-dhcpcd run the v6 client starts once the v4 client holds its
lease, so each start→lease window has the CPU to itself; a global lock does the same
across labs (and keeps stopping and resetting out of those windows). dhcpcd's hook is a
tiny sh script (`-c`) that touches a marker file: its fork/exec counts in dhcpcd's time
as writing lease.json counts in router7's.

Memory is read from /proc `settle` s after each process was spawned: VmRSS of the main
process (`ip netns exec` and `sh -c '... exec dhcpcd'` both exec, so Popen's pid is the
client itself) and, since dhcpcd 9 runs privilege-separated helpers (privileged proxy,
network/control proxies, one per address), the sum of VmRSS over the main process and all
its descendants, and the sum of Pss (shared pages split between the processes sharing
them) over the same tree; Pss also depends on what else runs on the host (pages shared
with other Python or dhcpcd processes count only in part). router7's clients are one
process each.

With --labs 2 (default) two identical labs run jobs in parallel (the start→lease windows
never overlap); --labs 1 runs everything in one lab, which takes about twice as long.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from router7.lab import Lab  # noqa: E402

BIN = REPO / ".venv/bin"
POLL = 0.01
LEASE_TIMEOUT = 30.0

HOOK = """#!/bin/sh
# dhcpcd -c hook for bench/dhcp_clients.py: mark when a lease is bound, touch nothing else.
case "$reason" in
BOUND|REBOOT|RENEW|REBIND)
    [ -n "$new_ip_address" ] && : > "{marks}/v4" ;;
BOUND6|REBOOT6|RENEW6|REBIND6)
    [ -n "$new_dhcp6_ia_pd1_prefix1" ] && [ -n "$new_dhcp6_ia_na1_ia_addr1" ] && : > "{marks}/v6" ;;
esac
exit 0
"""

DHCPCD_V4 = """# the job router7-dhcp4 does
noarp
noipv4ll
clientid
hostname
"""

DHCPCD_V6 = """# the job router7-dhcp6 does (IA_NA + IA_PD, prefix assigned nowhere)
noipv6rs
duid ll
interface uplink0
  ia_na 1
  ia_pd 2 -
"""

DHCPCD_BOTH = DHCPCD_V4 + DHCPCD_V6


@dataclass
class Sample:
    """One client process in one run."""

    client: str
    times: dict[str, float | None] = field(default_factory=dict)  # job -> start→lease, s
    rss: int | None = None  # kB, main process
    tree_rss: int | None = None  # kB, main + descendants
    tree_pss: int | None = None  # kB
    nprocs: int = 0
    comm: str = ""
    error: str = ""
    delay4: float | None = None  # dhcpcd's random wait before its first DISCOVER, s


# ---- /proc ---------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def _pss_kb(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def measure_memory(s: Sample, pid: int) -> None:
    tree = _tree(pid)
    s.comm = _comm(pid)
    s.rss = _status_kb(pid, "VmRSS")
    rss = [_status_kb(p, "VmRSS") for p in tree]
    pss = [_pss_kb(p) for p in tree]
    s.nprocs = len(tree)
    s.tree_rss = sum(x for x in rss if x) if s.rss else None
    s.tree_pss = sum(x for x in pss if x) if s.rss else None


# ---- clients ---------------------------------------------------------------


class Client:
    """A client process in the router namespace and the files that say it has a lease."""

    def __init__(self, lab: Lab, name: str, argv: list[str], work: Path) -> None:
        self.lab, self.name, self.argv, self.work = lab, name, argv, work
        self.log = work / f"{name.replace(' ', '_')}.log"
        self.proc: subprocess.Popen | None = None
        self.t0 = 0.0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.t0 = time.monotonic()
            self.proc = self.lab.popen(
                "router", *self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def has(self, job: str) -> bool:
        raise NotImplementedError

    def wait(self, jobs: list[str], sample: Sample) -> None:
        """Poll every 10 ms until every job in `jobs` has its lease (or a timeout)."""
        pending = set(jobs)
        deadline = self.t0 + LEASE_TIMEOUT
        while pending and time.monotonic() < deadline:
            for job in sorted(pending):
                if self.has(job):
                    sample.times[job] = time.monotonic() - self.t0
                    pending.discard(job)
            if self.proc.poll() is not None:
                break
            time.sleep(POLL)
        for job in pending:
            sample.times[job] = None
        if pending:
            rc = self.proc.poll()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            sample.error = f"no {'/'.join(sorted(pending))} lease (exit {rc}): " + " | ".join(tail)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


class Router7(Client):
    def __init__(self, lab: Lab, which: str, work: Path) -> None:
        self.perm = work / f"perm-{which}"
        run = work / f"run-{which}"
        self.perm.mkdir()
        run.mkdir()
        argv = [str(BIN / f"router7-{which}"), "--perm", str(self.perm), "--run-dir", str(run)]
        argv += ["--uplink", "uplink0", "--http-port", "0"]
        super().__init__(lab, f"router7-{which}", argv, work)
        self.lease = self.perm / which / "wire/lease.json"

    def has(self, job: str) -> bool:
        if not self.lease.exists():
            return False
        if job == "v4":
            return True
        try:
            lease = json.loads(self.lease.read_text())
        except (OSError, ValueError):
            return False
        return bool(lease.get("prefixes")) and bool(lease.get("addresses"))


class Dhcpcd(Client):
    def __init__(self, lab: Lab, jobs: list[str], work: Path) -> None:
        tag = "+".join(jobs)
        self.marks = work / f"marks-{tag}"
        self.marks.mkdir()
        hook = work / f"hook-{tag}.sh"
        hook.write_text(HOOK.format(marks=self.marks))
        hook.chmod(0o755)
        conf = work / f"dhcpcd-{tag}.conf"
        conf.write_text({"v4": DHCPCD_V4, "v6": DHCPCD_V6, "v4+v6": DHCPCD_BOTH}[tag])
        family = {"v4": ["-4"], "v6": ["-6"], "v4+v6": []}[tag]
        # ip netns exec gives each command a private mount namespace: dhcpcd's state dirs
        # become fresh tmpfs, invisible to the host (as in lab/router.py start_lan_clients).
        script = (
            "mount -t tmpfs tmpfs /run && mkdir -p /run/dhcpcd && "
            "mount -t tmpfs tmpfs /var/lib/dhcpcd && "
            f"exec dhcpcd -d -f {conf} {' '.join(family)} -B -c {hook} uplink0"
        )
        super().__init__(lab, f"dhcpcd {tag}", ["sh", "-c", script], work)

    def has(self, job: str) -> bool:
        return (self.marks / job).exists()

    def initial_delay(self) -> float | None:
        """From the -d log: "uplink0: delaying IPv4 for 0.4 seconds"."""
        with contextlib.suppress(OSError):
            if m := re.search(r"delaying IPv4 for ([0-9.]+) seconds", self.log.read_text()):
                return float(m.group(1))
        return None


# ---- runs ------------------------------------------------------------------

# A run of one "set": clients started one after another in one router namespace,
# each with the jobs it is timed on.
SETS = {
    "router7": [("router7-dhcp4", ["v4"]), ("router7-dhcp6", ["v6"])],
    "dhcpcd split": [("dhcpcd -4", ["v4"]), ("dhcpcd -6", ["v6"])],
    "dhcpcd both": [("dhcpcd", ["v4", "v6"])],
}


def make_client(lab: Lab, name: str, jobs: list[str], work: Path) -> Client:
    if name.startswith("router7-"):
        return Router7(lab, name.removeprefix("router7-"), work)
    return Dhcpcd(lab, jobs, work)


def run_set(lab: Lab, set_name: str, settle: float, quiet: threading.Lock) -> list[Sample]:
    work = Path(tempfile.mkdtemp(prefix=f"dhcp-clients-{lab.prefix}-"))
    clients: list[tuple[Client, Sample]] = []
    try:
        for name, jobs in SETS[set_name]:
            c = make_client(lab, name, jobs, work)
            s = Sample(name)
            clients.append((c, s))
            with quiet:  # nobody else starts a client while this one is timed
                c.start()
                c.wait(jobs, s)
        for c, s in clients:
            time.sleep(max(0.0, c.t0 + settle - time.monotonic()))
            if c.proc.poll() is None:
                measure_memory(s, c.proc.pid)
            else:
                s.error = s.error or f"exited {c.proc.returncode} before {settle:.0f} s"
            if isinstance(c, Dhcpcd) and "v4" in s.times:
                s.delay4 = c.initial_delay()
        return [s for _, s in clients]
    finally:
        with quiet:  # stopping costs CPU too: not while another lab times a start
            for c, _ in clients:
                c.stop()
            lab.reset_node("router")  # dhcpcd helpers, addresses, routes: gone
        shutil.rmtree(work, ignore_errors=True)


def worker(lab: Lab, todo: queue.Queue, results: list, settle: float, quiet, verbose) -> None:
    while True:
        try:
            run, set_name = todo.get_nowait()
        except queue.Empty:
            return
        t = time.monotonic()
        try:
            samples = run_set(lab, set_name, settle, quiet)
        except Exception as e:  # report and go on with the other runs
            samples = [Sample(set_name, error=f"{type(e).__name__}: {e}")]
        results.append((run, set_name, samples))
        if verbose:
            line = ", ".join(
                f"{s.client} "
                + " ".join(f"{j}={v:.3f}s" if v else f"{j}=-" for j, v in s.times.items())
                + f" rss={s.rss} tree={s.tree_rss}/{s.nprocs}p comm={s.comm} {s.error}"
                for s in samples
            )
            print(
                f"  [{lab.prefix}] run {run + 1} {set_name} ({time.monotonic() - t:.0f} s): {line}"
            )


# ---- report ----------------------------------------------------------------


def fmt_range(xs: list[float | None], scale: float, unit: str, digits: int) -> str:
    got = [x * scale for x in xs if x is not None]
    if not got:
        return "–"
    miss = f", {len(xs) - len(got)} failed" if len(got) < len(xs) else ""
    med = statistics.median(got)
    return f"{med:.{digits}f} {unit} ({min(got):.{digits}f}–{max(got):.{digits}f}){miss}"


def report(results: list, runs: int, settle: float) -> None:
    by: dict[str, list[Sample]] = {}
    per_run: dict[tuple[int, str], list[Sample]] = {}
    for run, set_name, samples in results:
        per_run[(run, set_name)] = samples
        for s in samples:
            by.setdefault(s.client, []).append(s)

    def sums(set_name: str) -> list[Sample]:
        """router7-dhcp4 + router7-dhcp6 of the same run as one pseudo-sample."""
        out = []
        for r in range(runs):
            ss = per_run.get((r, set_name), [])
            if len(ss) != 2:
                continue
            t = [s.times.get(j) for s, j in zip(ss, ("v4", "v6"), strict=True)]
            mem = [(s.rss, s.tree_rss, s.tree_pss) for s in ss]
            total = Sample("sum")
            total.times["v4+v6"] = None if None in t else max(t)
            ok = all(m[0] is not None for m in mem)
            total.rss = sum(m[0] for m in mem) if ok else None
            total.tree_rss = sum(m[1] for m in mem) if ok else None
            total.tree_pss = sum(m[2] for m in mem) if ok else None
            total.nprocs = sum(s.nprocs for s in ss)
            out.append(total)
        return out

    rows = [
        ("router7-dhcp4", "v4", by.get("router7-dhcp4", [])),
        ("dhcpcd -4", "v4", by.get("dhcpcd -4", [])),
        ("router7-dhcp6", "v6 NA+PD", by.get("router7-dhcp6", [])),
        ("dhcpcd -6", "v6 NA+PD", by.get("dhcpcd -6", [])),
        ("router7-dhcp4 + -dhcp6", "v4+v6 (max, sum)", sums("router7")),
        ("dhcpcd -4 + dhcpcd -6", "v4+v6 (max, sum)", sums("dhcpcd split")),
        ("dhcpcd (one process)", "v4+v6", by.get("dhcpcd", [])),
    ]
    head = (
        f"{'client':<24} {'job':<17} {'start→lease, median (min–max)':<32} "
        f"{f'RSS after {settle:.0f} s, median (min–max)':<34} {'tree RSS / PSS':<18} procs"
    )
    print()
    print(head)
    print("-" * len(head))
    for client, job, samples in rows:
        if not samples:
            continue
        key = "v4+v6" if "v4+v6" in job else job.split()[0]
        if client == "dhcpcd (one process)":
            times = [None if None in s.times.values() else max(s.times.values()) for s in samples]
        else:
            times = [s.times.get(key) for s in samples]
        rss = fmt_range([s.rss for s in samples], 1 / 1024, "MiB", 1)
        tr = [s.tree_rss for s in samples if s.tree_rss]
        tp = [s.tree_pss for s in samples if s.tree_pss]
        tree = (
            f"{statistics.median(tr) / 1024:.1f} / {statistics.median(tp) / 1024:.1f} MiB"
            if tr and tp
            else "–"
        )
        procs = max((s.nprocs for s in samples), default=0)
        print(
            f"{client:<24} {job:<17} {fmt_range(times, 1000, 'ms', 0):<32} {rss:<34} "
            f"{tree:<18} {procs}"
        )
    both = by.get("dhcpcd", [])
    if both:
        print(
            "  dhcpcd (one process), each job: v4 "
            + fmt_range([s.times.get("v4") for s in both], 1000, "ms", 0)
            + ", v6 NA+PD "
            + fmt_range([s.times.get("v6") for s in both], 1000, "ms", 0)
        )
    delayed = [s for s in by.get("dhcpcd -4", []) + both if s.delay4 is not None]
    if delayed:
        print(
            "  dhcpcd's random wait before its first DISCOVER (as logged, -4 and one-process "
            "runs): "
            + fmt_range([s.delay4 for s in delayed], 1000, "ms", 0)
            + "; its v4 start→lease minus that wait: "
            + fmt_range(
                [s.times["v4"] - s.delay4 if s.times.get("v4") else None for s in delayed],
                1000,
                "ms",
                0,
            )
        )
    errors = [(r, n, s) for r, n, ss in results for s in ss if s.error]
    for r, n, s in sorted(errors, key=lambda e: e[0]):
        print(f"  run {r + 1} {n}, {s.client}: {s.error}")
    comms = sorted({f"{s.client}→{s.comm}" for ss in by.values() for s in ss if s.comm})
    print("  pid checked via /proc/PID/comm: " + ", ".join(comms))


def versions() -> str:
    try:
        out = subprocess.run(["dhcpcd", "--version"], capture_output=True, text=True, timeout=10)
        dhcpcd = out.stdout.splitlines()[0] if out.stdout else "?"
    except (OSError, subprocess.TimeoutExpired):
        dhcpcd = "dhcpcd not found"
    py = subprocess.run(
        [str(BIN / "python"), "--version"], capture_output=True, text=True, timeout=10
    ).stdout.strip()
    return f"{py} ({platform.python_implementation()}, {BIN / 'python'}), {dhcpcd}, kernel {platform.release()}, {os.cpu_count()} CPUs"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--settle", type=float, default=60.0, help="seconds before reading RSS")
    p.add_argument("--labs", type=int, default=2, choices=(1, 2, 3), help="labs run in parallel")
    p.add_argument("-v", "--verbose", action="store_true", help="print each run as it ends")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("skipped: needs root (network namespaces)")
        return
    if not shutil.which("dhcpcd"):
        print("skipped: dhcpcd not installed")
        return
    print(versions())
    base = f"bcl{os.getpid() % 1000}"
    labs = [Lab(base + "abc"[i] if i else base, lan_hosts=1) for i in range(args.labs)]
    if any(lab.exists() for lab in labs):
        print(f"a lab named {base}* exists already; not touching it")
        return
    todo: queue.Queue = queue.Queue()
    for run in range(args.runs):
        for set_name in SETS:
            todo.put((run, set_name))
    results: list = []
    quiet = threading.Lock()
    t0 = time.monotonic()
    try:
        for lab in labs:
            lab.up(timeout=30)
        print(
            f"labs {', '.join(lab.prefix for lab in labs)} up in {time.monotonic() - t0:.1f} s; "
            f"{args.runs} runs × {len(SETS)} sets, RSS read {args.settle:.0f} s after each start"
        )
        threads = [
            threading.Thread(
                target=worker,
                args=(lab, todo, results, args.settle, quiet, args.verbose),
                daemon=True,
            )
            for lab in labs
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for lab in labs:
            lab.down()
    report(results, args.runs, args.settle)
    print(f"total {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
