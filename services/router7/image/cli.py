"""router7-image: `build` the image artefacts, or pack a `disk` image from kernel + initrd."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from router7.image import disk, tools
from router7.image.recipe import find_source


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="router7-image", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build vmlinuz, initrd, cmdline, netboot.ipxe, disk.img")
    b.add_argument("--source", type=Path, help="the router7 checkout (default: found)")
    b.add_argument("--out", type=Path, help="output directory (default: build/image)")
    b.add_argument("--cache", type=Path, help="cache directory (default: build/cache/image)")
    b.add_argument(
        "--rebuild", action="store_true", help="rebuild the artefacts (keeps the Debian download)"
    )
    d = sub.add_parser("disk", help="pack disk.img: MBR, FAT boot partition A/B, ext4 perm")
    d.add_argument("--kernel", type=Path, required=True)
    d.add_argument("--initrd", type=Path, required=True)
    d.add_argument("--cmdline", required=True)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--perm-size-mib", type=int, default=disk.DEFAULT_PERM_MIB)
    d.add_argument("--boot-size-mib", type=int, help="default: room for two slots and growth")
    args = p.parse_args(argv)
    try:
        if args.command == "disk":
            layout = disk.pack(
                args.kernel, args.initrd, args.cmdline, args.out,
                perm_mib=args.perm_size_mib, boot_mib=args.boot_size_mib,
            )  # fmt: skip
            print(f"{args.out}: boot {layout.boot_mib} MiB, perm {layout.perm_mib} MiB")
            return
        from router7.image.build import build

        source = (args.source or find_source()).resolve()
        out = args.out or source / "build" / "image"
        cache = args.cache or source / "build" / "cache" / "image"
        build(source, out.resolve(), cache.resolve(), rebuild=args.rebuild)
        print(out)
    except (tools.MissingTool, FileNotFoundError, RuntimeError, KeyError) as e:
        sys.exit(f"router7-image: {e}")
