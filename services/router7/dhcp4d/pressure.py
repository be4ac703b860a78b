"""Admission of new clients when the pool runs low (issue 16, case 6). Pure; time is passed in.

A flood of random MACs (300 in 55 s) used to take every address for the whole
lease time. While at least ``reserve`` of the pool is free, every client is
welcome; below that, a client the table does not know yet is admitted at most
once per ``interval`` seconds (a token bucket of depth one). Known clients
(renewals, returning devices, static leases) are never held back, and a shed
client simply retransmits its DISCOVER a few seconds later.

The bridge port a frame came in on is not visible on lan0's socket, so the
limit is per router, not per port.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NewClientGate:
    interval: float = 10.0  # seconds between new clients while the pool is low
    reserve: float = 0.25  # the part of the pool kept for the rate-limited phase
    _next: float = float("-inf")

    def low(self, free: int, size: int) -> bool:
        return free < max(1.0, self.reserve * size)

    def admit(self, now: float, free: int, size: int) -> bool:
        """May a new client take an address now?"""
        if not self.low(free, size):
            return True
        if now >= self._next:
            self._next = now + self.interval
            return True
        return False
