"""Lost connectivity, measured as ping(8) sees it: one echo request every ``interval``
seconds, each line stamped by ``ping -D``; the outage is the longest time between two
replies.

Time, not counted requests: while the router is away the LAN host's ARP for it fails,
and ping's sends then wait on the neighbour table. A measured kexec outage of 63 s was
only 264 requests long (26 s at 100 ms); the timestamps tell the truth.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
from dataclasses import dataclass

_LINE = re.compile(r"^\[(\d+\.\d+)\] (.*)$")
_SEQ = re.compile(r"icmp_seq=(\d+)")


@dataclass(frozen=True)
class Outage:
    sent: int
    answered: int
    seconds: float  # longest time between two replies, less one interval

    def __str__(self) -> str:
        return (
            f"{self.seconds:.1f} s without replies, {self.sent - self.answered} of {self.sent} lost"
        )


def ping_argv(host: str, interval: float = 0.1) -> list[str]:
    """ping(8) for ``measure``: timestamps (-D), a line for every unanswered request (-O)."""
    return ["ping", "-D", "-n", "-O", "-i", f"{interval:g}", "-W", "1", host]


def measure(log: str, interval: float = 0.1) -> Outage:
    """The Outage in the output of ``ping_argv``'s ping."""
    replies: list[float] = []
    highest = 0
    for line in log.splitlines():
        m = _LINE.match(line)
        seq = _SEQ.search(line)
        if not m or not seq:
            continue
        highest = max(highest, int(seq.group(1)))
        if "bytes from" in m.group(2):
            replies.append(float(m.group(1)))
    longest = max((b - a for a, b in itertools.pairwise(replies)), default=0.0)
    return Outage(highest, len(replies), max(0.0, longest - interval))


class Pinger:
    """ping(8) in the background; ``stop()`` returns the Outage. ``argv_prefix`` runs it
    elsewhere (e.g. ``["ip", "netns", "exec", "lan1"]``)."""

    def __init__(self, host: str, interval: float = 0.1, argv_prefix: list[str] | None = None):
        self.interval = interval
        argv = [*(argv_prefix or []), *ping_argv(host, interval)]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> Outage:
        self.proc.terminate()
        self.proc.wait()
        self._reader.join(timeout=5)
        return measure("\n".join(self.lines), self.interval)
