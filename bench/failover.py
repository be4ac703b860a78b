#!/usr/bin/env python3
"""Uplink failover times in the lab: link loss, silent loss and fail-back.

Not a test: prints a table. Needs root and the lab's daemons (kea, radvd, dnsmasq)
and the lab extra (supervisord). One lab with the second ISP (``Lab(isp2=True)``),
router7's services in the router namespace, a LAN host sending a UDP datagram
every 50 ms on one socket to the internet host (router7.lab.pathprobe), which
answers with the address it saw: the NAT address of uplink0 or uplink1.

Per round and failure (``link``: the primary's access link goes down; ``silent``:
the primary ISP stops forwarding, link and gateway still up):

* failover: last reply through uplink0 to the first through uplink1;
* fail-back: after the primary is restored, last reply through uplink1 to the
  first through uplink0 (includes the hysteresis: up_after good probe rounds).

Goals (issue 14): link loss <= 1 s, silent loss <= 5 s.

    .venv/bin/python bench/failover.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from router7.lab import Lab, pathprobe  # noqa: E402
from router7.lab.failover import (  # noqa: E402
    BACKUP_V4,
    PRIMARY_V4,
    Stopwatch,
    break_primary,
    restore_primary,
)
from router7.lab.router import RouterServices, start_lan_clients  # noqa: E402


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def active(router: RouterServices) -> str | None:
    try:
        return json.loads((router.perm / "failover/state.json").read_text()).get("active")
    except (OSError, ValueError):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    lab = Lab(f"fob{os.getpid() % 10000}", lan_hosts=1, isp2=True)
    watch = Stopwatch(lab)
    try:
        lab.up()
        router = RouterServices(lab)
        router.start()
        start_lan_clients(lab)
        wait(lambda: active(router) == "uplink0", 120, "failoverd")
        watch.start_server()
        watch.start()
        wait(lambda: (watch.latest_via() or "").startswith(PRIMARY_V4), 120, "traffic via uplink0")
        results: dict[str, dict[str, list[float]]] = {}
        for _ in range(args.rounds):
            for how in ("link", "silent"):
                t0 = watch.now()
                break_primary(lab, how)
                wait(lambda: (watch.latest_via() or "").startswith(BACKUP_V4), 30, "failover")
                time.sleep(1)
                t1 = watch.now()
                restore_primary(lab, how)
                wait(lambda: (watch.latest_via() or "").startswith(PRIMARY_V4), 60, "fail-back")
                time.sleep(1)
                records = watch.records()
                r = results.setdefault(how, {"failover": [], "fail-back": []})
                down = pathprobe.switch_time(records, PRIMARY_V4, BACKUP_V4, after=t0)
                back = pathprobe.switch_time(records, BACKUP_V4, PRIMARY_V4, after=t1)
                if down is not None:
                    r["failover"].append(down)
                if back is not None:
                    r["fail-back"].append(back)
        print(f"failover times, LAN host sending every 50 ms, {args.rounds} rounds (seconds)")
        print(f"{'failure':<8} {'what':<10} {'median':>7} {'min':>7} {'max':>7}")
        for how, r in results.items():
            for what, values in r.items():
                if values:
                    print(
                        f"{how:<8} {what:<10} {statistics.median(values):7.2f} "
                        f"{min(values):7.2f} {max(values):7.2f}"
                    )
                else:
                    print(f"{how:<8} {what:<10} {'-':>7}")
    finally:
        watch.stop()
        lab.down()


if __name__ == "__main__":
    main()
