#!/usr/bin/env python3
"""How long the router image takes to boot in qemu, and what that means (root).

Prints, for the same kernel under the same accelerator (TCG here):
  1. a cold boot of the image's kernel with a trivial initrd (busybox, prints and
     powers off): what the emulator alone costs;
  2. the image from disk.img: power-on to the test shell answering, to
     router7-netconfigd active, and to "the LAN host has an IPv6 address from the
     delegated prefix" (the whole chain: WAN lease, DHCPv6-PD, RA on the LAN).
The ratio 2/1 is the number to watch. Asserts nothing.

    .venv/bin/python bench/vm_boot.py [--image-dir build/image] [--timeout 900]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from router7.image import cpio  # noqa: E402
from router7.vmtest import image, kvm, qemu  # noqa: E402
from router7.vmtest.driver import Driver  # noqa: E402

INIT = b"#!/bin/busybox sh\n/bin/busybox echo TRIVIAL-INIT-UP\n/bin/busybox poweroff -f\n"


def trivial_initrd(path: Path) -> None:
    busybox = shutil.which("busybox")
    if not busybox:
        raise SystemExit("bench: needs busybox (apt install busybox-static)")
    buf = io.BytesIO()
    entries = [
        cpio.Entry.directory("bin"),
        cpio.Entry.file("bin/busybox", Path(busybox).read_bytes(), perm=0o755),
        cpio.Entry.file("init", INIT, perm=0o755),
        cpio.Entry.directory("dev"),
        cpio.Entry.chardev("dev/console", 5, 1),
    ]
    cpio.write(buf, entries, mtime=0)
    path.write_bytes(gzip.compress(buf.getvalue(), 1))


def trivial_boot(kernel: Path, accel: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        initrd = Path(tmp) / "initrd"
        trivial_initrd(initrd)
        argv = [
            qemu.QEMU, "-accel", qemu.accel_option(accel), "-cpu", "host" if accel == "kvm" else "max",
            "-m", "1024", "-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio",
            "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0,115200 panic=-1 quiet",
        ]  # fmt: skip
        start = time.monotonic()
        out = subprocess.run(argv, capture_output=True, timeout=600, check=False).stdout
        took = time.monotonic() - start
        if b"TRIVIAL-INIT-UP" not in out:
            print(out.decode(errors="replace")[-2000:])
            raise SystemExit("bench: the trivial initrd did not come up")
        return took


SCENARIO = """
t0 = time.monotonic()
start_all()
router.connect()
marks["test shell"] = time.monotonic() - t0
router.wait_for_unit("router7-netconfigd.service", timeout=TIMEOUT)
marks["router7-netconfigd active"] = time.monotonic() - t0
lan.wait_until_succeeds(
    "ip -6 addr show dev eth0 scope global | grep -q 'inet6 2001:db8:'", timeout=TIMEOUT
)
marks["LAN host has IPv6 from the delegated prefix"] = time.monotonic() - t0
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-dir", type=Path, default=None)
    p.add_argument("--timeout", type=int, default=900)
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root (namespaces, taps)")
    img = image.require(args.image_dir)
    accel, why = kvm.accelerator(img / "vmlinuz")
    print(f"accelerator: {accel} ({why})")
    print(f"initrd: {(img / 'initrd').stat().st_size / 1e6:.1f} MB")
    trivial = trivial_boot(img / "vmlinuz", accel)
    print(f"{'kernel + trivial initrd, power-on to power-off':72} {trivial:7.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "vm_boot_bench.py"
        script.write_text(SCENARIO)
        marks: dict[str, float] = {}
        with Driver(script, image_dir=img, echo=False) as d:
            exec(
                SCENARIO,
                {**d.test_symbols(), "marks": marks, "time": time, "TIMEOUT": args.timeout},
            )
    for what, secs in marks.items():
        print(
            f"{'image (disk.img): power-on to ' + what:72} {secs:7.1f} s  ({secs / trivial:.1f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
