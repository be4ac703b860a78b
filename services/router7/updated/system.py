"""The acts that need CAP_SYS_BOOT (kexec, reboot) and the facts of this boot.

Both acts flush the file systems first and do not ask systemd to stop the
services: /perm is a journalled ext4 whose state files are written atomically,
and the few seconds of an orderly stop are seconds of lost connectivity.
"""

from __future__ import annotations

import ctypes
import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

KEXEC = "kexec"
RB_AUTOBOOT = 0x01234567


def proc_cmdline(path: str = "/proc/cmdline") -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def uptime(path: str = "/proc/uptime") -> float:
    return float(Path(path).read_text().split()[0])


def version(path: str = "/etc/router7/version") -> str:
    try:
        return Path(path).read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def kexec_load(kernel: Path, initrd: Path, cmdline: str) -> None:
    """Load the next kernel; raises RuntimeError with kexec's message.

    kexec_file_load(2) (-s): the kernel reads the files itself, so CAP_SYS_BOOT is
    enough; kexec_load(2) needs the memory map that only root may read."""
    argv = [KEXEC, "-s", "-l", str(kernel), f"--initrd={initrd}", f"--command-line={cmdline}"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kexec -l failed ({proc.returncode}): {proc.stderr.strip()}")


def kexec_exec() -> None:
    """Jump into the loaded kernel now. Returns only on failure."""
    os.sync()
    log.warning("kexec: starting the new kernel")
    proc = subprocess.run([KEXEC, "-e"], capture_output=True, text=True)
    raise RuntimeError(f"kexec -e failed ({proc.returncode}): {proc.stderr.strip()}")


def reboot() -> None:
    """Reboot now through the firmware and bootloader (reboot(2)). Returns only on failure."""
    os.sync()
    log.warning("rebooting")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.reboot(RB_AUTOBOOT) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"reboot: {os.strerror(err)}")
