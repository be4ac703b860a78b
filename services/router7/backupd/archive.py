"""Writing a backup: a deterministic, streamed tar.gz of the perm directory.

What goes in (router7's rules, reference §8, plus one marker):
* regular files and directories, walked in sorted (byte) order, names relative to
  perm without "./" and without a trailing slash on directories;
* not symlinks, devices, sockets or FIFOs (router7 skips them too; restore then
  never has to trust a link);
* not directories named ``nobackup`` or ``srv`` (router7's convention), nor any
  directory that contains a file named ``.nobackup`` (ours: mark a cache without
  renaming it).

The same tree gives the same bytes: sorted order, gzip header without a time
stamp or file name, no user/group names. The archive is produced chunk by chunk
(a generator), one file open at a time, so memory stays flat however big perm is.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SKIP_DIR_NAMES = frozenset({"nobackup", "srv"})
NOBACKUP_MARKER = ".nobackup"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Entry:
    name: str  # relative to perm, "/"-separated
    path: Path
    st: os.stat_result


def excluded_dir(path: Path) -> bool:
    if path.name in SKIP_DIR_NAMES:
        return True
    try:
        return (path / NOBACKUP_MARKER).exists()
    except OSError:
        return False


def walk(perm: Path) -> Iterator[Entry]:
    """The entries of a backup of ``perm``, parents before children, sorted."""

    def visit(directory: Path, prefix: str) -> Iterator[Entry]:
        try:
            names = sorted(os.listdir(directory), key=os.fsencode)
        except OSError:
            return  # vanished or unreadable: nothing to back up there
        for name in names:
            path = directory / name
            try:
                st = os.lstat(path)
            except OSError:
                continue
            rel = f"{prefix}{name}"
            if stat.S_ISDIR(st.st_mode):
                if excluded_dir(path):
                    continue
                yield Entry(rel, path, st)
                yield from visit(path, f"{rel}/")
            elif stat.S_ISREG(st.st_mode):
                yield Entry(rel, path, st)

    yield from visit(Path(perm), "")


def header(entry: Entry, size: int) -> bytes:
    info = tarfile.TarInfo(entry.name)
    info.mode = stat.S_IMODE(entry.st.st_mode)
    info.uid, info.gid = entry.st.st_uid, entry.st.st_gid
    info.mtime = int(entry.st.st_mtime)
    if stat.S_ISDIR(entry.st.st_mode):
        info.type = tarfile.DIRTYPE
    else:
        info.type = tarfile.REGTYPE
        info.size = size
    # PAX: long names and big ids need no GNU extensions; undecodable names
    # survive as bytes (surrogateescape).
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _file_blocks(entry: Entry) -> Iterator[bytes]:
    """Header and contents of a regular file, padded to 512-byte blocks."""
    try:
        f = open(entry.path, "rb")  # noqa: SIM115 - closed below, generator-friendly
    except OSError:
        return  # vanished between walk and read: leave it out
    with f:
        size = os.fstat(f.fileno()).st_size
        yield header(entry, size)
        left = size
        while left > 0:
            data = f.read(min(CHUNK, left))
            if not data:  # the file shrank while we read it: keep the header honest
                data = bytes(min(CHUNK, left))
            yield data
            left -= len(data)
    if size % tarfile.BLOCKSIZE:
        yield bytes(tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)


def tar_stream(perm: Path) -> Iterator[bytes]:
    """The uncompressed tar of ``perm``, in pieces."""
    for entry in walk(perm):
        if stat.S_ISDIR(entry.st.st_mode):
            yield header(entry, 0)
        else:
            yield from _file_blocks(entry)
    yield bytes(2 * tarfile.BLOCKSIZE)  # end-of-archive marker


def backup_stream(perm: Path, level: int = 1) -> Iterator[bytes]:
    """The tar.gz of ``perm`` in chunks of about CHUNK bytes (gzip level 1, like router7).

    zlib's own gzip wrapper (wbits 31) writes a header with no time stamp and no
    name, which keeps the output deterministic, unlike gzip.GzipFile.
    """
    z = zlib.compressobj(level, zlib.DEFLATED, 31)
    pending: list[bytes] = []
    size = 0
    for piece in tar_stream(perm):
        out = z.compress(piece)
        if out:
            pending.append(out)
            size += len(out)
        if size >= CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(z.flush())
    yield b"".join(pending)
