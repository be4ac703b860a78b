"""VM tests: the router image in qemu (TCG here), the lab's namespaces around it.

Skipped only when not root (namespaces, taps). A missing image is built once
with `router7-image build` (cached after the first build); if that fails, the
tests fail with the command to run.

The tests run in parallel under pytest-xdist (`./scripts/test` passes
`-n $ROUTER7_VM_JOBS`, one per core): every scenario has its own lab prefix, VM
state dir and artefacts dir, so that is safe by construction. Each scenario is a unit of work;
the other test files are one unit each (their tests may share a boot through a
module fixture, as tests/vm/test_driver.py does). Longest first, so that no long
scenario starts last (see `EXPECTED_SECONDS`).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router7.vmtest import image

# Seconds alone under TCG on 2 cores (docs/vm-tests.md, less the LAN client's
# minute of backoff where it applied): only the order of the parallel run. A
# scenario missing here counts as long (new ones often boot several times) and
# starts among the first.
EXPECTED_SECONDS = {
    "update": 880,  # one cold boot, four kexec trials, three resets
    "isp_outage": 480,  # the servers stay away past the delegation's end
    "netboot_install": 350,  # three boots: recovery, disk, recovery
    "failover": 200,
    "lan_services": 215,
    "uplink_down": 210,
    "reboot_keeps_perm": 145,
    "blank_perm": 110,
    "renumber": 100,
    "test_driver": 90,  # one boot for its three tests
    "bad_config": 84,
    "hardening": 84,
    "test_netboot": 80,
    "kernel_features": 74,
    "pd": 69,
}
UNKNOWN_SECONDS = 400


def expected_seconds(item: pytest.Item) -> float:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "scenario" in callspec.params:
        key = Path(callspec.params["scenario"]).stem
    else:
        key = item.path.stem
    return EXPECTED_SECONDS.get(key, UNKNOWN_SECONDS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    vm = [i for i in items if i.get_closest_marker("vm")]
    if not vm:
        return
    # Stable: the tests of one file stay together and in order.
    ranked = sorted(vm, key=lambda i: (-expected_seconds(i), str(i.path)))
    others = [i for i in items if not i.get_closest_marker("vm")]
    items[:] = others + ranked


def work_unit(nodeid: str) -> str:
    """A parametrized test (one scenario) alone, else its whole file."""
    return nodeid if "[" in nodeid else nodeid.split("::")[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """For `-n N` (--dist load): units as `work_unit` says, handed out in order, one
    queued per worker (xdist's loadgroup marks do not survive pytest 9's node ids)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # Keep our longest-first order: loadscope would put the units with most tests first.
    config.option.loadscopereorder = False

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByWorkUnit(config, log)


def vm_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "VM tests need root (network namespaces, tap devices)"
    return None


@pytest.fixture(scope="session")
def router_image() -> Path:
    if reason := vm_unavailable():
        pytest.skip(reason)
    out = image.image_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    # Parallel workers: one builds, the others wait for it and find the image.
    with open(out.parent / ".image-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return image.require()
        except image.ImageMissing:
            pass
        cli = Path(sys.executable).parent / "router7-image"
        proc = subprocess.run([str(cli), "build", "--out", str(out)], check=False)
        if proc.returncode != 0:
            pytest.fail(
                f"no router image and `{image.BUILD_COMMAND}` failed (exit {proc.returncode})"
            )
        return image.require()
