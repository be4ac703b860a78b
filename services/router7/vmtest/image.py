"""Where the router image is: $ROUTER7_IMAGE_DIR or build/image in the checkout."""

from __future__ import annotations

import os
from pathlib import Path

ARTEFACTS = ("vmlinuz", "initrd", "cmdline", "netboot.ipxe", "disk.img")
# What each boot path (router7.vmtest.qemu.BOOT_MODES) reads.
NEEDED = {
    "disk": ("vmlinuz", "disk.img"),
    "netboot": ("vmlinuz", "initrd", "netboot.ipxe", "disk.img"),
    "kernel": ("vmlinuz", "initrd", "cmdline"),
    # the VM gets a blank disk; router7-recover serves these from the image dir
    "pxe": ("vmlinuz", "initrd", "cmdline", "disk.img"),
}
BUILD_COMMAND = "router7-image build"


class ImageMissing(FileNotFoundError):
    pass


def checkout_root() -> Path:
    return Path(__file__).resolve().parents[3]


def image_dir() -> Path:
    env = os.environ.get("ROUTER7_IMAGE_DIR")
    return Path(env) if env else checkout_root() / "build" / "image"


def require(directory: Path | None = None, need: tuple[str, ...] = ARTEFACTS) -> Path:
    """The image dir, or ImageMissing naming the missing files and the command to run."""
    d = directory or image_dir()
    missing = [name for name in need if not (d / name).is_file()]
    if missing:
        raise ImageMissing(
            f"router image incomplete in {d}: missing {', '.join(missing)}; "
            f"build it with `{BUILD_COMMAND}` (or set ROUTER7_IMAGE_DIR)"
        )
    return d
