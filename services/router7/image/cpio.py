"""A reproducible newc ("070701") cpio writer: the format the kernel unpacks as initramfs.

Written here rather than by calling cpio(1) so the archive depends only on the
entries: fixed order (sorted by path), fixed mtime, owner root, inode numbers
counted from 1, and device nodes (/dev/console) without needing root.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import BinaryIO

TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    path: str  # relative, no leading "/"
    mode: int  # full st_mode: type and permission bits
    data: bytes = b""  # file contents, or the symlink target
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of device nodes

    @classmethod
    def directory(cls, path: str, perm: int = 0o755) -> Entry:
        return cls(path, stat.S_IFDIR | perm)

    @classmethod
    def file(cls, path: str, data: bytes, perm: int = 0o644) -> Entry:
        return cls(path, stat.S_IFREG | perm, data)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        return cls(path, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def chardev(cls, path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
        return cls(path, stat.S_IFCHR | perm, rdev=(major, minor))


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _header(ino: int, e: Entry, mtime: int, name: bytes) -> bytes:
    fields = [
        ino,
        e.mode,
        0,  # uid
        0,  # gid
        2 if stat.S_ISDIR(e.mode) else 1,  # nlink
        mtime,
        len(e.data),
        0,  # dev major
        0,  # dev minor
        e.rdev[0],
        e.rdev[1],
        len(name),
        0,  # check
    ]
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def write(out: BinaryIO, entries: list[Entry], mtime: int) -> None:
    """Write ``entries`` sorted by path (parents before children), then the trailer."""
    paths = [e.path for e in entries]
    if len(set(paths)) != len(paths):
        raise ValueError("duplicate paths in the initrd")
    ordered = sorted(entries, key=lambda e: e.path.split("/"))
    for ino, e in enumerate([*ordered, Entry(TRAILER, 0)], start=1):
        name = e.path.encode() + b"\0"
        head = _header(0 if e.path == TRAILER else ino, e, 0 if e.path == TRAILER else mtime, name)
        out.write(head + name + _pad(len(head) + len(name)))
        out.write(e.data + _pad(len(e.data)))


def read(data: bytes) -> list[tuple[str, int, bytes]]:
    """(path, mode, data) of each entry: for tests and `router7-image` inspection."""
    out, pos = [], 0
    while True:
        if data[pos : pos + 6] != b"070701":
            raise ValueError(f"bad cpio magic at offset {pos}")
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = f[1], f[6], f[11]
        pos += 110
        name = data[pos : pos + namesize - 1].decode()
        pos += namesize + (-(110 + namesize) % 4)
        body = data[pos : pos + size]
        pos += size + (-size % 4)
        if name == TRAILER:
            return out
        out.append((name, mode, body))
