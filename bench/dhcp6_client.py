#!/usr/bin/env python3
"""Numbers for router7-dhcp6: codec speed, state machine speed, and (as root) how long
getting a lease takes against kea-dhcp6 in a pair of namespaces, from scratch
(Solicit/Advertise/Request/Reply) and after a restart (Rebind/Reply). Prints numbers;
asserts nothing.

    .venv/bin/python bench/dhcp6_client.py [--runs 5] [--no-netns]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scapy.layers.inet import UDP  # noqa: E402
from scapy.utils import rdpcap  # noqa: E402
from twisted.internet import task  # noqa: E402

from router7.dhcp6 import wire  # noqa: E402
from router7.dhcp6.client import ClientConfig, Dhcp6Machine, Listener  # noqa: E402
from router7.dhcp6.wire import IA, DecodeError  # noqa: E402

PCAP = REPO.parent / "shared/testdata/fiber7/dhcp6-fiber7.pcap"
DUID = bytes.fromhex("000a000300014c5e0c43bf39")


def per_op(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def codec() -> tuple[bytes, bytes] | None:
    if not PCAP.exists():
        print(f"codec: skipped, no capture at {PCAP}")
        return None
    adv, reply = (bytes(p[UDP].payload) for p in rdpcap(str(PCAP)))
    garbage = os.urandom(300)

    def bad():
        with contextlib.suppress(DecodeError):
            wire.decode(garbage)

    print(f"decode fiber7 Reply:     {per_op(lambda: wire.decode(reply), 2000) * 1e6:8.1f} µs")
    print(f"decode random bytes:     {per_op(bad, 2000) * 1e6:8.1f} µs (dropped)")
    solicit = lambda: wire.encode(wire.SOLICIT, 1, DUID, ia_na=[IA(1)], ia_pd=[IA(1)])  # noqa: E731
    print(f"encode Solicit:          {per_op(solicit, 2000) * 1e6:8.1f} µs")
    return adv, reply


def machine(packets: tuple[bytes, bytes]) -> None:
    adv, reply = packets

    class Edge(Listener):
        def __init__(self):
            self.sent, self.leases = [], []

        def send(self, tx) -> bool:
            self.sent.append(tx.payload)
            return True

        def lease_changed(self, lease) -> None:
            self.leases.append(lease)

    def exchange():
        clock = task.Clock()
        clock.advance(1.7e9)
        edge = Edge()
        sent, leases = edge.sent, edge.leases
        m = Dhcp6Machine(ClientConfig(DUID, 1), clock, edge, rng=random.Random(1))
        m.start()
        clock.advance(1)
        m.datagram_received(adv[:1] + sent[-1][1:4] + adv[4:])
        clock.advance(1.2)
        m.datagram_received(reply[:1] + sent[-1][1:4] + reply[4:])
        assert leases

    print(f"full exchange (task.Clock): {per_op(exchange, 300) * 1e3:6.2f} ms")


def netns(runs: int) -> None:
    if os.geteuid() != 0 or not shutil.which("kea-dhcp6", path="/usr/sbin:/usr/bin"):
        print("netns: skipped (needs root and kea-dhcp6)")
        return
    from tests.integration.test_dhcp6_client import Client, Kea, Pair

    pair = Pair().up()
    tmp = Path(tempfile.mkdtemp(prefix="dhcp6-bench-"))
    kea = Kea(pair, tmp / "kea")
    try:
        kea.start(t1=600, t2=900, preferred=1200, valid=2400)
        fresh, restart = [], []
        for i in range(runs):
            c = Client(pair.cli, tmp / f"client{i}")
            t0 = time.time()
            c.start()
            c.wait_lease("a lease", timeout=30)
            fresh.append(_written(c) - t0)
            c.stop()
            t0 = time.time()
            before = c.lease_file.stat().st_mtime
            c.start()
            c.wait_lease("a rebound lease", lambda _, c=c, t=before: _written(c) > t, timeout=30)
            restart.append(_written(c) - t0)
            c.stop()
        print(
            f"start → lease.json, Solicit (n={runs}): median {statistics.median(fresh):.2f} s, "
            f"min {min(fresh):.2f}, max {max(fresh):.2f}  (incl. ~0.9 s Python start, 0–1 s "
            "SOL_MAX_DELAY, 1–1.1 s first RT)"
        )
        print(
            f"restart → lease.json, Rebind (n={runs}): median {statistics.median(restart):.2f} s, "
            f"min {min(restart):.2f}, max {max(restart):.2f}"
        )
    finally:
        kea.stop()
        pair.down()
        shutil.rmtree(tmp, ignore_errors=True)


def _written(c) -> float:
    return c.lease_file.stat().st_mtime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-netns", action="store_true")
    args = p.parse_args()
    packets = codec()
    if packets:
        machine(packets)
    if not args.no_netns:
        netns(args.runs)


if __name__ == "__main__":
    main()
