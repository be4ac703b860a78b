#!/usr/bin/env python3
"""The long fuzz run (not CI): every target of targets.py, printing inputs per parser.

With atheris installed (``pip install atheris``: the ``fuzz`` extra; a wheel exists
for CPython 3.11 on x86_64) each target runs coverage-guided in its own process
(libFuzzer: ``-runs=N``, seeds from targets.seeds, a corpus under
``$ROUTER7_FUZZ_CORPUS`` or a temp dir); without it, a plain mutation loop over the
seeds and random bytes. A crash is written to crashes/<target>/ (the regression
cases test_fuzz.py replays) and the run goes on with the next target.

    .venv/bin/python tests/fuzz/run.py [--inputs 1000000] [--seconds 600] [TARGET ...]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

CRASHES = Path(__file__).parent / "crashes"


def keep_crash(name: str, data: bytes) -> Path:
    path = CRASHES / name / hashlib.sha1(data).hexdigest()[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    if rng.random() < 0.2:
        return rng.randbytes(rng.randrange(0, 600))
    data = bytearray(rng.choice(corpus))
    for _ in range(rng.randrange(1, 8)):
        pos = rng.randrange(len(data) + 1)
        op = rng.randrange(4)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = rng.randbytes(rng.randrange(1, 8))
        elif op == 2:
            del data[pos : pos + rng.randrange(1, 8)]
        else:
            del data[pos:]
    return bytes(data)


def plain(name: str, inputs: int, seconds: float) -> tuple[int, float, int]:
    """(inputs run, seconds, crashes) of a mutation loop without coverage feedback."""
    from tests.fuzz.targets import TARGETS, seeds

    target, corpus, rng = TARGETS[name], seeds(name), random.Random(name)
    start, n, crashes = time.monotonic(), 0, 0
    while n < inputs and time.monotonic() - start < seconds:
        data = mutate(rng, corpus)
        n += 1
        try:
            target(data)
        except Exception:
            crashes += 1
            path = keep_crash(name, data)
            print(f"  CRASH kept as {path}:\n{traceback.format_exc(limit=3)}", flush=True)
    return n, time.monotonic() - start, crashes


def one_atheris(name: str, inputs: int, seconds: int, corpus: Path) -> None:
    """Inside the child: libFuzzer on one target (exits when done)."""
    import atheris

    # Instrument router7 only: instrument_all() takes minutes on scapy and Twisted.
    with atheris.instrument_imports(include=["router7"]):
        from tests.fuzz.targets import TARGETS, seeds

    target = TARGETS[name]
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds(name)):
        (corpus / f"seed{i}").write_bytes(data)
    artifacts = CRASHES / name
    artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], f"-runs={inputs}", f"-max_total_time={seconds}", "-max_len=1500",
            f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(corpus)]  # fmt: skip
    atheris.Setup(argv, target)
    atheris.Fuzz()


def run_atheris(name: str, inputs: int, seconds: int, corpus: Path) -> tuple[int, float, int]:
    start = time.monotonic()
    before = set((CRASHES / name).glob("*")) if (CRASHES / name).exists() else set()
    p = subprocess.run(
        [sys.executable, __file__, "--one", name, "--inputs", str(inputs),
         "--seconds", str(seconds), "--corpus", str(corpus)],
        capture_output=True, text=True,
    )  # fmt: skip
    out = p.stdout + p.stderr
    runs = re.findall(r"stat::number_of_executed_units:\s+(\d+)", out)
    done = re.findall(r"Done (\d+) runs", out)
    n = int(runs[-1]) if runs else int(done[-1]) if done else 0
    after = set((CRASHES / name).glob("*")) if (CRASHES / name).exists() else set()
    new = sorted(after - before)
    for path in new:
        print(f"  CRASH kept as {path}", flush=True)
    if p.returncode not in (0,) and not new:
        print(out[-1500:], flush=True)
    return n, time.monotonic() - start, len(new)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", help="default: all of targets.TARGETS")
    ap.add_argument("--inputs", type=int, default=1_000_000, help="per target")
    ap.add_argument("--seconds", type=int, default=600, help="at most, per target")
    ap.add_argument("--plain", action="store_true", help="no atheris even if installed")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.disable(logging.CRITICAL)  # the parsers log what they drop
    if args.one:
        one_atheris(args.one, args.inputs, args.seconds, args.corpus)
        return 0
    from tests.fuzz.targets import TARGETS

    try:
        import atheris  # noqa: F401

        coverage = not args.plain
    except ImportError:
        coverage = False
    names = args.targets or list(TARGETS)
    root = Path(os.environ.get("ROUTER7_FUZZ_CORPUS") or tempfile.mkdtemp(prefix="router7-fuzz-"))
    print(f"fuzzing {len(names)} targets, {'atheris' if coverage else 'plain mutation'}, "
          f"up to {args.inputs} inputs or {args.seconds} s each", flush=True)  # fmt: skip
    total_crashes = 0
    for name in names:
        if coverage:
            n, secs, crashes = run_atheris(name, args.inputs, args.seconds, root / name)
        else:
            n, secs, crashes = plain(name, args.inputs, args.seconds)
        total_crashes += crashes
        print(f"{name:22} {n:>9} inputs  {secs:7.1f} s  {n / max(secs, 1e-9):8.0f}/s  "
              f"crashes {crashes}", flush=True)  # fmt: skip
    return 1 if total_crashes else 0


if __name__ == "__main__":
    sys.exit(main())
