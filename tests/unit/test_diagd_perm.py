"""diagd's "perm: persistent" check, from mountinfo text."""

from __future__ import annotations

import pytest

from router7.diagd.perm import persistence
from router7.diagd.tree import CheckFailed

ROOT = (
    "22 1 0:20 / / rw,relatime shared:1 - overlay overlay rw,lowerdir=/lower,upperdir=/rw/upper\n"
)
RUN = "25 22 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755\n"
PERM_EXT4 = "30 22 8:2 / /perm rw,noatime shared:9 - ext4 /dev/sda2 rw\n"
PERM_TMPFS = "30 22 0:40 / /perm rw,relatime shared:9 - tmpfs perm rw,size=65536k,mode=755\n"


def check(tmp_path, text, perm="/perm"):
    mi = tmp_path / "mountinfo"
    mi.write_text(text)
    return persistence(perm, mi)


def test_ext4_perm_is_persistent(tmp_path):
    assert check(tmp_path, ROOT + RUN + PERM_EXT4) == "ext4 /dev/sda2 on /perm"


def test_tmpfs_perm_fails_and_says_why(tmp_path):
    with pytest.raises(CheckFailed, match="tmpfs: nothing is kept"):
        check(tmp_path, ROOT + RUN + PERM_TMPFS)


def test_the_last_mount_on_a_point_wins(tmp_path):
    # An ext4 mounted over the tmpfs later (the owner fixed it by hand) counts.
    assert check(tmp_path, ROOT + PERM_TMPFS + PERM_EXT4).startswith("ext4")
    with pytest.raises(CheckFailed):
        check(tmp_path, ROOT + PERM_EXT4 + PERM_TMPFS)


def test_plain_directory_on_the_volatile_root_fails(tmp_path):
    with pytest.raises(CheckFailed, match="volatile root"):
        check(tmp_path, ROOT + RUN)


def test_lab_directory_under_a_tmpfs_run_counts(tmp_path):
    # The namespace lab keeps perm in /run/router7-lab/...: not a mount of its own.
    lab_root = "22 1 8:1 / / rw - ext4 /dev/vda1 rw\n"
    status = check(tmp_path, lab_root + RUN, perm="/run/router7-lab/x/router/perm")
    assert status == "tmpfs tmpfs on /run"


def test_escaped_mount_points(tmp_path):
    line = "31 22 8:3 / /mnt/my\\040perm rw - ext4 /dev/sdb1 rw\n"
    assert check(tmp_path, ROOT + line, perm="/mnt/my perm").startswith("ext4")
