"""router7-image build: the artefacts, and two builds from the same inputs are identical.

Needs root (mmdebstrap, chroot) and the build tools of scripts/setup. Uses the
checkout's cache (build/cache/image): the first build here may download Debian
(~1 min); the second one (--rebuild) redoes everything but that download and
must give byte-identical initrd and disk.img.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from router7.image import cpio, tools
from router7.image.build import ARTEFACTS, build
from router7.image.progress import Progress

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "cache" / "image"


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "router7-image build needs root"
    try:
        tools.require(tools.BUILD_TOOLS | tools.DISK_TOOLS)
        tools.busybox_static()
    except tools.MissingTool as e:
        return str(e)
    return None


pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable())),
]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("image")
    log = io.StringIO()
    first = build(ROOT, tmp / "a", CACHE, progress=Progress(log))
    second = build(ROOT, tmp / "b", CACHE, rebuild=True, progress=Progress(log))
    return tmp / "a", tmp / "b", first, second, log.getvalue()


def test_two_builds_are_byte_identical(two_builds):
    a, b, first, second, _ = two_builds
    for name in ("initrd", "disk.img", "vmlinuz", "cmdline", "netboot.ipxe", "manifest.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert first == second


def test_artefacts_and_manifest(two_builds):
    a, _, manifest, _, log = two_builds
    assert sorted(p.name for p in a.iterdir()) == sorted(ARTEFACTS)
    for name, info in manifest["files"].items():
        data = (a / name).read_bytes()
        assert info == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}, name
    assert "console=ttyS0,115200" in (a / "cmdline").read_text()
    assert (a / "netboot.ipxe").read_text().startswith("#!ipxe\n")
    assert {"systemd", "python3", "nftables", "iproute2", "kexec-tools"} <= set(
        manifest["debian_packages"]
    )
    assert "perl" not in manifest["debian_packages"]
    assert {"twisted", "pyroute2", "scapy", "dnslib", "router7"} <= set(manifest["python_packages"])
    assert "pytest" not in manifest["python_packages"]  # test-only pins stay out
    assert files_mb(manifest, "initrd") < 200
    assert "initrd " in log and "top packages" in log


def files_mb(manifest: dict, name: str) -> float:
    return manifest["files"][name]["bytes"] / 1e6


def test_initrd_holds_init_busybox_modules_and_system(two_builds):
    a, _, manifest, _, _ = two_builds
    raw = subprocess.run(["zstd", "-dc", str(a / "initrd")], capture_output=True, check=True).stdout
    entries = {name: data for name, _, data in cpio.read(raw)}
    assert entries["init"].startswith(b"#!/bin/sh")
    assert entries["bin/busybox"][:4] == b"\x7fELF"
    listed = entries["lib/modules/initrd.list"].decode().split()
    assert listed == manifest["kernel"]["initrd_modules"]
    assert all(f"lib/modules/{m}" in entries for m in listed)
    assert any(m.endswith("/squashfs.ko") for m in listed)
    assert entries["system.squashfs"][:4] == b"hsqs"


def test_unchanged_inputs_are_served_from_the_cache(two_builds, tmp_path):
    a, _, _, _, _ = two_builds
    log = io.StringIO()
    build(ROOT, tmp_path / "c", CACHE, progress=Progress(log))
    assert "cached image" in log.getvalue() and "mmdebstrap" not in log.getvalue()
    assert (tmp_path / "c" / "initrd").read_bytes() == (a / "initrd").read_bytes()


def test_units_are_installed_and_enabled(two_builds):
    _, _, manifest, _, _ = two_builds
    units = set(manifest["units"])
    for svc in ("netconfigd", "dhcp4", "dhcp6", "dhcp4d", "radvd", "dnsd", "captured",
                "diagd", "backupd", "updated", "statusd"):  # fmt: skip
        assert f"router7-{svc}.service" in units
    assert "router7.target" in units
    assert "router7-trial-guard.service" in units  # the update trial's sh backstop
    # Updates: a version string differing between builds of different inputs.
    assert (
        manifest["version"].startswith("0.") and manifest["inputs_key"][:12] in manifest["version"]
    )
    json.dumps(manifest)  # plain JSON all the way down
