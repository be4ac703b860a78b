"""The boot partition as files: slots A and B, and default.cfg naming the one syslinux boots.

The FAT partition labelled ROUTER7BOOT is mounted on /boot (owned by the router7
user: pkgs/debian/init mounts it; NixOS: fileSystems in pkgs/nixos/appliance.nix), so writing a slot needs no privilege.
A slot is written as dot-prefixed temp files, fsynced, then renamed into place;
it is only booted by syslinux once ``default.cfg`` names it, and that happens
only after the new system proved healthy (commit). A half-written slot is
therefore never the one a reboot picks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SLOTS = ("A", "B")
FILES = ("vmlinuz", "initrd")
DEFAULT_CFG = "default.cfg"


class BootError(Exception):
    """The boot partition cannot do what was asked; the message says why."""


def other(slot: str) -> str:
    return "B" if slot == "A" else "A"


def cmdline_args(text: str) -> dict[str, str]:
    """``key=value`` words of a kernel command line (a bare word maps to "")."""
    out = {}
    for word in text.split():
        key, _, value = word.partition("=")
        out[key] = value
    return out


def slot_cfg(slot: str, cmdline: str) -> str:
    """The syslinux entry of a slot (the same text the disk packer writes)."""
    return (
        f"LABEL {slot}\n"
        f"  KERNEL /{slot}/vmlinuz\n"
        f"  INITRD /{slot}/initrd\n"
        f"  APPEND {cmdline} router7.slot={slot}\n"
    )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # vfat directories may refuse fsync; the file fsyncs and rename still hold
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.new")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


@dataclass
class BootPartition:
    root: Path  # where ROUTER7BOOT is mounted

    def present(self) -> bool:
        return (self.root / DEFAULT_CFG).is_file() and (self.root / "syslinux.cfg").is_file()

    def default_slot(self) -> str:
        try:
            text = (self.root / DEFAULT_CFG).read_text()
        except OSError as e:
            raise BootError(f"{self.root / DEFAULT_CFG}: {e.strerror or e}") from e
        for line in text.splitlines():
            words = line.split()
            if len(words) == 2 and words[0].upper() == "DEFAULT" and words[1] in SLOTS:
                return words[1]
        raise BootError(f"{self.root / DEFAULT_CFG}: no 'DEFAULT A' or 'DEFAULT B' line")

    def set_default(self, slot: str) -> None:
        """The commit: syslinux boots ``slot`` from now on."""
        if slot not in SLOTS:
            raise BootError(f"no slot {slot!r}")
        write_atomic(self.root / DEFAULT_CFG, f"DEFAULT {slot}\n".encode())

    def slot_dir(self, slot: str) -> Path:
        return self.root / slot

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def slot_bytes(self, slot: str) -> int:
        total = 0
        for name in FILES:
            with contextlib.suppress(OSError):
                total += (self.slot_dir(slot) / name).stat().st_size
        return total

    def staging(self, slot: str, name: str) -> Path:
        """Where an upload of ``name`` for ``slot`` lands before it is verified."""
        return self.slot_dir(slot) / f".{name}.upload"

    def install(self, slot: str, cmdline: str, version: str) -> None:
        """Move verified uploads into ``slot`` (each file fsynced, then renamed)."""
        d = self.slot_dir(slot)
        d.mkdir(exist_ok=True)
        for name in FILES:
            src = self.staging(slot, name)
            if not src.is_file():
                raise BootError(f"{name} was not uploaded")
            with open(src, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(src, d / name)
        write_atomic(d / "cmdline", (cmdline + "\n").encode())
        write_atomic(d / "slot.cfg", slot_cfg(slot, cmdline).encode())
        write_atomic(d / "version", (version + "\n").encode())
        _fsync_dir(d)

    def discard_uploads(self, slot: str) -> None:
        for name in FILES:
            with contextlib.suppress(FileNotFoundError):
                self.staging(slot, name).unlink()

    def slot_version(self, slot: str) -> str | None:
        try:
            return (self.slot_dir(slot) / "version").read_text().strip() or None
        except OSError:
            return None

    def slot_cmdline(self, slot: str) -> str:
        try:
            return (self.slot_dir(slot) / "cmdline").read_text().strip()
        except OSError as e:
            raise BootError(f"{self.slot_dir(slot) / 'cmdline'}: {e.strerror or e}") from e
