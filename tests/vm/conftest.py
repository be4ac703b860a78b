"""VM tests: the router image in qemu (TCG here), the lab's namespaces around it.

Skipped only when not root (namespaces, taps). A missing image is built once
with `router7-image build` (cached after the first build); if that fails, the
tests fail with the command to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from router7.vmtest import image


def vm_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "VM tests need root (network namespaces, tap devices)"
    return None


@pytest.fixture(scope="session")
def router_image() -> Path:
    if reason := vm_unavailable():
        pytest.skip(reason)
    try:
        return image.require()
    except image.ImageMissing:
        pass
    cli = Path(sys.executable).parent / "router7-image"
    proc = subprocess.run([str(cli), "build", "--out", str(image.image_dir())], check=False)
    if proc.returncode != 0:
        pytest.fail(f"no router image and `{image.BUILD_COMMAND}` failed (exit {proc.returncode})")
    return image.require()
