"""Host tools the build needs, and the Debian package that provides each."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# tool -> Debian package (also listed in scripts/setup)
BUILD_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mksquashfs": "squashfs-tools",
    "depmod": "kmod",
    "dpkg-deb": "dpkg",
    "zstd": "zstd",
}
DISK_TOOLS = {
    "sfdisk": "fdisk",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "syslinux": "syslinux",
    "mkfs.ext4": "e2fsprogs",
}
BUSYBOX = Path("/bin/busybox")  # busybox-static: the initrd's only binary
SYSLINUX_MBR_DIRS = [Path("/usr/lib/syslinux/mbr"), Path("/usr/share/syslinux")]


class MissingTool(RuntimeError):
    pass


def require(tools: dict[str, str]) -> dict[str, str]:
    """Paths of ``tools``; raises MissingTool naming every package to install."""
    found, missing = {}, {}
    for tool, package in tools.items():
        path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
        if path:
            found[tool] = path
        else:
            missing[tool] = package
    if missing:
        tools_list = ", ".join(sorted(missing))
        packages = " ".join(sorted(set(missing.values())))
        raise MissingTool(
            f"missing build tools: {tools_list}; install them with: "
            f"apt-get install --no-install-recommends {packages}"
        )
    return found


def busybox_static() -> Path:
    if not BUSYBOX.exists():
        raise MissingTool("missing /bin/busybox (static); install: apt-get install busybox-static")
    return BUSYBOX


def syslinux_mbr() -> Path:
    """syslinux's MBR boot code: $ROUTER7_SYSLINUX_MBR, Debian's path, or beside the binary (Nix)."""
    candidates = (
        [Path(os.environ["ROUTER7_SYSLINUX_MBR"])] if "ROUTER7_SYSLINUX_MBR" in os.environ else []
    )
    candidates += [d / "mbr.bin" for d in SYSLINUX_MBR_DIRS]
    binary = shutil.which("syslinux")
    if binary:
        candidates.append(Path(binary).resolve().parents[1] / "share" / "syslinux" / "mbr.bin")
    for c in candidates:
        if c.exists():
            return c
    raise MissingTool("missing syslinux's mbr.bin; install: apt-get install syslinux-common")
