"""What the laptop serves: the image's files, the boot scripts and the plan.

Boot paths (docs/recovery.md):
    iPXE (the apu2c4's firmware, qemu's NIC ROMs)   DHCP boot file "boot.ipxe" by
        TFTP; the script loads vmlinuz and initrd over HTTP (fast, unlike TFTP).
    a plain PXE ROM   "lpxelinux.0" by TFTP (PXELINUX that speaks HTTP, from
        Debian's pxelinux package), its config "pxelinux.cfg/default" by TFTP,
        then vmlinuz and initrd over HTTP.
Both add `router7.recover=URL` (the laptop's HTTP root) and the address the
firmware got to the kernel command line: the recovery system configures that
address itself instead of running a DHCP client.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

IMAGE_FILES = ("vmlinuz", "initrd", "cmdline", "disk.img")
PXELINUX_DIRS = (Path("/usr/lib/PXELINUX"), Path("/usr/lib/syslinux/modules/bios"))
PXELINUX_FILES = ("lpxelinux.0", "ldlinux.c32")
BACKUP_NAME = "backup.tar.gz"
# The recovery system runs this target instead of the router's (pkgs/systemd/).
RECOVERY_UNIT = "systemd.unit=router7-recovery.target"


class ImageError(ValueError):
    pass


@dataclass(frozen=True)
class Served:
    image_dir: Path
    base_url: str  # http://SERVER:PORT
    backup: Path | None = None
    wipe: bool = False

    def check(self) -> None:
        """Every image file is there, and the backup if one was named: fail before
        the router is reset, naming the file."""
        for name in IMAGE_FILES:
            if not (self.image_dir / name).is_file():
                raise ImageError(
                    f"{self.image_dir / name}: missing (build the image: router7-image build)"
                )
        if self.backup is not None and not self.backup.is_file():
            raise ImageError(f"{self.backup}: no such backup file")

    @property
    def cmdline(self) -> str:
        base = (self.image_dir / "cmdline").read_text().strip()
        return f"{base} router7.recover={self.base_url} {RECOVERY_UNIT}"

    def ipxe_script(self) -> str:
        return (
            "#!ipxe\n"
            "# router7-recover: boot the recovery system (docs/recovery.md)\n"
            f"kernel {self.base_url}/vmlinuz initrd=initrd {self.cmdline}"
            " router7.recover_ip=${ip} router7.recover_mask=${netmask}"
            " router7.recover_mac=${mac}\n"
            f"initrd {self.base_url}/initrd\n"
            "boot\n"
        )

    def pxelinux_config(self) -> str:
        # IPAPPEND 3 adds ip=CLIENT:SERVER:GW:MASK and BOOTIF=01-MAC.
        return (
            "DEFAULT recover\n"
            "LABEL recover\n"
            f"  KERNEL {self.base_url}/vmlinuz\n"
            f"  INITRD {self.base_url}/initrd\n"
            f"  APPEND {self.cmdline}\n"
            "  IPAPPEND 3\n"
        )

    def plan(self) -> dict:
        """What the recovery system does: fetched from /plan before it writes."""
        disk = self.image_dir / "disk.img"
        plan = {
            "disk_image": f"{self.base_url}/disk.img",
            "disk_size": disk.stat().st_size,
            "wipe": self.wipe,
            "backup": f"{self.base_url}/{BACKUP_NAME}" if self.backup else None,
        }
        manifest = self.image_dir / "manifest.json"
        if manifest.is_file():
            try:
                sha = json.loads(manifest.read_text())["files"]["disk.img"]["sha256"]
                plan["disk_sha256"] = sha
            except (ValueError, KeyError, TypeError):
                pass
        return plan

    # ---- lookups for TFTP and HTTP

    def tftp_lookup(self, name: str) -> bytes | Path | None:
        if name == "boot.ipxe":
            return self.ipxe_script().encode()
        if name == "pxelinux.cfg/default" or name.startswith("pxelinux.cfg/"):
            return self.pxelinux_config().encode()
        if name in PXELINUX_FILES:
            return find_pxelinux(name)
        if name in ("vmlinuz", "initrd"):
            return self.image_dir / name
        return None

    def http_file(self, name: str) -> Path | None:
        if name in ("vmlinuz", "initrd", "disk.img", "cmdline", "manifest.json"):
            p = self.image_dir / name
            return p if p.is_file() else None
        if name == BACKUP_NAME and self.backup is not None:
            return self.backup
        return None


def find_pxelinux(name: str) -> Path | None:
    for d in PXELINUX_DIRS:
        if (d / name).is_file():
            return d / name
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
