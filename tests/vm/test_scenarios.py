"""One test per vm-tests/*.py scenario, each against a fresh VM and lab.

$ROUTER7_VM_SCENARIOS (names separated by spaces) narrows the set; unset or
"all" runs every scenario. Under TCG each boot costs minutes, so ./scripts/test
picks a core set by default (see there).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from router7.vmtest.driver import Driver
from router7.vmtest.image import checkout_root


def selected(paths: list[Path], wanted: str) -> list[Path]:
    if wanted.strip() in ("", "all"):
        return paths
    names = set(wanted.split())
    unknown = names - {p.stem for p in paths}
    if unknown:
        raise ValueError(f"ROUTER7_VM_SCENARIOS names no scenario: {', '.join(sorted(unknown))}")
    return [p for p in paths if p.stem in names]


SCENARIOS = selected(
    # A leading "_" keeps a scenario out (unfinished), as in vm-tests/default.nix.
    sorted(p for p in (checkout_root() / "vm-tests").glob("*.py") if not p.name.startswith("_")),
    os.environ.get("ROUTER7_VM_SCENARIOS", ""),
)


@pytest.mark.vm
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario(scenario: Path, router_image: Path) -> None:
    start = time.monotonic()
    try:
        with Driver(scenario, image_dir=router_image, echo=False) as d:
            d.run()
    finally:
        print(f"\nvm scenario {scenario.stem}: {time.monotonic() - start:.1f}s")
