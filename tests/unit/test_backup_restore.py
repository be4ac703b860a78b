"""router7-restore: round trips, router7 archives, and unsafe archives refused whole."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from router7.backupd import restore as rs
from router7.backupd.archive import backup_stream


def snapshot(root: Path) -> dict:
    """Every entry below root: kind, mode, mtime, contents."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st_ = os.lstat(p)
            rel = str(p.relative_to(root))
            body = p.read_bytes() if stat.S_ISREG(st_.st_mode) else None
            out[rel] = (
                stat.S_IFMT(st_.st_mode),
                stat.S_IMODE(st_.st_mode),
                int(st_.st_mtime),
                body,
            )
    return out


def make_perm(root: Path) -> Path:
    (root / "dhcp4/wire").mkdir(parents=True)
    (root / "dhcp4/wire/lease.json").write_text('{"address": "192.0.2.23/25"}\n')
    (root / "interfaces.json").write_text("{}\n")
    (root / "dhcp6").mkdir()
    (root / "dhcp6/duid").write_bytes(b"\x00\x01\x02")
    (root / "secret").write_text("key")
    os.chmod(root / "secret", 0o600)
    (root / "ro").mkdir()
    (root / "ro/f").write_text("in a read-only dir")
    os.chmod(root / "ro", 0o555)
    os.utime(root / "dhcp6/duid", (1_600_000_000, 1_600_000_000))
    return root


def write_backup(perm: Path, path: Path) -> Path:
    path.write_bytes(b"".join(backup_stream(perm)))
    return path


def test_round_trip_into_new_dir(tmp_path):
    perm = make_perm(tmp_path / "perm")
    archive = write_backup(perm, tmp_path / "b.tar.gz")
    n = rs.restore(archive, tmp_path / "restored", owners=False)
    assert n == 9
    assert snapshot(tmp_path / "restored") == snapshot(perm)


