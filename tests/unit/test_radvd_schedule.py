"""RFC 4861 §6.2.4/§6.2.6 timing of router advertisements, driven by task.Clock."""

import ipaddress
import random

from twisted.internet import task

from router7.radvd.schedule import (
    MAX_INITIAL_RTR_ADVERT_INTERVAL,
    MAX_PENDING_UNICAST,
    MAX_RA_DELAY_TIME,
    MIN_DELAY_BETWEEN_RAS,
    Scheduler,
)

HOST = ipaddress.IPv6Address("fe80::1")
UNSPECIFIED = ipaddress.IPv6Address("::")


class Recorder:
    def __init__(self, clock):
        self.clock = clock
        self.sent = []

    def __call__(self, destination):
        self.sent.append((self.clock.seconds(), destination))

    def multicast(self):
        return [t for t, d in self.sent if d is None]

    def unicast(self, host=HOST):
        return [t for t, d in self.sent if d == host]


def make(min_interval=200.0, max_interval=600.0, seed=1):
    clock = task.Clock()
    rec = Recorder(clock)
    sched = Scheduler(clock, rec, min_interval, max_interval, random.Random(seed))
    return clock, rec, sched


def start(clock, sched):
    sched.start()
    clock.advance(0)  # the first RA goes out on the next reactor turn


def run(clock, seconds):
    """Advance ``seconds``, stopping exactly at every scheduled call (Clock fires late otherwise)."""
    end = clock.seconds() + seconds
    while True:
        due = [c.getTime() for c in clock.getDelayedCalls() if c.getTime() <= end]
        if not due:
            break
        clock.advance(max(0.0, min(due) - clock.seconds()))
    clock.advance(end - clock.seconds())


def gaps(times):
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_first_ra_at_once_then_the_first_three_at_most_16s_apart():
    clock, rec, sched = make()
    start(clock, sched)
    assert rec.multicast() == [0.0]
    run(clock, MAX_INITIAL_RTR_ADVERT_INTERVAL)
    run(clock, MAX_INITIAL_RTR_ADVERT_INTERVAL)
    times = rec.multicast()
    assert len(times) == 3
    assert all(g <= MAX_INITIAL_RTR_ADVERT_INTERVAL for g in gaps(times))


def test_later_intervals_are_jittered_within_min_and_max():
    clock, rec, sched = make()
    start(clock, sched)
    for _ in range(200):
        run(clock, 600)
    later = gaps(rec.multicast())[2:]
    assert len(later) > 150
    assert all(200.0 <= g <= 600.0 for g in later)
    assert len({round(g, 3) for g in later}) > 100  # randomised, not a fixed period
    assert max(later) - min(later) > 300  # spread over the whole range


def test_same_seed_same_schedule():
    def times(seed):
        clock, rec, sched = make(seed=seed)
        start(clock, sched)
        for _ in range(20):
            run(clock, 600)
        return rec.multicast()

    assert times(7) == times(7)
    assert times(7) != times(8)


def test_kick_sends_at_once_but_never_within_3s_of_the_last_multicast():
    clock, rec, sched = make()
    start(clock, sched)
    run(clock, 1.0)
    sched.kick()
    run(clock, 0)
    assert rec.multicast() == [0.0]  # rate-limited: not yet
    run(clock, MIN_DELAY_BETWEEN_RAS - 1.0)
    assert rec.multicast() == [0.0, MIN_DELAY_BETWEEN_RAS]
    run(clock, 100)
    n, last, t = len(rec.multicast()), rec.multicast()[-1], clock.seconds()
    sched.kick()
    run(clock, MIN_DELAY_BETWEEN_RAS)
    assert rec.multicast()[n:] == [max(t, last + MIN_DELAY_BETWEEN_RAS)]


def test_kick_restarts_the_fast_initial_advertisements():
    clock, rec, sched = make()
    start(clock, sched)
    for _ in range(10):
        run(clock, 600)
    sched.kick()
    before = len(rec.multicast())
    run(clock, MIN_DELAY_BETWEEN_RAS)
    run(clock, MAX_INITIAL_RTR_ADVERT_INTERVAL)
    run(clock, MAX_INITIAL_RTR_ADVERT_INTERVAL)
    assert len(rec.multicast()) - before >= 3


def test_solicited_unicast_answer_is_delayed_up_to_500ms():
    clock, rec, sched = make()
    start(clock, sched)
    run(clock, 50)
    assert sched.solicited(HOST)
    run(clock, 1.0)
    (t,) = rec.unicast()
    assert 50 <= t <= 50 + MAX_RA_DELAY_TIME + 0.01


def test_solicitations_from_one_host_are_rate_limited_and_coalesced():
    clock, rec, sched = make()
    start(clock, sched)
    run(clock, 50)
    for _ in range(5):  # a burst: one answer
        assert sched.solicited(HOST)
    run(clock, 1.0)
    assert len(rec.unicast()) == 1
    first = rec.unicast()[0]
    sched.solicited(HOST)  # again within 3 s: answered, but not before first + 3 s
    run(clock, 5.0)
    second = rec.unicast()[1]
    assert second - first >= MIN_DELAY_BETWEEN_RAS
    assert second - first <= MIN_DELAY_BETWEEN_RAS + MAX_RA_DELAY_TIME
    other = ipaddress.IPv6Address("fe80::2")
    sched.solicited(other)
    run(clock, 1.0)
    assert len(rec.unicast(other)) == 1


def test_flood_of_solicitations_is_bounded():
    clock, rec, sched = make()
    start(clock, sched)
    accepted = [sched.solicited(ipaddress.IPv6Address(f"fe80::{i + 1:x}")) for i in range(100)]
    assert accepted.count(True) == MAX_PENDING_UNICAST
    run(clock, 1.0)
    assert len([d for _, d in rec.sent if d is not None]) == MAX_PENDING_UNICAST


def test_solicitation_from_unspecified_address_gets_a_rate_limited_multicast():
    clock, rec, sched = make()
    start(clock, sched)  # multicast at 0
    run(clock, 1.0)
    sched.solicited(UNSPECIFIED)
    run(clock, 2.0)
    assert rec.multicast() == [0.0]  # still within MIN_DELAY_BETWEEN_RAS of the last one
    run(clock, 2.0)
    times = rec.multicast()
    assert len(times) == 2
    assert MIN_DELAY_BETWEEN_RAS <= times[1] <= MIN_DELAY_BETWEEN_RAS + MAX_RA_DELAY_TIME
    assert all(d is None for _, d in rec.sent)


def test_stop_cancels_everything():
    clock, rec, sched = make()
    start(clock, sched)
    sched.solicited(HOST)
    sched.stop()
    run(clock, 10_000)
    assert rec.sent == [(0.0, None)]
    assert not sched.solicited(HOST)
    sched.kick()
    run(clock, 10)
    assert rec.sent == [(0.0, None)]
