"""Lost connectivity, measured as ping(8) sees it: one echo request every ``interval``
seconds, and the outage is the longest run of unanswered ones."""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass

_SEQ = re.compile(rb"icmp_seq=(\d+)")
_REPLY = re.compile(rb"bytes from .*icmp_seq=(\d+)")


@dataclass(frozen=True)
class Outage:
    sent: int
    answered: int
    longest_gap: int  # consecutive unanswered requests
    interval: float

    @property
    def seconds(self) -> float:
        return self.longest_gap * self.interval

    def __str__(self) -> str:
        return (
            f"{self.seconds:.1f} s without replies ({self.longest_gap} requests in a row), "
            f"{self.sent - self.answered} of {self.sent} lost"
        )


def gaps(answered: set[int], sent: int) -> int:
    """Longest run of sequence numbers 1..sent missing from ``answered``."""
    longest = run = 0
    for seq in range(1, sent + 1):
        run = 0 if seq in answered else run + 1
        longest = max(longest, run)
    return longest


class Pinger:
    """ping(8) in the background; ``stop()`` returns the Outage. ``argv_prefix`` runs it
    elsewhere (e.g. ``["ip", "netns", "exec", "lan1"]``)."""

    def __init__(self, host: str, interval: float = 0.1, argv_prefix: list[str] | None = None):
        self.interval = interval
        argv = [*(argv_prefix or []), "ping", "-n", "-O", "-i", f"{interval:g}", "-W", "1", host]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.answered: set[int] = set()
        self.highest = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            m = _SEQ.search(line)
            if m:
                seq = int(m.group(1))
                self.highest = max(self.highest, seq)
                if _REPLY.search(line):
                    self.answered.add(seq)

    def stop(self) -> Outage:
        self.proc.terminate()
        self.proc.wait()
        self._reader.join(timeout=5)
        sent = self.highest
        return Outage(sent, len(self.answered), gaps(self.answered, sent), self.interval)
