"""router7-recovery: the netbooted router installs itself (run by router7-recovery.target).

The kernel command line, written by router7-recover's boot script, says where
the laptop is and which address the firmware got:

    router7.recover=http://LAPTOP:PORT router7.recover_ip=A router7.recover_mask=M
    router7.recover_mac=MAC          (iPXE)   or   ip=A:S:G:M BOOTIF=01-MAC   (PXELINUX)

Steps, each reported to the laptop (router7.recover.progress): configure that
address on the NIC with that MAC; fetch the plan; find the one disk it can
identify; refuse a disk that holds a router7 /perm unless the plan says wipe or
serves a backup; write disk.img (checking size and sha256); restore the backup
into the new /perm with router7-restore, or write the default interfaces.json
(netconfigd's first-boot logic); sync; reboot into the installed system.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from ipaddress import IPv4Interface
from pathlib import Path

log = logging.getLogger("router7.recovery")

BLKRRPART = 0x125F
CHUNK = 4 << 20
EXT4_MAGIC = 0xEF53
PERM_LABEL = b"perm"
# Not disks to install on: virtual, optical, RAM, floppy, device-mapper, RAID.
SKIP_PREFIXES = ("loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd")


class Refused(RuntimeError):
    """The recovery system stops without touching the disk."""


class Failed(RuntimeError):
    """Something broke on the way; the message says where."""


@dataclass(frozen=True)
class Params:
    url: str
    address: IPv4Interface | None
    mac: str | None


def parse_cmdline(text: str) -> Params | None:
    args: dict[str, str] = {}
    for word in text.split():
        key, _, value = word.partition("=")
        args.setdefault(key, value)
    url = args.get("router7.recover")
    if not url:
        return None
    address = mac = None
    if "router7.recover_ip" in args:
        address = IPv4Interface(f"{args['router7.recover_ip']}/{args['router7.recover_mask']}")
        mac = args.get("router7.recover_mac")
    elif "ip" in args and args["ip"].count(":") >= 3:  # PXELINUX IPAPPEND 1
        client, _server, _gw, mask = args["ip"].split(":")[:4]
        address = IPv4Interface(f"{client}/{mask}")
    if mac is None and args.get("BOOTIF", "").startswith("01-"):  # PXELINUX IPAPPEND 2
        mac = args["BOOTIF"][3:].replace("-", ":")
    return Params(url.rstrip("/"), address, mac.lower() if mac else None)


# ---- reports


class Reporter:
    def __init__(self, url: str):
        self.url = url + "/progress"

    def __call__(self, stage: str, message: str = "", done: int = 0, total: int = 0) -> None:
        log.info("%s %s %s/%s", stage, message, done, total)
        body = json.dumps({"stage": stage, "message": message, "done": done, "total": total})
        req = urllib.request.Request(
            self.url, body.encode(), {"content-type": "application/json"}, method="POST"
        )
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except (OSError, urllib.error.URLError) as e:
            log.warning("could not report %s to %s: %s", stage, self.url, e)


# ---- network


def nic_by_mac(mac: str, sysfs: Path = Path("/sys")) -> str | None:
    for d in sorted((sysfs / "class/net").iterdir()):
        try:
            if (d / "address").read_text().strip().lower() == mac:
                return d.name
        except OSError:
            continue
    return None


def configure_network(params: Params, sysfs: Path = Path("/sys"), wait: float = 30) -> str:
    """Put the firmware's address on the NIC it booted from; returns its name."""
    if params.address is None or params.mac is None:
        raise Failed("the command line names no address and MAC (boot via router7-recover)")
    deadline = time.monotonic() + wait
    while (nic := nic_by_mac(params.mac, sysfs)) is None:
        if time.monotonic() > deadline:
            raise Failed(f"no network interface with MAC {params.mac}")
        time.sleep(0.5)
    subprocess.run(["ip", "link", "set", "dev", nic, "up"], check=True)
    subprocess.run(["ip", "addr", "replace", str(params.address), "dev", nic], check=True)
    return nic


def fetch_plan(url: str, wait: float = 60) -> dict:
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(url + "/plan", timeout=5) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError) as e:
            if time.monotonic() > deadline:
                raise Failed(f"cannot fetch the plan from {url}: {e}") from e
            time.sleep(1)


# ---- disks


@dataclass(frozen=True)
class Disk:
    name: str  # vda, sda, mmcblk0, nvme0n1
    size: int  # bytes
    partitions: tuple[str, ...]  # vda1, vda2 (by number)

    @property
    def dev(self) -> str:
        return f"/dev/{self.name}"

    def partition(self, number: int) -> str:
        sep = "p" if self.name[-1].isdigit() else ""
        return f"/dev/{self.name}{sep}{number}"


