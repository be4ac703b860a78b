"""Host tools the build needs, and the Debian package that provides each."""

from __future__ import annotations

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


def _syslinux_share_dirs() -> list[Path]:
    """<prefix>/share/syslinux next to the syslinux on PATH: where Nix's syslinux
    keeps mbr.bin (the disk image derivation, pkgs/image.nix)."""
    found = shutil.which("syslinux")
    return [Path(found).resolve().parent.parent / "share" / "syslinux"] if found else []


def syslinux_mbr() -> Path:
    for d in [*SYSLINUX_MBR_DIRS, *_syslinux_share_dirs()]:
        if (d / "mbr.bin").exists():
            return d / "mbr.bin"
    raise MissingTool("missing syslinux's mbr.bin; install: apt-get install syslinux-common")
