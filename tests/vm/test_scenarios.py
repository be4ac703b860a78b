"""One test per vm-tests/*.py scenario, each against a fresh VM and lab."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router7.vmtest.driver import Driver
from router7.vmtest.image import checkout_root

SCENARIOS = sorted((checkout_root() / "vm-tests").glob("*.py"))


@pytest.mark.vm
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_scenario(scenario: Path, router_image: Path) -> None:
    start = time.monotonic()
    try:
        with Driver(scenario, image_dir=router_image, echo=False) as d:
            d.run()
    finally:
        print(f"\nvm scenario {scenario.stem}: {time.monotonic() - start:.1f}s")
