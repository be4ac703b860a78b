"""router7-vmtest: run a vm-tests/ scenario against the router image in qemu."""

from __future__ import annotations

import argparse
import code
import sys
import time
from pathlib import Path

from router7.lab.netns import LabError
from router7.vmtest import image, kvm
from router7.vmtest.driver import Driver
from router7.vmtest.machine import MachineError, RequestedAssertionFailed
from router7.vmtest.qemu import BOOT_MODES

EPILOG = """\
examples:
  router7-vmtest vm-tests/pd.py
  router7-vmtest --keep vm-tests/pd.py          # leave the VM and the lab up afterwards
  router7-vmtest --interactive vm-tests/pd.py   # Python prompt; test_script() runs the file
  router7-vmtest --boot netboot vm-tests/boot_netboot.py
logs: test-artifacts/<scenario>/ (driver.log, <machine>.log, router-console.log, lab-logs/)
image: $ROUTER7_IMAGE_DIR or build/image (router7-image build)
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="router7-vmtest",
        description="Run a NixOS-style VM test script with the router image in qemu "
        "and the lab's namespaces as the other nodes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", type=Path, help="a vm-tests/*.py file")
    p.add_argument("--keep", action="store_true", help="leave the VM and the lab running")
    p.add_argument(
        "--interactive", "-I", action="store_true", help="a Python prompt with the machines"
    )
    p.add_argument(
        "--boot",
        choices=BOOT_MODES,
        help="boot path (default: the scenario's `# router7-vmtest: boot=` line, else disk)",
    )
    p.add_argument(
        "--image-dir", type=Path, default=None, help="default: $ROUTER7_IMAGE_DIR or build/image"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="artefacts dir (default: test-artifacts/<scenario>)"
    )
    p.add_argument("--prefix", default=None, help="lab prefix (default: unique per run)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.scenario.is_file():
        print(f"router7-vmtest: no scenario file {args.scenario}", file=sys.stderr)
        return 2
    try:
        d = Driver(
            args.scenario, out_dir=args.out, image_dir=args.image_dir, boot=args.boot,
            keep=args.keep, prefix=args.prefix,
        )  # fmt: skip
    except image.ImageMissing as e:
        print(f"router7-vmtest: {e}", file=sys.stderr)
        return 2
    accel, why = kvm.accelerator(d.image_dir / "vmlinuz")
    print(f"router7-vmtest: {args.scenario} ({d.boot} boot, qemu accel {accel}: {why})")
    start = time.monotonic()
    try:
        with d:
            if args.interactive:
                symbols = {**d.test_symbols(), "test_script": d.run}
                banner = (
                    "router7-vmtest interactive: "
                    + ", ".join(m.name for m in d.machines)
                    + ", start_all(), subtest(), test_script() (runs the scenario); Ctrl-D ends"
                )
                code.interact(banner=banner, local=symbols)
            else:
                d.run()
    except (RequestedAssertionFailed, MachineError, LabError) as e:
        print(
            f"\nrouter7-vmtest: {args.scenario} FAILED after {time.monotonic() - start:.1f}s",
            file=sys.stderr,
        )
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        print(f"logs: {d.out_dir}", file=sys.stderr)
        return 1
    print(
        f"router7-vmtest: {args.scenario} passed in {time.monotonic() - start:.1f}s (logs: {d.out_dir})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
