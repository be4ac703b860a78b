#!/usr/bin/env python3
"""Where the image's bytes go, next to references. Not a test: prints a table.

Reads build/image/manifest.json (run `router7-image build` first) and prints the
initrd, the system inside it (unpacked and as squashfs), the kernel modules kept
against Debian's full module set, and the largest packages. References: the
stock NixOS minimal netboot initrd (about 790 MB, from the issue) and, with
--minbase (as root, ~1 min), a stock Debian 12 minbase with python3 built by
mmdebstrap here (an uncompressed tarball).

    .venv/bin/python bench/image_size.py [--image-dir build/image] [--minbase]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "services"))

from router7.image.build import top_packages  # noqa: E402

NIXOS_MINIMAL_NETBOOT_INITRD_MB = 790


def mb(n: float) -> str:
    return f"{n / 1e6:8.1f} MB"


def minbase_bytes(suite: str, mirror: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "minbase.tar"
        subprocess.run(
            ["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3", suite, str(tar),
             mirror],
            check=True,
        )  # fmt: skip
        return tar.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-dir", type=Path, default=REPO / "build" / "image")
    p.add_argument("--minbase", action="store_true", help="also build a stock minbase+python3")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    manifest = json.loads((args.image_dir / "manifest.json").read_text())
    files, sizes, k = manifest["files"], manifest["sizes"], manifest["kernel"]
    print(f"router7 image, kernel {k['version']}")
    print(f"  initrd                      {mb(files['initrd']['bytes'])}")
    print(f"  system unpacked             {mb(sizes['system_bytes'])}")
    print(f"  system squashfs (zstd)      {mb(sizes['squashfs_bytes'])}")
    print(f"  vmlinuz                     {mb(files['vmlinuz']['bytes'])}")
    print(f"  disk.img                    {mb(files['disk.img']['bytes'])}")
    print(f"  kernel modules kept         {mb(k['modules_bytes'])}  ({k['modules_kept']} modules)")
    print("references")
    print(f"  Debian's full module set    {mb(k['modules_full_bytes'])}")
    print(f"  NixOS minimal netboot initrd {NIXOS_MINIMAL_NETBOOT_INITRD_MB:7d}.0 MB  (issue 9)")
    if args.minbase:
        mirror = manifest["debian"]["mirrors"][0].split()[1]
        size = minbase_bytes(manifest["debian"]["suite"], mirror)
        print(f"  Debian minbase + python3    {mb(size)}  (uncompressed tar)")
    print(f"top {args.top} packages (unpacked)")
    for name, size in top_packages(manifest, args.top):
        print(f"  {name:28s}{mb(size)}")


if __name__ == "__main__":
    main()
