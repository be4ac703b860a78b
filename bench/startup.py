#!/usr/bin/env python3
"""How long router7's services take from being started to READY=1 (sd_notify), in the
namespace lab: all ten started at once (as `systemctl start router7.target` does), and
each alone, in wall-clock time and in CPU time (user + system of the process until it
sent READY=1: what a loaded machine cannot inflate). Root only; builds its own lab (prefix st<pid>) and tears it down. Prints
numbers; asserts nothing.

    .venv/bin/python bench/startup.py [--runs 3]

Each service gets its own NOTIFY_SOCKET (a unix datagram socket of this process), so
READY=1 is timed exactly as systemd sees it. "import" is the CPU time `python -c
'import router7.<svc>.service'` takes (the start-up floor of each process). The time from
start to a lease file of router7-dhcp4/dhcp6 next to dhcpcd's is bench/dhcp_clients.py.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from router7.lab.router import RouterServices  # noqa: E402
from router7.lab.topology import Lab  # noqa: E402
from router7.runtime.statefile import write_json_atomic  # noqa: E402

BIN = Path(sys.executable).parent


def import_time(name: str) -> float:
    """CPU seconds (user + system) of a fresh interpreter importing the service's module."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-c", f"import router7.{name}.service"],
        check=True, cwd=REPO,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_and_time(
    lab: Lab, router: RouterServices, names: list[str], work: Path, timeout: float = 120
) -> dict[str, tuple[float, float | None] | None]:
    """Start ``names`` at once in the router namespace: (wall, CPU) seconds until each
    sent READY=1."""
    socks, procs, started = {}, {}, {}
    perm = work / "perm"
    shutil.rmtree(perm, ignore_errors=True)
    perm.mkdir(parents=True)
    write_json_atomic(perm / "interfaces.json", router.default_interfaces())
    write_json_atomic(perm / "diagd/config.json", router.default_diagd())
    spec = {s.name: s for s in router.services()}
    for name in names:
        path = work / f"{name}.notify"
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        socks[sock] = name
    try:
        for name in socks.values():
            s = spec[name]
            argv = [
                str(BIN / f"router7-{name}"),
                "--perm",
                str(perm),
                "--run-dir",
                str(work / "run"),
            ]
            argv += ["--uplink", "uplink0"] if s.uplink else []
            argv += ["--lan", "lan0"] if s.lan else []
            env = {**os.environ, "NOTIFY_SOCKET": str(work / f"{name}.notify")}
            log = (work / f"{name}.log").open("ab")
            started[name] = time.monotonic()
            procs[name] = lab.popen("router", *argv, env=env, stdout=log, stderr=log)
        ready: dict[str, tuple[float, float | None] | None] = dict.fromkeys(names)
        deadline = time.monotonic() + timeout
        while None in ready.values() and time.monotonic() < deadline:
            readable, _, _ = select.select(list(socks), [], [], 0.5)
            for sock in readable:
                message = sock.recv(4096).decode()
                name = socks[sock]
                if "READY=1" in message.split("\n") and ready[name] is None:
                    # `ip netns exec` execs the service: Popen's pid is the service's.
                    ready[name] = (time.monotonic() - started[name], cpu_seconds(procs[name].pid))
        return ready
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        for sock in socks:
            sock.close()


def fmt(xs: list, part: int | None = None) -> str:
    if part is not None:
        xs = [x[part] if x is not None else None for x in xs]
    got = [x for x in xs if x is not None]
    if not got:
        return "   never"
    missing = f" ({len(xs) - len(got)} never)" if len(got) < len(xs) else ""
    return f"{statistics.median(got) * 1000:8.0f}{missing}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/startup.py needs root (network namespaces)")
    lab = Lab(f"st{os.getpid() % 100000}", lan_hosts=1)
    work = Path(tempfile.mkdtemp(prefix="router7-startup-"))
    try:
        lab.up()
        router = RouterServices(lab)
        names = [s.name for s in router.services()]
        imports = {n: [import_time(n) for _ in range(args.runs)] for n in names}
        together = {n: [] for n in names}
        alone = {n: [] for n in names}
        for _ in range(args.runs):
            for n, t in start_and_time(lab, router, names, work).items():
                together[n].append(t)
            lab.reset_node("router")
            for n in names:
                # netconfigd names and addresses the links the others bind to: it runs
                # (and is timed) alone first, then stays for the others' turn.
                if n == "netconfigd":
                    alone[n].append(start_and_time(lab, router, [n], work)[n])
                else:
                    alone[n].append(start_and_time(lab, router, ["netconfigd", n], work)[n])
            lab.reset_node("router")
        print(
            f"\nmedian of {args.runs} runs, ms  import CPU |  alone: wall    CPU | all at once: wall    CPU"
        )
        for n in names:
            print(
                f"  {n:12} {fmt(imports[n])}     | {fmt(alone[n], 0)} {fmt(alone[n], 1)}"
                f" | {fmt(together[n], 0)} {fmt(together[n], 1)}"
            )
        walls = zip(*([t[0] if t else None for t in ts] for ts in together.values()), strict=True)
        last = [max(filter(None, run), default=None) for run in walls]
        print(f"  {'all ready':12} {'':12} | {'':8} {'':8} | {fmt(last)}")
        cpus = zip(*([t[1] if t else None for t in ts] for ts in together.values()), strict=True)
        total = [sum(filter(None, run)) for run in cpus]
        print(f"  {'CPU, all ten':12} {'':12} | {'':8} {'':8} | {'':8} {fmt(total)}")
    finally:
        lab.down()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
