"""The ring keeps exactly the last N packets, oldest first, in O(1) per append."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router7.captured.ring import PACKET_OUTGOING, Packet, Ring


def pkt(i: int, size: int = 10) -> Packet:
    return Packet(ts_ns=i, ifname="lan0", data=bytes([i % 256]) * size, orig_len=size)


def test_keeps_exactly_the_last_n():
    ring = Ring(3)
    for i in range(10):
        ring.append(pkt(i))
    assert [p.ts_ns for p in ring] == [7, 8, 9]
    assert len(ring) == 3
    assert ring.capacity == 3


def test_fewer_than_n_are_all_kept():
    ring = Ring(50_000)
    for i in range(5):
        ring.append(pkt(i))
    assert [p.ts_ns for p in ring.snapshot()] == [0, 1, 2, 3, 4]


@given(st.integers(1, 50), st.lists(st.integers(0, 300), max_size=200))
def test_ring_matches_a_list_tail_and_counts_its_bytes(capacity, sizes):
    ring = Ring(capacity)
    packets = [pkt(i, size) for i, size in enumerate(sizes)]
    for p in packets:
        ring.append(p)
    assert ring.snapshot() == packets[-capacity:]
    assert ring.bytes == sum(len(p.data) for p in packets[-capacity:])


def test_snapshot_is_a_copy():
    ring = Ring(2)
    ring.append(pkt(1))
    snap = ring.snapshot()
    ring.append(pkt(2))
    ring.append(pkt(3))
    assert [p.ts_ns for p in snap] == [1]


def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        Ring(0)


def test_outgoing_flag():
    assert pkt(1)._replace(pkttype=PACKET_OUTGOING).outgoing
    assert not pkt(1).outgoing


def test_byte_bound_drops_the_oldest_until_the_data_fits():
    ring = Ring(100, max_bytes=25)
    for i, size in enumerate((10, 10, 10, 4)):
        ring.append(pkt(i, size))
    assert [p.ts_ns for p in ring] == [1, 2, 3] and ring.bytes == 24
    ring.append(pkt(9, 40))  # larger than the bound on its own: kept alone
    assert [p.ts_ns for p in ring] == [9] and ring.bytes == 40


@given(st.integers(1, 20), st.integers(1, 200), st.lists(st.integers(1, 80), max_size=100))
def test_both_bounds_hold_and_bytes_stay_exact(capacity, max_bytes, sizes):
    ring = Ring(capacity, max_bytes)
    for i, size in enumerate(sizes):
        ring.append(pkt(i, size))
        assert len(ring) <= capacity
        assert ring.bytes == sum(len(p.data) for p in ring)
        assert ring.bytes <= max_bytes or len(ring) == 1
        assert list(ring)[-1].ts_ns == i  # the newest is always kept
