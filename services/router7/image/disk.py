"""The disk packer: MBR, a FAT boot partition with syslinux and slots A/B, ext4 /perm.

Shared by both legs (the Nix build calls `router7-image disk`), so it uses only
files and the tools sfdisk, mkfs.vfat, mtools, syslinux and mkfs.ext4: no loop
devices, no mounting, no root, as a Nix build sandbox requires. Every volume id,
UUID and timestamp derives from SOURCE_DATE_EPOCH, so the same inputs give the
same bytes.

Layout (1 MiB aligned):
    sector 0        syslinux mbr.bin (boot code) + partition table
    partition 1     FAT "ROUTER7BOOT", bootable: ldlinux.sys, syslinux.cfg,
                    default.cfg ("DEFAULT A": the one file an update rewrites),
                    A/ and B/ each vmlinuz, initrd, cmdline, slot.cfg
    partition 2     ext4 labelled "perm", root owned by the router7 user
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from router7.image import tools

MIB = 1 << 20
SECTOR = 512
BOOT_LABEL = "ROUTER7BOOT"
PERM_LABEL = "perm"
ROUTER7_UID = 400  # pkgs/systemd/router7.sysusers.conf
SLOTS = ("A", "B")
DEFAULT_PERM_MIB = 64
# syslinux.cfg: the menu is fixed; default.cfg names the slot booted (DEFAULT A first:
# should default.cfg ever be missing, slot A still boots rather than a prompt).
SYSLINUX_CFG = """\
# router7: boots the slot named in default.cfg (rewritten by updates).
SERIAL 0 115200
CONSOLE 1
PROMPT 0
TIMEOUT 10
DEFAULT A
INCLUDE default.cfg
INCLUDE A/slot.cfg
INCLUDE B/slot.cfg
"""


@dataclass(frozen=True)
class DiskLayout:
    boot_mib: int
    perm_mib: int

    @property
    def boot_offset(self) -> int:
        return MIB

    @property
    def perm_offset(self) -> int:
        return self.boot_offset + self.boot_mib * MIB

    @property
    def size(self) -> int:
        return self.perm_offset + self.perm_mib * MIB

    def sfdisk_script(self, disk_id: int) -> str:
        s = SECTOR
        return (
            "label: dos\n"
            f"label-id: 0x{disk_id:08x}\n"
            "unit: sectors\n\n"
            f"start={self.boot_offset // s}, size={self.boot_mib * MIB // s}, type=c, bootable\n"
            f"start={self.perm_offset // s}, size={self.perm_mib * MIB // s}, type=83\n"
        )


def boot_size_mib(kernel_bytes: int, initrd_bytes: int) -> int:
    """Room for two slots plus a bigger next image: 2.5x one slot, 64 MiB steps, >= 128."""
    need = int(2.5 * (kernel_bytes + initrd_bytes)) + 4 * MIB
    mib = -(-need // MIB)
    return max(128, -(-mib // 64) * 64)


def derived_id(epoch: int, what: str) -> bytes:
    return hashlib.sha256(f"router7 {what} {epoch}".encode()).digest()


def slot_cfg(slot: str, cmdline: str) -> str:
    return (
        f"LABEL {slot}\n"
        f"  KERNEL /{slot}/vmlinuz\n"
        f"  INITRD /{slot}/initrd\n"
        f"  APPEND {cmdline} router7.slot={slot}\n"
    )


def _run(argv: list[str], env: dict, stdin: str | None = None) -> None:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()}")


def pack(
    kernel: Path,
    initrd: Path,
    cmdline: str,
    out: Path,
    perm_mib: int = DEFAULT_PERM_MIB,
    boot_mib: int | None = None,
    epoch: int | None = None,
) -> DiskLayout:
    found = tools.require(tools.DISK_TOOLS)
    mbr = tools.syslinux_mbr().read_bytes()[:440]
    if epoch is None:
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    cmdline = " ".join(cmdline.split())
    layout = DiskLayout(
        boot_mib or boot_size_mib(kernel.stat().st_size, initrd.stat().st_size), perm_mib
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin",
        "SOURCE_DATE_EPOCH": str(epoch),
        "E2FSPROGS_FAKE_TIME": str(epoch),
        "MTOOLS_SKIP_CHECK": "1",
        "TZ": "UTC",
        "LC_ALL": "C",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    with tempfile.TemporaryDirectory(prefix="router7-disk-") as tmp:
        work = Path(tmp)
        # The boot partition's files, with fixed times (mcopy -m keeps them).
        files = work / "boot"
        files.mkdir()
        (files / "syslinux.cfg").write_text(SYSLINUX_CFG)
        (files / "default.cfg").write_text("DEFAULT A\n")
        for slot in SLOTS:
            d = files / slot
            d.mkdir()
            (d / "vmlinuz").write_bytes(kernel.read_bytes())
            (d / "initrd").write_bytes(initrd.read_bytes())
            (d / "cmdline").write_text(cmdline + "\n")
            (d / "slot.cfg").write_text(slot_cfg(slot, cmdline))
        for p in sorted(files.rglob("*")):
            os.utime(p, (epoch, epoch))

        boot = work / "boot.img"
        vol_id = derived_id(epoch, "boot").hex()[:8]
        _run(
            [found["mkfs.vfat"], "-C", "--invariant", "-n", BOOT_LABEL, "-i", vol_id,
             "-h", str(layout.boot_offset // SECTOR), str(boot), str(layout.boot_mib * 1024)],
            env,
        )  # fmt: skip
        for slot in SLOTS:
            _run([found["mmd"], "-i", str(boot), f"::/{slot}"], env)
        for p in sorted(files.rglob("*")):
            if p.is_file():
                rel = p.relative_to(files).as_posix()
                _run([found["mcopy"], "-m", "-i", str(boot), str(p), f"::/{rel}"], env)
        _run([found["syslinux"], "--install", str(boot)], env)

        perm = work / "perm.img"
        perm_root = work / "perm-root"
        perm_root.mkdir()
        os.utime(perm_root, (epoch, epoch))
        fs_uuid = uuid.UUID(bytes=derived_id(epoch, "perm")[:16], version=4)
        hash_seed = uuid.UUID(bytes=derived_id(epoch, "perm-hash")[:16], version=4)
        _run(
            [found["mkfs.ext4"], "-q", "-F", "-L", PERM_LABEL, "-U", str(fs_uuid),
             "-E", f"hash_seed={hash_seed},root_owner={ROUTER7_UID}:{ROUTER7_UID}",
             "-d", str(perm_root), str(perm), f"{layout.perm_mib}M"],
            env,
        )  # fmt: skip

        with open(tmp_out, "wb") as f:
            f.truncate(layout.size)
        disk_id = int.from_bytes(derived_id(epoch, "mbr")[:4], "little")
        _run([found["sfdisk"], "--no-reread", "--no-tell-kernel", "-q", str(tmp_out)], env,
             stdin=layout.sfdisk_script(disk_id))  # fmt: skip
        with open(tmp_out, "r+b") as f:
            f.seek(0)
            f.write(mbr)
            _copy_sparse(boot, f, layout.boot_offset)
            _copy_sparse(perm, f, layout.perm_offset)
    os.replace(tmp_out, out)
    return layout


def _copy_sparse(src: Path, dst, offset: int, chunk: int = MIB) -> None:
    """Copy src into dst at offset, skipping all-zero chunks (dst starts zeroed)."""
    zero = bytes(chunk)
    with open(src, "rb") as f:
        pos = offset
        while block := f.read(chunk):
            if block != zero[: len(block)]:
                dst.seek(pos)
                dst.write(block)
            pos += len(block)
