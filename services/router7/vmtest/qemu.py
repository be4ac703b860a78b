"""The qemu launcher shared by router7-vmtest and `router7-lab up --vm`.

One `VmConfig` describes a router VM: two virtio-net NICs on tap devices
(uplink first in PCI order, then LAN: the image names them uplink0 and lan0),
the serial console (ttyS0) on a unix socket and logged to a file, QMP on a
unix socket, the test-shell virtio port (docs/vm-tests.md), and one of three
boot paths:

    disk     disk.img through SeaBIOS (a qcow2 overlay per run: the pristine
             image stays untouched, /perm lives in the overlay across reboots)
    netboot  qemu's iPXE ROM on a third NIC fetches netboot.ipxe, vmlinuz and
             initrd by TFTP from qemu's user-mode network (no server to run,
             nothing reachable from the lab; the disk is still attached for /perm)
    kernel   -kernel/-initrd/-append straight from the image dir (benchmarks,
             images without a disk)
    pxe      the NIC named by `pxe_nic` (default the LAN NIC) boots first with
             qemu's iPXE ROM, the disk second: netboot from a server on that
             segment (router7-recover), falling back to the disk when none answers

`blank_disk_mib` gives the VM an empty disk of that size instead of disk.img.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from pathlib import Path

from router7.vmtest import kvm

QEMU = "qemu-system-x86_64"
BOOT_MODES = ("disk", "netboot", "kernel", "pxe")
# Fixed PCI slots: NIC order in the guest must not depend on option order.
SLOT_NIC0 = 0x4
SLOT_TESTSHELL = 0x8
SLOT_DISK = 0x9
SLOT_BOOTNIC = 0xA
SLOT_WATCHDOG = 0xB


class QemuError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Nic:
    id: str  # qemu device id, usable in `set_link <id> off`
    tap: str  # tap device in the namespace qemu runs in
    mac: str | None = None


@dataclasses.dataclass
class VmConfig:
    name: str
    state_dir: Path
    image_dir: Path
    nics: list[Nic]
    boot: str = "disk"
    memory_mib: int = 1024
    # Two vCPUs: TCG runs one host thread per vCPU, and ten Python services start at once.
    cpus: int = dataclasses.field(
        default_factory=lambda: int(os.environ.get("ROUTER7_VM_CPUS", "2"))
    )
    netns: str | None = None  # run qemu inside this network namespace (tap devices live there)
    allow_reboot: bool = True
    extra_args: list[str] = dataclasses.field(default_factory=list)
    blank_disk_mib: int | None = None  # an empty disk instead of an overlay over disk.img
    pxe_nic: str = "lan"  # boot="pxe": the NIC (id) that netboots

    def __post_init__(self) -> None:
        if self.boot not in BOOT_MODES:
            raise QemuError(f"unknown boot mode {self.boot!r}: want one of {', '.join(BOOT_MODES)}")
        if self.memory_mib < 1024:
            raise QemuError("the router image needs at least 1024 MiB")

    # Files in the state dir.
    @property
    def qmp_socket(self) -> Path:
        return self.state_dir / "qmp.sock"

    @property
    def shell_socket(self) -> Path:
        return self.state_dir / "testshell.sock"

    @property
    def console_socket(self) -> Path:
        return self.state_dir / "console.sock"

    @property
    def console_log(self) -> Path:
        return self.state_dir / "console.log"

    @property
    def qemu_log(self) -> Path:
        return self.state_dir / "qemu.log"

    @property
    def disk(self) -> Path:
        return self.state_dir / "disk.qcow2"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "qemu.pid"


def prepare_disk(cfg: VmConfig) -> Path:
    """A qcow2 overlay over the pristine disk.img (or a blank disk), created once per
    state dir."""
    if not cfg.disk.exists() and cfg.blank_disk_mib:
        subprocess.run(
            ["qemu-img", "create", "-q", "-f", "qcow2", str(cfg.disk), f"{cfg.blank_disk_mib}M"],
            check=True,
        )
    if not cfg.disk.exists():
        base = (cfg.image_dir / "disk.img").resolve()
        if not base.is_file():
            raise QemuError(f"no disk image {base} (build it: router7-image build)")
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(base),
                str(cfg.disk),
            ],
            check=True,
        )
    return cfg.disk


# TCG keeps translated code per guest page, and a guest write into such a page takes
# qemu's slow path until the code there is overwritten. With the default 1 GiB cache
# nothing is ever dropped (one boot translates ~900 MB), so a kexec'd kernel writing
# into memory the old system ran code from crawled: 90 s initramfs unpacks, minutes-long
# boots. A 256 MiB cache is flushed a few times per boot, which clears that tracking;
# boots are no slower, and each VM's host memory is 768 MiB smaller (docs/vm-tests.md).
TCG_CACHE_MIB = 256


def accel_option(accel: str) -> str:
    return f"tcg,tb-size={TCG_CACHE_MIB}" if accel == "tcg" else accel


def argv(cfg: VmConfig, accel: str | None = None) -> list[str]:
    """The qemu command line for `cfg` (accel: "kvm"/"tcg", probed if None)."""
    if accel is None:
        accel, _ = kvm.accelerator(cfg.image_dir / "vmlinuz")
    a = [
        QEMU, "-name", cfg.name, "-machine", "pc", "-accel", accel_option(accel),
        "-cpu", "host" if accel == "kvm" else "max",
        "-smp", str(cfg.cpus), "-m", str(cfg.memory_mib),
        "-nodefaults", "-vga", "std", "-display", "none",
        "-chardev", f"socket,id=serial0,path={cfg.console_socket},server=on,wait=off,"
        f"logfile={cfg.console_log},logappend=on",
        "-serial", "chardev:serial0",
        "-qmp", f"unix:{cfg.qmp_socket},server=on,wait=off",
        "-device", f"virtio-serial-pci,id=virtio-serial0,addr={SLOT_TESTSHELL:#x}",
        "-chardev", f"socket,id=testshell,path={cfg.shell_socket},server=on,wait=off",
        "-device", "virtserialport,chardev=testshell,name=org.router7.testshell",
        "-device", "virtio-rng-pci",
        # A hardware watchdog, as the apu2c4's sp5100_tco: systemd keeps it, and a hung
        # system (say, an update on trial) is reset into the bootloader's default slot.
        "-device", f"i6300esb,addr={SLOT_WATCHDOG:#x}", "-action", "watchdog=reset",
    ]  # fmt: skip
    for i, nic in enumerate(cfg.nics):
        dev = f"virtio-net-pci,netdev={nic.id}-net,id={nic.id},addr={SLOT_NIC0 + i:#x}"
        # Only a netbooting NIC keeps qemu's iPXE ROM (each ROM costs boot time).
        dev += ",bootindex=1" if cfg.boot == "pxe" and nic.id == cfg.pxe_nic else ",romfile="
        if nic.mac:
            dev += f",mac={nic.mac}"
        a += ["-netdev", f"tap,id={nic.id}-net,ifname={nic.tap},script=no,downscript=no"]
        a += ["-device", dev]
    if cfg.boot in ("disk", "netboot", "pxe"):
        # Netboot: the disk holds /perm but is no boot device, and strict boot order
        # keeps SeaBIOS from falling back to it: a boot proves the netboot path.
        bootindex = {"disk": ",bootindex=1", "pxe": ",bootindex=2"}.get(cfg.boot, "")
        a += ["-drive", f"file={cfg.disk},if=none,id=disk0,format=qcow2,cache=unsafe"]
        a += ["-device", f"virtio-blk-pci,drive=disk0,addr={SLOT_DISK:#x}{bootindex}"]
    if cfg.boot == "netboot":
        a += ["-boot", "strict=on"]
        a += [
            "-netdev", f"user,id=boot-net,restrict=on,tftp={cfg.image_dir},bootfile=netboot.ipxe",
            "-device", f"virtio-net-pci,netdev=boot-net,id=bootnic,addr={SLOT_BOOTNIC:#x},bootindex=1",
        ]  # fmt: skip
    if cfg.boot == "kernel":
        cmdline = (cfg.image_dir / "cmdline").read_text().strip()
        a += ["-kernel", str(cfg.image_dir / "vmlinuz"), "-initrd", str(cfg.image_dir / "initrd")]
        a += ["-append", cmdline]
    if not cfg.allow_reboot:
        a.append("-no-reboot")
    return a + cfg.extra_args


def spawn(cfg: VmConfig, accel: str | None = None) -> subprocess.Popen:
    """Start qemu for `cfg` (detached from our terminal); returns the process."""
    if not shutil.which(QEMU):
        raise QemuError(f"{QEMU} not found: run ./scripts/setup (installs qemu-system-x86)")
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    for sock in (cfg.qmp_socket, cfg.shell_socket, cfg.console_socket):
        sock.unlink(missing_ok=True)
    if cfg.boot in ("disk", "netboot", "pxe"):
        prepare_disk(cfg)
    cmd = argv(cfg, accel)
    if cfg.netns:
        cmd = ["ip", "netns", "exec", cfg.netns, *cmd]
    log = cfg.qemu_log.open("ab")
    log.write(("$ " + " ".join(cmd) + "\n").encode())
    log.flush()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    log.close()
    cfg.pidfile.write_text(f"{proc.pid}\n")
    return proc


def running_pid(cfg: VmConfig) -> int | None:
    """The pid of this state dir's qemu if it still runs (for the lab CLI)."""
    try:
        pid = int(cfg.pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if str(cfg.qmp_socket).encode() in cmdline else None


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def environment_note() -> str:
    accel, why = kvm.accelerator()
    return f"qemu accel {accel} ({why}), pid {os.getpid()}"
