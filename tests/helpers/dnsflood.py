"""A flood of distinct DNS queries from a LAN host, and the figures of the server under it.

Shared by the hostile-LAN integration test (which asserts bounds) and
bench/dnsd_flood.py (which prints the figures). The sender runs inside a
namespace as its own process: ``python -c FLOOD server count rate suffix``. It
never reads the answers (a flooder does not care), so the figures are the
server's alone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

FLOOD = r"""
import os, socket, struct, sys, time
server, count, rate, suffix = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
tag = os.urandom(3).hex()
start = time.monotonic()
for i in range(count):
    name = f"q{i}-{tag}.{suffix}".encode()
    question = b"".join(bytes([len(p)]) + p for p in name.split(b".")) + b"\0" + b"\0\1\0\1"
    s.sendto(struct.pack("!HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + question, (server, 53))
    ahead = start + (i + 1) / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print("sent", count, round(time.monotonic() - start, 2), flush=True)
"""


def descriptors(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Figures:
    sent: int = 0
    max_descriptors: int = 0
    rss_before: float = 0.0
    max_rss: float = 0.0
    rss_after: float = 0.0
    answer_seconds: list[float] = field(default_factory=list)  # per probe; inf = no answer
    probes_answered: int = 0

    def summary(self) -> str:
        answered = [s for s in self.answer_seconds if s != float("inf")]
        worst = f"{max(answered) * 1000:.0f} ms" if answered else "-"
        return (
            f"sent {self.sent}; descriptors max {self.max_descriptors}; "
            f"RSS {self.rss_before:.0f} -> max {self.max_rss:.0f} -> after {self.rss_after:.0f} MiB; "
            f"probes answered {self.probes_answered}/{len(self.answer_seconds)}, worst {worst}"
        )


def flood(ns: str, server: str, pid: int, count: int, rate: float, suffix: str, probe) -> Figures:
    """Send ``count`` distinct queries under ``suffix`` at ``rate``/s from ``ns`` while
    sampling ``pid``'s descriptors and RSS; ``probe()`` (a question that must still be
    answered: a cached or local name) returns whether it was answered, and is timed."""
    fig = Figures(rss_before=rss_mib(pid))
    sender = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            "-c",
            FLOOD,
            server,
            str(count),
            str(rate),
            suffix,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                fig.max_descriptors = max(fig.max_descriptors, descriptors(pid))
                fig.max_rss = max(fig.max_rss, rss_mib(pid))
            except OSError:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        while sender.poll() is None:
            t = time.monotonic()
            ok = probe()
            fig.answer_seconds.append(time.monotonic() - t if ok else float("inf"))
            fig.probes_answered += bool(ok)
            time.sleep(0.2)
        out = sender.stdout.read()
        fig.sent = int(out.split()[1]) if out.startswith("sent") else 0
        fig.rss_after = rss_mib(pid)
    finally:
        if sender.poll() is None:
            sender.kill()
        done.set()
        sampler.join(5)
    return fig
