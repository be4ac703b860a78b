#!/usr/bin/env python3
"""How long the router image takes to boot in qemu, next to what the same kernel
needs on its own.

1. power-on → "the LAN host has an IPv6 address from the delegated prefix": the
   image (disk.img through SeaBIOS) as the router of a fresh lab, as in the VM
   scenarios (router7-vmtest's machines);
2. power-on → "/init of a trivial initrd runs" and → "qemu has exited": the image's
   vmlinuz with a busybox initrd that powers off at once, with the same accelerator.

Under TCG (no working KVM) both are slow; their ratio says what the image's own
userspace costs. Prints numbers; asserts nothing. Needs root (namespaces, taps).

    .venv/bin/python bench/boot_time.py [--image-dir build/image] [--runs 1] [--trivial-only]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

MARKER = b"ROUTER7-TRIVIAL-INIT"
INIT = b"#!/bin/busybox sh\n/bin/busybox echo ROUTER7-TRIVIAL-INIT\n/bin/busybox poweroff -f\n"


def _newc(name: str, data: bytes, mode: int, ino: int) -> bytes:
    """One entry of a cpio 'newc' archive (what the kernel unpacks as an initramfs)."""
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
    head = b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0"
    head += b"\0" * (-len(head) % 4)
    return head + data + b"\0" * (-len(data) % 4)


def trivial_initrd(busybox: Path) -> bytes:
    out = io.BytesIO()
    for ino, (name, data, mode) in enumerate(
        (
            ("bin", b"", 0o040755),
            ("dev", b"", 0o040755),
            ("bin/busybox", busybox.read_bytes(), 0o100755),
            ("init", INIT, 0o100755),
            ("TRAILER!!!", b"", 0),
        ),
        start=1,
    ):
        out.write(_newc(name, data, mode, ino))
    return gzip.compress(out.getvalue(), mtime=0)


def accelerator(kernel: Path) -> str:
    try:
        from router7.vmtest.kvm import accelerator as probe
    except ImportError:
        return "tcg"
    return probe(kernel)[0]


def trivial_boot(kernel: Path, initrd: Path, accel: str) -> tuple[float, float]:
    """Seconds from qemu's start to the init's marker on the console, and to qemu's exit."""
    argv = [
        "qemu-system-x86_64", "-accel", accel, "-cpu", "max" if accel == "tcg" else "host",
        "-m", "1024", "-smp", "1", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
        "-kernel", str(kernel), "-initrd", str(initrd),
        "-append", "console=ttyS0,115200 panic=-1 quiet",
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen, marker_at = b"", None
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        if not ready:
            proc.kill()
            raise RuntimeError(f"qemu silent for 120 s; console so far: {seen[-2000:]!r}")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        seen += chunk
        if marker_at is None and MARKER in seen:
            marker_at = time.monotonic() - start
    proc.wait()
    if marker_at is None:
        raise RuntimeError(f"the trivial init never ran; console: {seen[-2000:]!r}")
    return marker_at, time.monotonic() - start


def image_boot(image_dir: Path) -> float:
    """Seconds from the router VM's power-on to the LAN host's address from the prefix."""
    from router7.lab.addresses import ADDR  # noqa: I001 (router7.vmtest comes with the vmdriver branch)
    from router7.vmtest.driver import Driver

    with Driver(image_dir=image_dir, name="bench-boot") as driver:
        router, lan = driver.machines_by_name["router"], driver.machines_by_name["lan"]
        lan.start()
        start = time.monotonic()
        router.start()
        lan.wait_until_succeeds(f"ip -6 addr show to {ADDR.pd_pool} | grep -q inet6")
        return time.monotonic() - start


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:6.1f} s"
    return f"{statistics.median(values):6.1f} s (median of {len(values)}, min {min(values):.1f})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    default_dir = os.environ.get("ROUTER7_IMAGE_DIR", str(REPO / "build/image"))
    p.add_argument("--image-dir", type=Path, default=Path(default_dir))
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--trivial-only", action="store_true", help="only the kernel + trivial initrd")
    args = p.parse_args()
    kernel = args.image_dir / "vmlinuz"
    if not kernel.exists():
        print(f"no image in {args.image_dir}: build it with `router7-image build`", file=sys.stderr)
        return 2
    busybox = Path(shutil.which("busybox") or "/bin/busybox")
    accel = accelerator(kernel)
    print(f"kernel {kernel} ({kernel.stat().st_size / 1e6:.1f} MB), accelerator {accel}")

    with tempfile.TemporaryDirectory() as tmp:
        initrd = Path(tmp) / "trivial.cpio.gz"
        initrd.write_bytes(trivial_initrd(busybox))
        runs = [trivial_boot(kernel, initrd, accel) for _ in range(args.runs)]
    to_init = [r[0] for r in runs]
    print(f"kernel + trivial initrd: /init runs after   {summary(to_init)}")
    print(f"kernel + trivial initrd: qemu exits after   {summary([r[1] for r in runs])}")
    if args.trivial_only:
        return 0
    if os.geteuid() != 0:
        print("image boot: skipped, needs root (lab namespaces and taps)")
        return 0
    image = [image_boot(args.image_dir) for _ in range(args.runs)]
    print(f"image: power-on → LAN host has IPv6 from the delegated prefix  {summary(image)}")
    print(
        f"ratio image / trivial boot to /init: {statistics.median(image) / statistics.median(to_init):.1f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