def test_restore_replaces_existing_tree(tmp_path):
    perm = make_perm(tmp_path / "perm")
    archive = write_backup(perm, tmp_path / "b.tar.gz")
    target = tmp_path / "target"
    target.mkdir()
    (target / "stale").write_text("from before")
    rs.restore(archive, target, owners=False)
    assert snapshot(target) == snapshot(perm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz", "perm", "target"]

    (target / "stale").write_text("again")
    rs.restore(archive, target, owners=False, keep_old=True)
    old = [p for p in tmp_path.iterdir() if p.name.startswith(".target.")]
    assert len(old) == 1 and (old[0] / "stale").read_text() == "again"


def tar_bytes(entries, compress=True) -> bytes:
    """entries: (TarInfo-ish kwargs, data or None)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if compress else "w") as tf:
        for kw, data in entries:
            info = tarfile.TarInfo(kw.pop("name"))
            for k, v in kw.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def test_router7_style_and_gnu_tar_archives(tmp_path):
    # router7: names relative, no "./", directories without a trailing slash.
    r7 = tmp_path / "r7.tar.gz"
    r7.write_bytes(
        tar_bytes(
            [
                ({"name": "dhcp4", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
                ({"name": "dhcp4/wire", "type": tarfile.DIRTYPE, "mode": 0o755}, None),
                ({"name": "dhcp4/wire/ack", "mode": 0o644}, b"\x02\x01"),
            ]
        )
    )
    rs.restore(r7, tmp_path / "a", owners=False)
    assert (tmp_path / "a/dhcp4/wire/ack").read_bytes() == b"\x02\x01"
    # GNU tar -C perm -c .: "./" prefixes, a root entry, implicit parents, no gzip.
    gnu = tmp_path / "gnu.tar"
    gnu.write_bytes(
        tar_bytes(
            [
                ({"name": "./", "type": tarfile.DIRTYPE, "mode": 0o750}, None),
                ({"name": "./x/y/z.json", "mode": 0o640}, b"{}"),
            ],
            compress=False,
        )
    )
    rs.restore(gnu, tmp_path / "b", owners=False)
    assert (tmp_path / "b/x/y/z.json").read_bytes() == b"{}"
    assert stat.S_IMODE(os.stat(tmp_path / "b").st_mode) == 0o750


def device(name, kind):
    return ({"name": name, "type": kind, "devmajor": 1, "devminor": 3}, None)


UNSAFE = {
    "dotdot": ([({"name": "../x"}, b"evil")], "'..' component"),
    "inner dotdot": ([({"name": "a/../../x"}, b"evil")], "'..' component"),
    "absolute": ([({"name": "/tmp/evil"}, b"evil")], "absolute path"),
    "symlink then write through it": (
        [
            ({"name": "link", "type": tarfile.SYMTYPE, "linkname": "/tmp"}, None),
            ({"name": "link/evil"}, b"evil"),
        ],
        "a symlink",
    ),
    "relative symlink escaping": (
        [({"name": "up", "type": tarfile.SYMTYPE, "linkname": "../.."}, None)],
        "a symlink",
    ),
    "hardlink": (
        [({"name": "hard", "type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}, None)],
        "a hardlink",
    ),
    "char device": ([device("null", tarfile.CHRTYPE)], "a device node"),
    "block device": ([device("sda", tarfile.BLKTYPE)], "a device node"),
    "fifo": ([({"name": "pipe", "type": tarfile.FIFOTYPE}, None)], "a FIFO"),
    "duplicate": ([({"name": "a"}, b"1"), ({"name": "a"}, b"2")], "appears twice"),
    "below a file": ([({"name": "a"}, b"1"), ({"name": "a/b"}, b"2")], "below the regular file"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_and_nothing_is_written(tmp_path, case):
    entries, reason = UNSAFE[case]
    # A harmless file first: it must not be written either.
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_bytes([({"name": "harmless"}, b"ok"), *entries]))
    work = tmp_path / "work"
    work.mkdir()
    target = work / "perm"
    target.mkdir()
    (target / "keep").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(rs.RestoreError, match="nothing restored") as e:
        rs.restore(archive, target, owners=False)
    assert reason in str(e.value)
    assert snapshot(tmp_path) == before  # no temp dir, no file, target untouched
    assert not Path("/tmp/evil").exists()


def test_damaged_archives_are_refused(tmp_path):
    perm = make_perm(tmp_path / "perm")
    good = b"".join(backup_stream(perm))
    bad = tmp_path / "trunc.tar.gz"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(rs.RestoreError, match="damaged|not a readable"):
        rs.restore(bad, tmp_path / "t", owners=False)
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(rs.RestoreError, match="not a readable tar"):
        rs.restore(junk, tmp_path / "t", owners=False)
    assert not (tmp_path / "t").exists()


def test_setuid_bits_are_dropped(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes([({"name": "suid", "mode": 0o4755}, b"#!")]))
    rs.restore(archive, tmp_path / "t", owners=False)
    assert stat.S_IMODE(os.stat(tmp_path / "t/suid").st_mode) == 0o755


def test_cli(tmp_path, capsys, monkeypatch):
    perm = make_perm(tmp_path / "perm")
    archive = write_backup(perm, tmp_path / "b.tar.gz")
    assert rs.main([str(archive), "--perm", str(tmp_path / "new"), "--no-owner"]) == 0
    assert snapshot(tmp_path / "new") == snapshot(perm)
    assert "restored 9 entries" in capsys.readouterr().out

    evil = tmp_path / "evil.tar.gz"
    evil.write_bytes(tar_bytes([({"name": "../x"}, b"evil")]))
    assert rs.main([str(evil), "--perm", str(tmp_path / "other")]) == 1
    assert "refused" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(archive.read_bytes())))
    assert rs.main(["-", "--perm", str(tmp_path / "stdin"), "--no-owner"]) == 0
    assert snapshot(tmp_path / "stdin") == snapshot(perm)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".restore-download")]


_parts = st.sampled_from(["a", "b", ".", "..", "/", "\\", "é", "./"])
_names = st.lists(st.lists(_parts, min_size=1, max_size=8).map("".join), min_size=1, max_size=5)


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(names=_names, dirs=st.lists(st.booleans(), min_size=5, max_size=5))
# Found by this test: a file "a" named after "a/a/a" raised FileExistsError, not a refusal.
@example(names=["a/a/a", "a"], dirs=[False] * 5)
def test_any_member_names_stay_inside_or_are_refused(tmp_path_factory, names, dirs):
    base = tmp_path_factory.mktemp("fuzz")
    outside_before = sorted(p.name for p in base.iterdir())
    entries = []
    for name, is_dir in zip(names, dirs, strict=False):
        if is_dir:
            entries.append(({"name": name, "type": tarfile.DIRTYPE, "mode": 0o755}, None))
        else:
            entries.append(({"name": name, "mode": 0o644}, b"data"))
    archive = base / "archive.tar"
    archive.write_bytes(tar_bytes(entries, compress=False))
    outside_before = sorted(p.name for p in base.iterdir())
    target = base / "inner" / "perm"
    try:
        rs.restore(archive, target, owners=False)
    except rs.RestoreError:
        assert not (base / "inner").exists() or not any((base / "inner").iterdir())
    else:
        for dirpath, _, files in os.walk(target):
            for f in files:
                assert Path(dirpath, f).resolve().is_relative_to(target.resolve())
    assert sorted(p.name for p in base.iterdir() if p.name != "inner") == outside_before


def test_mount_point_target_swaps_entries(tmp_path, monkeypatch):
    # /perm on the router is a mount point, which rename() cannot move.
    perm = make_perm(tmp_path / "perm")
    archive = write_backup(perm, tmp_path / "b.tar.gz")
    target = tmp_path / "mnt"
    target.mkdir()
    (target / "stale").write_text("old")
    (target / "dhcp4").mkdir()
    (target / "dhcp4/old-file").write_text("old")
    real = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == target or real(p))
    rs.restore(archive, target, owners=False)
    assert snapshot(target) == snapshot(perm)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tar.gz", "mnt", "perm"]
