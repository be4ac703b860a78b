"""router7.image's pieces without a Debian build: cpio, module selection, disk packer."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess

import pytest

from router7.image import cpio, disk, tools
from router7.image.modules import ModuleIndex, ModuleSpec

EPOCH = 1747699200


def test_cpio_is_sorted_fixed_and_readable():
    entries = [
        cpio.Entry.file("lib/modules/x.ko", b"\x7fELF..."),
        cpio.Entry.directory("lib"),
        cpio.Entry.file("init", b"#!/bin/sh\n", 0o755),
        cpio.Entry.chardev("dev/console", 5, 1),
        cpio.Entry.symlink("bin/sh", "busybox"),
        cpio.Entry.directory("lib/modules"),
        cpio.Entry.directory("dev"),
        cpio.Entry.directory("bin"),
    ]
    a, b = io.BytesIO(), io.BytesIO()
    cpio.write(a, entries, EPOCH)
    cpio.write(b, list(reversed(entries)), EPOCH)
    assert a.getvalue() == b.getvalue()  # order of the input does not matter
    assert len(a.getvalue()) % 4 == 0
    got = cpio.read(a.getvalue())
    names = [name for name, _, _ in got]
    assert names == ["bin", "bin/sh", "dev", "dev/console", "init", "lib", "lib/modules",
                     "lib/modules/x.ko"]  # fmt: skip
    by_name = {name: (mode, data) for name, mode, data in got}
    assert stat.S_ISLNK(by_name["bin/sh"][0]) and by_name["bin/sh"][1] == b"busybox"
    assert stat.S_ISCHR(by_name["dev/console"][0])
    assert by_name["init"] == (stat.S_IFREG | 0o755, b"#!/bin/sh\n")


def test_cpio_matches_gnu_cpio_listing(tmp_path):
    if not shutil.which("cpio"):
        pytest.skip("no cpio(1)")
    buf = io.BytesIO()
    cpio.write(buf, [cpio.Entry.directory("a"), cpio.Entry.file("a/b", b"hello")], EPOCH)
    out = subprocess.run(
        ["cpio", "-t", "--quiet"], input=buf.getvalue(), capture_output=True, check=True
    )
    assert out.stdout.decode().split() == ["a", "a/b"]


def test_cpio_refuses_duplicates():
    with pytest.raises(ValueError, match="duplicate"):
        cpio.write(io.BytesIO(), [cpio.Entry.directory("a"), cpio.Entry.directory("a")], 0)


@pytest.fixture
def moddir(tmp_path):
    d = tmp_path / "lib/modules/6.1.0-test"
    d.mkdir(parents=True)
    (d / "modules.dep").write_text(
        "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/jbd2/jbd2.ko\n"
        "kernel/lib/crc16.ko:\n"
        "kernel/fs/jbd2/jbd2.ko:\n"
        "kernel/crypto/crc32c_generic.ko:\n"
        "kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko\n"
        "kernel/net/netfilter/nfnetlink.ko:\n"
        "kernel/drivers/mmc/host/sdhci-pci.ko: kernel/drivers/mmc/host/sdhci.ko\n"
        "kernel/drivers/mmc/host/sdhci.ko:\n"
    )
    (d / "modules.softdep").write_text("# comment\nsoftdep ext4 pre: crc32c_generic\n")
    (d / "modules.builtin").write_text("kernel/fs/overlayfs/overlay.ko\n")
    return d


def test_modules_dependencies_first_softdeps_and_dirs(moddir):
    index = ModuleIndex(moddir)
    assert index.expand(["ext4", "sdhci-pci", "overlay"]) == [
        "kernel/crypto/crc32c_generic.ko",
        "kernel/lib/crc16.ko",
        "kernel/fs/jbd2/jbd2.ko",
        "kernel/fs/ext4/ext4.ko",
        "kernel/drivers/mmc/host/sdhci.ko",
        "kernel/drivers/mmc/host/sdhci-pci.ko",
    ]  # overlay is built in: nothing to load
    assert index.expand(["net/netfilter/"]) == [
        "kernel/net/netfilter/nfnetlink.ko",
        "kernel/net/netfilter/nf_tables.ko",
    ]
    with pytest.raises(KeyError, match="nosuchmod"):
        index.expand(["nosuchmod"])


def test_module_spec_initrd_lines_are_also_system():
    spec = ModuleSpec.parse("# c\ninitrd: ext4 loop  # disks\nwireguard\n")
    assert spec.initrd == ["ext4", "loop"]
    assert spec.system == ["ext4", "loop", "wireguard"]


def test_boot_partition_leaves_room_for_two_slots_and_growth():
    mib = disk.MIB
    assert disk.boot_size_mib(8 * mib, 40 * mib) == 128
    assert disk.boot_size_mib(8 * mib, 90 * mib) == 256  # 2.5 x 98 MiB + 4 = 249 -> 256


def _have_disk_tools() -> bool:
    try:
        tools.require(tools.DISK_TOOLS)
        tools.syslinux_mbr()
    except tools.MissingTool:
        return False
    return True


@pytest.mark.skipif(not _have_disk_tools(), reason="disk tools missing (./scripts/setup)")
def test_disk_packer_layout_and_reproducible(tmp_path, monkeypatch):
    kernel, initrd = tmp_path / "vmlinuz", tmp_path / "initrd"
    kernel.write_bytes(b"K" * 100_000)
    initrd.write_bytes(b"I" * 300_000)
    one, two = tmp_path / "one.img", tmp_path / "two.img"
    disk.pack(kernel, initrd, "console=ttyS0,115200", one, perm_mib=8, epoch=EPOCH)
    kernel.touch()  # a newer mtime on the inputs must not show in the output
    disk.pack(kernel, initrd, "console=ttyS0,115200", two, perm_mib=8, epoch=EPOCH)
    assert one.read_bytes() == two.read_bytes()

    table = json.loads(
        subprocess.run(["sfdisk", "--json", str(one)], capture_output=True, check=True).stdout
    )["partitiontable"]
    boot, perm = table["partitions"]
    assert table["label"] == "dos" and boot["start"] == 2048 and boot.get("bootable")
    assert perm["size"] == 8 * 2048 and perm["type"] == "83"
    assert one.read_bytes()[:440] == tools.syslinux_mbr().read_bytes()[:440]

    monkeypatch.setenv("MTOOLS_SKIP_CHECK", "1")
    img = f"{one}@@{disk.MIB}"

    def mtype(path):
        return subprocess.run(
            ["mtype", "-i", img, path], capture_output=True, check=True, text=True
        ).stdout

    assert mtype("::/default.cfg") == "DEFAULT A\n"
    assert "INCLUDE default.cfg" in mtype("::/syslinux.cfg")
    for slot in ("A", "B"):
        assert mtype(f"::/{slot}/cmdline") == "console=ttyS0,115200\n"
        assert f"APPEND console=ttyS0,115200 router7.slot={slot}" in mtype(f"::/{slot}/slot.cfg")
    listing = subprocess.run(
        ["mdir", "-a", "-i", img, "::/"], capture_output=True, check=True, text=True
    ).stdout
    assert "ldlinux  sys" in listing and "ROUTER7BOOT" in listing

    with open(one, "rb") as f:
        f.seek(boot["size"] * 512 + disk.MIB + 1024)
        superblock = f.read(1024)
    assert superblock[56:58] == b"\x53\xef"  # ext4 magic
    assert superblock[120:136].rstrip(b"\0") == b"perm"  # volume label
