"""router7-restore: unpack a backup into a perm directory, safely and all at once.

    router7-restore backup.tar.gz --perm /perm
    router7-restore http://192.168.42.1:8077/backup.tar.gz --perm /perm --token TOKEN
    curl -s http://192.168.42.1:8077/backup.tar.gz | router7-restore - --perm /perm

A backup holds regular files and directories only (ours and router7's, reference
§8), so that is all a restore accepts. The whole archive is checked before
anything is written; one bad member refuses it all:
* absolute names, ``..`` components, empty or ``.`` components;
* symlinks, hardlinks, device nodes, FIFOs (a link is how an archive writes
  outside its directory: "link -> /etc", then "link/passwd");
* a name given twice, or a name below a regular file.
Then it unpacks into a fresh temporary directory beside the target (same file
system) and swaps it in with one atomic rename (renameat2 RENAME_EXCHANGE). A
target that is a mount point, like /perm on the router, cannot be renamed: its
top-level entries are swapped one by one instead. set-user/group-ID bits are
dropped; owners are restored when running as root.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

RENAME_EXCHANGE = 2
AT_FDCWD = -100
MAX_PROBLEMS = 5


class RestoreError(Exception):
    """The archive is refused, or could not be restored; nothing was changed."""


@dataclass(frozen=True)
class Planned:
    name: str  # normalised, relative, "/"-separated
    member: tarfile.TarInfo
    is_dir: bool


def _kind(m: tarfile.TarInfo) -> str:
    if m.issym():
        return f"a symlink (to {m.linkname!r})"
    if m.islnk():
        return f"a hardlink (to {m.linkname!r})"
    if m.ischr() or m.isblk():
        return "a device node"
    if m.isfifo():
        return "a FIFO"
    return f"an entry of type {m.type!r}"


def normalise(name: str) -> str:
    """The member name relative to the target; ValueError says why it is unsafe.

    Accepts what tar tools write ("./a/b", "a/b/", "a/b"); "" means the root itself.
    """
    if "\x00" in name:
        raise ValueError("NUL in name")
    if name.startswith("/"):
        raise ValueError("absolute path")
    while name.startswith("./"):
        name = name[2:]
    name = name.rstrip("/") if name not in ("", ".") else ""
    if name == "":
        return ""
    parts = name.split("/")
    if ".." in parts:
        raise ValueError("'..' component")
    if any(p in ("", ".") for p in parts):
        raise ValueError("empty or '.' component")
    return name


def _ancestors(name: str) -> list[str]:
    """ "a/b/c" -> ["a/b", "a"]."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


def plan(members: list[tarfile.TarInfo]) -> list[Planned]:
    """The members to unpack, in archive order; RestoreError listing the problems."""
    problems: list[str] = []
    out: list[Planned] = []
    kinds: dict[str, bool] = {}  # name -> is_dir
    for m in members:
        try:
            name = normalise(m.name)
        except ValueError as e:
            problems.append(f"{m.name!r}: {e}")
            continue
        if not (m.isdir() or m.isreg()):
            problems.append(f"{m.name!r}: {_kind(m)}; backups hold only files and directories")
            continue
        if name == "":
            if not m.isdir():
                problems.append(f"{m.name!r}: the archive's root is not a directory")
            continue  # the target itself: nothing to create
        if name in kinds:
            problems.append(f"{m.name!r}: appears twice")
            continue
        kinds[name] = m.isdir()
        out.append(Planned(name, m, m.isdir()))
    # After the whole archive is known, so that "a/b/c" then "a" as a file is caught too.
    for p in out:
        file_above = next((a for a in _ancestors(p.name) if kinds.get(a) is False), None)
        if file_above is not None:
            problems.append(f"{p.member.name!r}: below the regular file {file_above!r}")
    if problems:
        more = len(problems) - MAX_PROBLEMS
        text = "; ".join(dict.fromkeys(problems[:MAX_PROBLEMS]))
        raise RestoreError(
            f"unsafe archive, nothing restored: {text}" + (f" (+{more} more)" if more > 0 else "")
        )
    return out


def _mode(m: tarfile.TarInfo) -> int:
    return stat.S_IMODE(m.mode) & ~(stat.S_ISUID | stat.S_ISGID)


def _mkdirs(root: Path, rel: str) -> None:
    path = root
    for part in rel.split("/"):
        path = path / part
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise RestoreError(f"{rel}: not a directory in the unpacked tree") from None


def unpack(tf: tarfile.TarFile, planned: list[Planned], root: Path, owners: bool) -> None:
    """Write ``planned`` below the fresh, empty directory ``root``."""
    dirs: list[Planned] = []
    for p in planned:
        dest = root / p.name
        if p.is_dir:
            _mkdirs(root, p.name)
            dirs.append(p)
            continue
        parent = p.name.rpartition("/")[0]
        if parent:
            _mkdirs(root, parent)
        # O_EXCL|O_NOFOLLOW: never write through anything that already exists.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            src = tf.extractfile(p.member)
            if src is not None:
                shutil.copyfileobj(src, out, 1 << 16)
            out.flush()
            os.fsync(out.fileno())
            if owners:
                os.fchown(out.fileno(), p.member.uid, p.member.gid)
            os.fchmod(out.fileno(), _mode(p.member))
        os.utime(dest, (p.member.mtime, p.member.mtime), follow_symlinks=False)
    # Directories last and deepest first: a read-only directory is still writable
    # while its contents are unpacked, and writing into it would change its mtime.
    for p in sorted(dirs, key=lambda p: p.name.count("/"), reverse=True):
        dest = root / p.name
        if owners:
            os.chown(dest, p.member.uid, p.member.gid, follow_symlinks=False)
        os.chmod(dest, _mode(p.member))
        os.utime(dest, (p.member.mtime, p.member.mtime), follow_symlinks=False)


