"""router7-image: `build` the image artefacts, pack a `disk` image from kernel + initrd,
or make a `variant` of an image (another version string, a file, a kernel argument)."""

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
    v = sub.add_parser("variant", help="a variant of an image: another version, files, args")
    v.add_argument(
        "--from",
        dest="src",
        type=Path,
        required=True,
        help="directory with vmlinuz, initrd, cmdline (build/image, a boot slot)",
    )
    v.add_argument("--version", required=True, help="the variant's version string")
    v.add_argument("--out", type=Path, required=True)
    v.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="PATH=CONTENT",
        help="a file put over the system (path relative to /), repeatable",
    )
    v.add_argument("--append", default="", help="words appended to the kernel command line")
    v.add_argument(
        "--parts",
        action="store_true",
        help="no copy of the base initrd: initrd.parts names it and the appended archive "
        "(python3 -m router7.updated.client upload streams both)",
    )
    args = p.parse_args(argv)
    try:
        if args.command == "disk":
            layout = disk.pack(
                args.kernel, args.initrd, args.cmdline, args.out,
                perm_mib=args.perm_size_mib, boot_mib=args.boot_size_mib,
            )  # fmt: skip
            print(f"{args.out}: boot {layout.boot_mib} MiB, perm {layout.perm_mib} MiB")
            return
        if args.command == "variant":
            from router7.image import variant

            files = {}
            for spec in args.file:
                path, sep, content = spec.partition("=")
                if not sep or not path:
                    sys.exit(f"router7-image: --file {spec!r}: expected PATH=CONTENT")
                files[path] = (content + "\n").encode()
            m = variant.make(args.src, args.out, args.version, files, args.append, args.parts)
            print(f"{args.out}: version {m['version']}, cmdline {m['cmdline']}")
            return
        from router7.image.build import build

        source = (args.source or find_source()).resolve()
        out = args.out or source / "build" / "image"
        cache = args.cache or source / "build" / "cache" / "image"
        build(source, out.resolve(), cache.resolve(), rebuild=args.rebuild)
        print(out)
    except (tools.MissingTool, FileNotFoundError, RuntimeError, KeyError) as e:
        sys.exit(f"router7-image: {e}")
