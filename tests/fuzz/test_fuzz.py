"""The short fuzz run in CI (seconds): every parser in targets.py with hypothesis, plus
a replay of every crash the long run (run.py) ever kept under crashes/<target>/."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import JSON_KEYS, JSON_TARGETS, TARGETS, seeds

CRASHES = Path(__file__).parent / "crashes"
EXAMPLES = 150  # per target: the whole module stays within a few seconds per target


@pytest.fixture(autouse=True)
def quiet():
    """The parsers log what they drop; thousands of lines help nobody here."""
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@st.composite
def mutated(draw, corpus: list[bytes]) -> bytes:
    """A seed with a few bytes flipped, inserted or cut: gets past the first checks."""
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "insert", "cut", "truncate"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "cut" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=20,
)


def inputs(name: str):
    corpus = seeds(name)
    raw = st.binary(max_size=1500) | mutated(corpus)
    if name in JSON_TARGETS:
        as_json = json_values.map(lambda v: json.dumps(v).encode())
        return raw | as_json | as_json
    return raw | mutated(corpus) | mutated(corpus)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_survives_fuzzed_input(name):
    target = TARGETS[name]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(inputs(name))
    def run(data):
        target(data)

    run()


def crash_files():
    return sorted(p for p in CRASHES.glob("*/*") if p.is_file() and p.name != "README")


def test_kept_crashes_stay_fixed():
    # One test over every kept input (none yet is a pass, not a skip): each target
    # must take its crashes without raising again.
    for path in crash_files():
        TARGETS[path.parent.name](path.read_bytes())


def test_every_target_has_seeds_that_parse():
    for name, target in TARGETS.items():
        for data in seeds(name):
            target(data)
