"""The initrd: busybox, /init, the modules to reach the disks, and system.squashfs.

The kernel unpacks it into RAM; /init (pkgs/debian/init) loop-mounts the
squashfs under a tmpfs overlay and switches to systemd. The squashfs is already
zstd-compressed, so the cpio around it is compressed only lightly.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from router7.image import cpio
from router7.image.kernel import Kernel

SQUASHFS_NAME = "system.squashfs"


def mksquashfs(root: Path, out: Path, epoch: int, processors: int = 2) -> None:
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        ["mksquashfs", str(root), str(out), "-noappend", "-quiet", "-no-progress",
         "-comp", "zstd", "-Xcompression-level", "15", "-b", "1M",
         "-reproducible", "-mkfs-time", str(epoch), "-root-time", str(epoch),
         "-processors", str(processors)],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"mksquashfs failed: {proc.stderr.strip()}")


def entries(init: bytes, busybox: bytes, kernel: Kernel, squashfs: bytes) -> list[cpio.Entry]:
    E = cpio.Entry
    out = [
        E.directory("bin"),
        E.file("bin/busybox", busybox, 0o755),
        E.symlink("bin/sh", "busybox"),
        E.directory("dev"),
        E.chardev("dev/console", 5, 1),
        E.chardev("dev/null", 1, 3, 0o666),
        E.file("init", init, 0o755),
        E.directory("lib"),
        E.directory("lib/modules"),
        E.file(
            "lib/modules/initrd.list", "".join(m + "\n" for m in kernel.initrd_modules).encode()
        ),
        E.file(SQUASHFS_NAME, squashfs, 0o444),
    ]
    dirs = set()
    for rel in kernel.initrd_modules:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("lib/modules/" + "/".join(parts[:i]))
        out.append(E.file("lib/modules/" + rel, (kernel.moddir / rel).read_bytes()))
    out += [E.directory(d) for d in sorted(dirs)]
    return out


def write(path: Path, items: list[cpio.Entry], epoch: int) -> None:
    buf = io.BytesIO()
    cpio.write(buf, items, epoch)
    proc = subprocess.run(
        ["zstd", "-q", "-3", "-T1", "--no-progress", "-c"],
        input=buf.getvalue(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"zstd failed: {proc.stderr.decode().strip()}")
    path.write_bytes(proc.stdout)