def disks(sysfs: Path = Path("/sys")) -> list[Disk]:
    """Disks that could be the router's: real devices, not removable, writable."""
    found = []
    for d in sorted((sysfs / "block").iterdir()):
        if d.name.startswith(SKIP_PREFIXES) or not (d / "device").exists():
            continue
        try:
            if (d / "removable").read_text().strip() == "1" or (
                d / "ro"
            ).read_text().strip() == "1":
                continue
            size = int((d / "size").read_text()) * 512
        except (OSError, ValueError):
            continue
        if size == 0:
            continue
        parts = sorted(
            (p.name for p in d.iterdir() if (p / "partition").exists()),
            key=lambda n: int((d / n / "partition").read_text()),
        )
        found.append(Disk(d.name, size, tuple(parts)))
    return found


def choose_disk(candidates: list[Disk], need: int) -> Disk:
    """The one disk: none or several and we cannot tell which is the router's."""
    if not candidates:
        raise Refused("no disk found: nothing to install on")
    if len(candidates) > 1:
        names = ", ".join(d.name for d in candidates)
        raise Refused(f"several disks ({names}): cannot tell which is the router's")
    disk = candidates[0]
    if disk.size < need:
        raise Refused(f"{disk.name} holds {disk.size >> 20} MiB, the image needs {need >> 20} MiB")
    return disk


def is_router7_perm(superblock_area: bytes) -> bool:
    """The first 2 KiB of a partition: ext4 labelled "perm"?"""
    if len(superblock_area) < 1024 + 136:
        return False
    sb = superblock_area[1024:]
    magic = int.from_bytes(sb[56:58], "little")
    label = sb[120:136].rstrip(b"\0")
    return magic == EXT4_MAGIC and label == PERM_LABEL


def holds_perm(disk: Disk, dev: Path = Path("/dev")) -> str | None:
    """The partition holding a router7 /perm, if any."""
    for part in disk.partitions:
        try:
            with open(dev / part, "rb") as f:
                if is_router7_perm(f.read(2048)):
                    return part
        except OSError:
            continue
    return None


# ---- writing


def write_image(url: str, dev: str, size: int, sha256: str | None, report) -> None:
    h = hashlib.sha256()
    written = 0
    last = -1
    fd = os.open(dev, os.O_WRONLY)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            while chunk := resp.read(CHUNK):
                _write_all(fd, chunk)
                h.update(chunk)
                written += len(chunk)
                pct = written * 20 // size if size else 0
                if pct != last:
                    last = pct
                    report("writing", dev, written, size)
        os.fsync(fd)
        if written != size:
            raise Failed(f"disk.img: got {written} bytes, expected {size}")
        if sha256 and h.hexdigest() != sha256:
            raise Failed("disk.img: sha256 differs from the manifest (download damaged)")
        fcntl.ioctl(fd, BLKRRPART)  # the kernel reads the new partition table
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def wait_for(path: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise Failed(f"{path} did not appear after writing the partition table")
        time.sleep(0.2)


def fill_perm(disk: Disk, plan: dict, report, mnt: Path) -> str:
    part = disk.partition(2)
    wait_for(part)
    mnt.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "ext4", part, str(mnt)], check=True)
    try:
        if plan.get("backup"):
            from router7.backupd import restore

            if restore.main([plan["backup"], "--perm", str(mnt)]) != 0:
                raise Failed("router7-restore failed (its message is in the journal)")
            what = "restored the backup"
        else:
            from router7.netconfigd import firstboot

            firstboot.ensure_interfaces(mnt)
            what = "wrote the default interfaces.json"
        os.sync()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
    return what


def install(params: Params, report, sysfs: Path = Path("/sys")) -> None:
    nic = configure_network(params, sysfs)
    plan = fetch_plan(params.url)
    report("booted", f"recovery system up on {nic} ({params.address})")
    disk = choose_disk(disks(sysfs), plan["disk_size"])
    perm = holds_perm(disk)
    if perm and not (plan.get("wipe") or plan.get("backup")):
        raise Refused(
            f"{disk.name} holds a router7 /perm ({perm}): not overwriting it "
            "without a backup to restore (--backup) or --wipe"
        )
    report(
        "disk",
        f"{disk.name}, {disk.size >> 20} MiB" + (f", replacing /perm on {perm}" if perm else ""),
    )
    write_image(plan["disk_image"], disk.dev, plan["disk_size"], plan.get("disk_sha256"), report)
    report("perm", fill_perm(disk, plan, report, Path("/run/router7-recovery/perm")))
    os.sync()
    report("synced", "all written")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="router7-recovery", description=__doc__.split("\n\n")[0])
    p.add_argument("--cmdline", type=Path, default=Path("/proc/cmdline"))
    p.add_argument("--no-reboot", action="store_true", help="stay up after installing")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="router7-recovery: %(message)s")
    params = parse_cmdline(args.cmdline.read_text())
    if params is None:
        print("router7-recovery: no router7.recover= on the kernel command line", file=sys.stderr)
        return 2
    report = Reporter(params.url)
    try:
        install(params, report)
    except (Refused, Failed, OSError, subprocess.CalledProcessError, KeyError) as e:
        kind = "refused" if isinstance(e, Refused) else "failed"
        log.error("%s: %s", kind, e)
        report("failed", f"{kind}: {e}")
        return 1
    report("done", "rebooting into the installed system")
    if not args.no_reboot:
        subprocess.run(["systemctl", "reboot"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
