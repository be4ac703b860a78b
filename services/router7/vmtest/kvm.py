"""Does hardware virtualisation really work? /dev/kvm can exist and still fail.

Two steps: the kernel must hand out a VM and a vCPU (ioctls, instant), then a
real boot must get going: qemu with `-accel kvm -cpu host` starts the image's
kernel without an initrd and must reach the kernel's root-mount panic within a
few seconds. On hosts whose nested KVM is broken, qemu aborts on an MSR or the
kernel hangs early; both mean TCG. The verdict is cached per host boot under
/run; ROUTER7_VM_ACCEL=kvm|tcg overrides it.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_API_VERSION = 12
CACHE_DIR = Path("/run/router7-vmtest")
PROBE_SECONDS = 10


def kvm_ioctls_work(dev: str = "/dev/kvm") -> tuple[bool, str]:
    """(works, why): open the device, check the API version, create a VM and a vCPU."""
    try:
        fd = os.open(dev, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return False, f"cannot open {dev}: {e.strerror}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION, 0)
        if version != KVM_API_VERSION:
            return False, f"{dev}: KVM API version {version}, want {KVM_API_VERSION}"
        vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        try:
            os.close(fcntl.ioctl(vm, KVM_CREATE_VCPU, 0))
        finally:
            os.close(vm)
    except OSError as e:
        return False, f"{dev}: creating a VM failed: {e.strerror}"
    finally:
        os.close(fd)
    return True, "KVM ioctls work"


def kvm_boots(kernel: Path, qemu: str = "qemu-system-x86_64") -> tuple[bool, str]:
    """Boot `kernel` (no initrd) under KVM; it works if the kernel gets to its panic."""
    argv = [
        qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none",
        "-no-reboot", "-serial", "stdio", "-kernel", str(kernel),
        "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
    ]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=PROBE_SECONDS, check=False)
        out = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        if b"Kernel panic" in out:
            return True, "a kernel boots under KVM"
        return False, f"a kernel did not boot under KVM within {PROBE_SECONDS}s"
    if b"Kernel panic" in out or b"VFS:" in out:
        return True, "a kernel boots under KVM"
    last = out.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
    return False, f"qemu -accel kvm failed: {last[0][:200]}"


@functools.cache
def accelerator(kernel: Path | None = None) -> tuple[str, str]:
    """("kvm" or "tcg", reason), probed once per process and cached per host boot."""
    forced = os.environ.get("ROUTER7_VM_ACCEL", "").strip()
    if forced in ("kvm", "tcg"):
        return forced, f"ROUTER7_VM_ACCEL={forced}"
    works, why = kvm_ioctls_work()
    if not works:
        return "tcg", why
    if kernel is None or not kernel.exists() or not shutil.which("qemu-system-x86_64"):
        return "tcg", "no kernel to probe KVM with"
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    key = hashlib.sha256(f"{boot_id}:{kernel.stat().st_size}".encode()).hexdigest()[:16]
    cache = CACHE_DIR / f"kvm-probe-{key}"
    if cache.exists():
        accel, _, why = cache.read_text().partition(" ")
        return accel, why.strip() + " (cached)"
    works, why = kvm_boots(kernel)
    accel = "kvm" if works else "tcg"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Atomically: parallel test workers probe at once and read each other's verdict.
    tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{accel} {why}\n")
    tmp.replace(cache)
    return accel, why
