#!/usr/bin/env python3
"""Numbers for router7-dhcp4: codec speed, state machine speed, and (as root) how long
getting a lease takes against kea in a pair of namespaces, with DISCOVER and with
INIT-REBOOT (a restart). Prints numbers; asserts nothing.

    .venv/bin/python bench/dhcp4_client.py [--runs 5] [--no-netns]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scapy.layers.inet import IP  # noqa: E402
from scapy.utils import rdpcap  # noqa: E402
from twisted.internet import task  # noqa: E402

from router7.dhcp4 import wire  # noqa: E402
from router7.dhcp4.client import Dhcp4Core, Listener  # noqa: E402

PCAP = REPO.parent / "shared/testdata/fiber7/dhcp4-fiber7.pcap"
MAC = bytes.fromhex("d858d7004edf")


def per_op(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def codec() -> None:
    if not PCAP.exists():
        print(f"codec: skipped, no capture at {PCAP}")
        return
    offer_pkt, ack_pkt = (bytes(p[IP]) for p in rdpcap(str(PCAP)))
    garbage = os.urandom(400)
    ident = wire.Identity(MAC, "router7")
    print(
        f"decode fiber7 ACK (IPv4 packet):  {per_op(lambda: wire.decode_ipv4(ack_pkt), 2000) * 1e6:7.1f} µs"
    )

    def bad():
        with contextlib.suppress(wire.MalformedPacket, wire.NotForUs):
            wire.decode_ipv4(garbage)

    print(f"reject 400 random bytes:          {per_op(bad, 2000) * 1e6:7.1f} µs")
    enc = per_op(lambda: wire.encode(wire.REQUEST, 1, ident, requested_ip=wire.BROADCAST), 2000)
    print(f"encode REQUEST:                   {enc * 1e6:7.1f} µs")
    payload = wire.encode(wire.REQUEST, 1, ident)
    wrap = per_op(lambda: wire.wrap_ipv4(payload, wire.UNSPECIFIED, wire.BROADCAST), 2000)
    print(f"wrap in IPv4/UDP:                 {wrap * 1e6:7.1f} µs")

    offer, ack = wire.decode_ipv4(offer_pkt), wire.decode_ipv4(ack_pkt)
    from dataclasses import replace

    def exchange():
        clock = task.Clock()
        core = Dhcp4Core(ident, clock, Listener(), rng=random.Random(1))
        core.start()
        core.receive(replace(offer, xid=core.xid))
        core.receive(replace(ack, xid=core.xid))
        core.stop()

    print(f"state machine DISCOVER→BOUND:     {per_op(exchange, 500) * 1e6:7.1f} µs")


def _stamp(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def first_send_to_bound(log: Path) -> list[float]:
    """Per process start: seconds from its first packet sent to "bound to"."""
    out, sent = [], None
    for line in log.read_text().splitlines():
        if "router7.dhcp4.service: sent " in line and sent is None:
            sent = _stamp(line)
        elif "bound to" in line and sent is not None:
            out.append(_stamp(line) - sent)
            sent = None
        elif "router7.dhcp4.service: on " in line:  # a new process
            sent = None
    return out


def netns(runs: int) -> None:
    if os.geteuid() != 0:
        print("netns: skipped, needs root")
        return
    from tests.integration.test_dhcp4_client import Client, Kea, Pair

    pair = Pair().up()
    tmp = Path(tempfile.mkdtemp(prefix="dhcp4-bench-"))
    kea = Kea(pair, tmp / "kea", lifetime=600).start()
    try:
        start_to_lease, cold, warm = [], [], []
        for i in range(runs):
            client = Client(pair.cli, tmp / f"client{i}")
            t0 = time.monotonic()
            client.start()
            first = client.wait_lease()
            start_to_lease.append(time.monotonic() - t0)
            client.stop()
            client.start()  # INIT-REBOOT
            client.wait_lease(newer_than=first["obtained_at"], timeout=30)
            assert client.signal(signal.SIGUSR2) == 125  # RELEASE: the next run starts clean
            exchanges = first_send_to_bound(client.log)
            cold.append(exchanges[0])
            warm.append(exchanges[1])

        def show(name, xs):
            print(
                f"{name}: median {statistics.median(xs) * 1000:7.1f} ms, "
                f"min {min(xs) * 1000:7.1f} ms, max {max(xs) * 1000:7.1f} ms ({len(xs)} runs)"
            )

        print("against kea-dhcp4 over a veth pair:")
        show("  process start → lease.json (incl. imports)", start_to_lease)
        show("  first DISCOVER → bound (4 messages)        ", cold)
        show("  INIT-REBOOT REQUEST → bound (2 messages)   ", warm)
        received = [t for t, _, _ in kea.received()]
        print(
            f"  kea saw {received.count('DISCOVER')} DISCOVER, {received.count('REQUEST')} REQUEST,"
            f" {received.count('RELEASE')} RELEASE"
        )
    finally:
        kea.stop()
        pair.down()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--no-netns", action="store_true")
    args = p.parse_args()
    codec()
    if not args.no_netns:
        netns(args.runs)


if __name__ == "__main__":
    main()
