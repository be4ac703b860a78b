"""Which uplink carries a LAN host's traffic, every 50 ms: the failover stopwatch.

``serve`` runs on the internet host: a UDP echo that answers each datagram with
the source address it saw, i.e. the router uplink's NAT address for IPv4 (or
the LAN host's address for IPv6, whose source prefix names the uplink).
``send`` runs on a LAN host: one datagram every ``--interval`` on ONE socket
(one conntrack entry, as a long-lived connection would be), and prints a JSON
line per reply: ``{"seq", "sent", "via"}`` (``sent`` is CLOCK_MONOTONIC, shared by
every namespace of the host). ``switch_time`` turns those lines into "last
reply through the old path to first reply through the new one".

The lab hosts have no ping binary; UDP also proves the conntrack flush: a stale
NAT entry would keep the flow pinned to the failed uplink.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import socket
import sys
import time
from collections.abc import Iterable

PORT = 7777


def serve(addresses: Iterable[str], port: int = PORT) -> None:
    """Answer on each of ``addresses`` (bound one by one, so a reply leaves from the
    address the datagram was sent to, whatever the routes prefer)."""
    socks = []
    for addr in addresses:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((addr, port))
        socks.append(s)
    print("serving", flush=True)
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            data, src = s.recvfrom(512)
            s.sendto(data + b" " + src[0].encode(), src)


def send(to: str, port: int, interval: float, duration: float, out=sys.stdout) -> None:
    family = socket.AF_INET6 if ":" in to else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    sent: dict[int, float] = {}
    seq = 0
    start = time.monotonic()
    next_send = start
    while True:
        now = time.monotonic()
        if now >= start + duration:
            break
        if now >= next_send:
            seq += 1
            sent[seq] = now
            with contextlib.suppress(OSError):  # no route for a moment: a lost probe
                s.sendto(str(seq).encode(), (to, port))
            next_send += interval
        ready, _, _ = select.select([s], [], [], max(0.0, next_send - time.monotonic()))
        if ready:
            try:
                data = s.recv(512)
            except OSError:
                continue
            n, _, via = data.decode().partition(" ")
            if n.isdigit() and int(n) in sent:
                print(json.dumps({"seq": int(n), "sent": sent[int(n)], "via": via}), file=out)
                out.flush()


def parse(lines: Iterable[str]) -> list[dict]:
    out = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and {"seq", "sent", "via"} <= rec.keys():
            out.append(rec)
    return sorted(out, key=lambda r: r["seq"])


def switch_time(records: list[dict], old: str, new: str, after: float = 0.0) -> float | None:
    """Seconds from the last reply through ``old`` to the first through ``new`` sent after
    ``after`` (``old``/``new`` match the start of ``via``, so a prefix works)."""
    first_new = next((r for r in records if r["sent"] >= after and r["via"].startswith(new)), None)
    if first_new is None:
        return None
    last_old = [r for r in records if r["sent"] < first_new["sent"] and r["via"].startswith(old)]
    if not last_old:
        return None
    return first_new["sent"] - last_old[-1]["sent"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m router7.lab.pathprobe", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve", help="UDP echo answering with the source address it saw")
    sv.add_argument("--port", type=int, default=PORT)
    sv.add_argument("--bind", action="append", required=True, help="address to answer on")
    sd = sub.add_parser("send", help="send every --interval, print a JSON line per reply")
    sd.add_argument("--to", required=True)
    sd.add_argument("--port", type=int, default=PORT)
    sd.add_argument("--interval", type=float, default=0.05)
    sd.add_argument("--duration", type=float, default=60.0)
    args = p.parse_args(argv)
    if args.cmd == "serve":
        serve(args.bind, args.port)
    else:
        send(args.to, args.port, args.interval, args.duration)


if __name__ == "__main__":
    main()