def exchange(a: Path, b: Path) -> None:
    """Atomically swap two paths (renameat2 RENAME_EXCHANGE); OSError if unsupported."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise OSError(errno.ENOSYS, "renameat2 not available")
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _swap(new: Path, target: Path) -> Path | None:
    """Put ``new`` at ``target``; returns where the old tree now is (or None)."""
    if not target.exists():
        os.rename(new, target)
        return None
    try:
        exchange(new, target)
        return new
    except OSError as e:
        if e.errno not in (errno.ENOSYS, errno.EINVAL):
            raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)  # renameat2 unsupported here: a short window without target
    os.rename(new, target)
    return old


def _swap_entries(new: Path, target: Path, old: Path) -> None:
    """Mount point: move every top-level entry of ``new`` in, the previous ones to ``old``."""
    for name in sorted(os.listdir(target)):
        if target / name in (new, old):
            continue
        if not (new / name).exists():
            os.rename(target / name, old / name)
    for name in sorted(os.listdir(new)):
        if (target / name).exists() or (target / name).is_symlink():
            try:
                exchange(new / name, target / name)
                os.rename(new / name, old / name)
                continue
            except OSError as e:
                if e.errno not in (errno.ENOSYS, errno.EINVAL):
                    raise
            os.rename(target / name, old / name)
        os.rename(new / name, target / name)
    st = os.stat(new)
    os.chmod(target, stat.S_IMODE(st.st_mode))


def restore(
    archive: Path, target: Path, *, owners: bool | None = None, keep_old: bool = False
) -> int:
    """Restore ``archive`` into ``target``; returns the number of entries written.

    Raises RestoreError (target untouched) if the archive is unreadable or unsafe.
    """
    target = Path(os.path.abspath(target))
    if owners is None:
        owners = os.geteuid() == 0
    try:
        tf = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        raise RestoreError(f"{archive}: not a readable tar archive: {e}") from None
    with tf:
        try:
            members = tf.getmembers()  # reads to the end: a truncated backup fails here
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise RestoreError(f"{archive}: damaged archive: {e}") from None
        planned = plan(members)
        mounted = target.is_dir() and os.path.ismount(target)
        parent = target if mounted else target.parent
        parent.mkdir(parents=True, exist_ok=True)
        new = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=parent))
        try:
            os.chmod(new, 0o755)
            unpack(tf, planned, new, owners)
            root = next((m for m in members if normalise(m.name) == ""), None)
            if root is not None:
                os.chmod(new, _mode(root))
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
    if mounted:
        old = Path(tempfile.mkdtemp(prefix=".restore-old-", dir=target))
        _swap_entries(new, target, old)
        new.rmdir()
    else:
        old = _swap(new, target)
    if old is not None and not keep_old:
        shutil.rmtree(old, ignore_errors=True)
    return len(planned)


def _fetch(source: str, directory: Path, token: str | None = None) -> Path:
    """Spool stdin or a URL into a temp file: the archive is checked whole before use."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".restore-download-", suffix=".tar.gz", dir=directory)
    with os.fdopen(fd, "wb") as out:
        if source == "-":
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 16)
        else:
            request = urllib.request.Request(source)
            if token:  # backups need the router's admin credential (router7.runtime.auth)
                request.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(request, timeout=60) as resp:
                shutil.copyfileobj(resp, out, 1 << 16)
    return Path(tmp)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="router7-restore",
        description="Restore a router7 backup (tar or tar.gz) into a perm directory.",
    )
    p.add_argument("backup", help="backup file, '-' for stdin, or an http:// URL")
    p.add_argument("--perm", default="/perm", help="directory to restore into")
    p.add_argument("--keep-old", action="store_true", help="keep the replaced tree beside it")
    p.add_argument("--no-owner", action="store_true", help="do not restore file owners")
    p.add_argument(
        "--token",
        default=os.environ.get("ROUTER7_TOKEN"),
        help="the router's admin credential, for an http:// backup "
        "(default: $ROUTER7_TOKEN; it is in /perm/admin/token on the router)",
    )
    args = p.parse_args(argv)
    target = Path(args.perm)
    spooled = None
    started = time.monotonic()
    try:
        source = args.backup
        if source == "-" or source.startswith(("http://", "https://")):
            spooled = _fetch(source, Path(os.path.abspath(target)).parent, args.token)
            source = spooled
        n = restore(
            Path(source), target, owners=False if args.no_owner else None, keep_old=args.keep_old
        )
    except RestoreError as e:
        print(f"router7-restore: refused: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"router7-restore: failed: {e}", file=sys.stderr)
        return 1
    finally:
        if spooled is not None:
            with contextlib.suppress(OSError):
                spooled.unlink()
    print(f"restored {n} entries into {target} in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
