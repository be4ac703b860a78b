"""Is /perm persistent? Read from /proc/self/mountinfo.

The image's initrd mounts the ext4 partition labelled "perm" on /perm, or a
tmpfs when the disk has none (blank disk, netboot without disk): the router then
works but forgets its DUID, leases and config at the next reboot, so the check
fails. A /perm that is a plain directory on the image's overlay root (tmpfs
underneath) fails too. Elsewhere (the namespace lab keeps perm under /run), a
directory that is not itself a tmpfs mount counts as persistent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from router7.diagd.tree import CheckFailed

MOUNTINFO = Path("/proc/self/mountinfo")
VOLATILE = {"tmpfs", "ramfs"}


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape") if "\\" in field else field


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1])))
    return mounts


def containing_mount(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount a path lives on: the longest matching mount point, the last mounted on ties."""
    best, best_len = None, -1
    for m in mounts:
        point = m.point.rstrip("/")
        inside = path == point or path.startswith(point + "/")
        if inside and len(point) >= best_len:
            best, best_len = m, len(point)
    return best


def persistence(perm: Path, mountinfo: Path = MOUNTINFO) -> str:
    """A status line when perm survives a reboot; raises CheckFailed when it does not."""
    path = os.path.realpath(perm)
    m = containing_mount(path, parse_mountinfo(mountinfo.read_text()))
    if m is None:
        raise CheckFailed(f"{path} is on no mount in {mountinfo}")
    at_mount_point = (m.point.rstrip("/") or "/") == path
    if m.fstype in VOLATILE and at_mount_point:
        raise CheckFailed(
            f"{path} is a {m.fstype}: nothing is kept across a reboot "
            "(no ext4 file system labelled perm on the disk)"
        )
    if m.fstype == "overlay" and m.point == "/":
        raise CheckFailed(f"{path} is on the volatile root file system (overlay)")
    return f"{m.fstype} {m.source} on {m.point}"
