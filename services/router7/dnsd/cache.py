"""A bounded answer cache that honours TTLs, with negative caching (RFC 2308).

Pure: time comes from an injected clock (anything with ``seconds()``, e.g.
Twisted's reactor or ``task.Clock``). Entries are keyed by ``Query.key``; the
least recently used entry goes first when the cache is full: more than
``max_entries`` answers, or more than ``max_bytes`` of them in wire form (a few
large answers, e.g. TXT records near the 4 KB EDNS limit, must not take 40 MB).
Answers stay in wire form (see wire.parse_answer): serving one rewrites TTLs and
the header.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

from router7.dnsd.wire import RCODE_NXDOMAIN, Answer

MAX_TTL = 86400  # one day, like Unbound's cache-max-ttl
MAX_NEGATIVE_TTL = 3600  # RFC 2308 section 5 suggests 1-3 hours at most
# Wire bytes of all cached answers. Measured (bench/memory.py): a full cache of 10 000
# typical answers adds about 19 MiB to dnsd's RSS, most of it Python's per-entry
# overhead; this bound keeps large answers from multiplying that.
MAX_BYTES = 4 << 20
_TTL = struct.Struct("!I")


@dataclass(eq=False)
class Entry:
    """One answer with the TTLs it arrived with (negative TTL already applied to the SOA)."""

    answer: Answer
    ttls: tuple[int, ...]
    stored: float
    expires: float
    negative: bool
    _memo_age: int = -1
    _memo: bytes = b""

    def render(self, now: float) -> bytes:
        """The answer (ID 0, no OPT) with TTLs counted down by the time spent in the cache.

        Reused while the age in whole seconds is unchanged: a hot name is rewritten
        at most once a second.
        """
        age = max(0, int(now - self.stored))
        if age != self._memo_age:
            out = bytearray(self.answer.data)
            for offset, ttl in zip(self.answer.ttl_offsets, self.ttls, strict=True):
                _TTL.pack_into(out, offset, max(0, ttl - age))
            self._memo, self._memo_age = bytes(out), age
        return self._memo


def cache_ttl(answer: Answer) -> tuple[int, bool]:
    """(seconds the answer may be reused, whether it is negative); 0 = do not cache."""
    rcode = answer.rcode
    if answer.tc or rcode not in (0, RCODE_NXDOMAIN):
        return 0, False
    if rcode == 0 and answer.ancount:
        return min(MAX_TTL, *answer.ttls), False
    # NXDOMAIN or NODATA: cacheable only with the zone's SOA (RFC 2308 section 5),
    # for the lower of the SOA's TTL and its minimum field.
    if answer.soa is None:
        return 0, True
    index, minimum = answer.soa
    return min(MAX_NEGATIVE_TTL, answer.ttls[index], minimum), True


def make_entry(answer: Answer, now: float) -> Entry:
    ttl, negative = cache_ttl(answer)
    ttls = list(answer.ttls)
    if negative and answer.soa is not None:
        ttls[answer.soa[0]] = ttl  # RFC 2308 section 3: the SOA carries the negative TTL
    return Entry(answer, tuple(ttls), now, now + ttl, negative)


class Cache:
    def __init__(self, clock, max_entries: int = 10000, max_bytes: int = MAX_BYTES):
        self.clock = clock
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.bytes = 0  # wire bytes of the cached answers
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock.seconds() >= entry.expires:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: Entry) -> bool:
        """Store ``entry`` if it may be reused at all; returns whether it was stored."""
        if entry.expires <= entry.stored or len(entry.answer.data) > self.max_bytes:
            return False
        if key in self._entries:
            self._remove(key)
        self._entries[key] = entry
        self.bytes += len(entry.answer.data)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self.bytes -= len(old.answer.data)
            self.evictions += 1
        return True

    def _remove(self, key: tuple) -> None:
        self.bytes -= len(self._entries.pop(key).answer.data)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
