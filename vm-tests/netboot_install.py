# router7-vmtest: boot=pxe blank-disk-mib=512 nix=none
# Recovery by PXE (docs/recovery.md): a router with a blank disk netboots from
# router7-recover on a LAN host, installs the image and the backup, reboots from its
# disk and comes back as the backup's router: its DUID, a /48 from the ISP for that
# DUID, the LAN host online at the address its lease in the backup names. Then a second recovery without backup and without --wipe
# refuses to touch the disk that now holds a router.
#
# The backup is crafted here with router7.backupd.archive from a known /perm (a DUID
# that no NIC of this VM would generate, and a DHCPv4 lease for the LAN host written
# by dhcp4d's own store), not taken from another router: one VM less.
import os
import shutil
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

from router7.backupd.archive import backup_stream
from router7.dhcp4d.leases import Lease
from router7.dhcp4d.store import save as save_leases
from router7.lab.addresses import mac_for
from router7.lab.scenario import LEASE6, read_json, wait_online

RECOVER = shutil.which("router7-recover") or str(Path(sys.executable).with_name("router7-recover"))
IMAGE = driver.image_dir  # noqa: F821 (a global of router7-vmtest's driver)
LAPTOP = "192.168.42.250"
DUID = "00030001027237dead01"  # DUID-LL, type 3, hardware type 1, MAC 02:72:37:de:ad:01
DUID_BYTES = [DUID[i : i + 2] for i in range(0, len(DUID), 2)]
ROUTER7_UID = 400
LAN_HOST_ADDR = "192.168.42.77"  # the LAN host's lease in the backup
work = Path(tempfile.mkdtemp(prefix="netboot-install-"))


def craft_backup() -> Path:
    perm = work / "perm"
    (perm / "dhcp6").mkdir(parents=True)
    (perm / "dhcp6" / "duid").write_bytes(bytes.fromhex(DUID))
    (perm / "dhcp4d").mkdir()
    lan_mac = mac_for(driver.lab.prefix, "lan1", "eth0")  # noqa: F821
    now = time.time()
    lease = Lease(IPv4Address(LAN_HOST_ADDR), lan_mac, "lan1", expiry=now + 86400, last_ack=now)
    save_leases(perm / "dhcp4d" / "leases.json", [lease])
    for p in [perm, *perm.rglob("*")]:
        os.chown(p, ROUTER7_UID, ROUTER7_UID)
    backup = work / "backup.tar.gz"
    with backup.open("wb") as f:
        for chunk in backup_stream(perm):
            f.write(chunk)
    return backup


def start_recover(name: str, *args: str) -> str:
    log = work / f"{name}.log"
    lan2.succeed(
        f"{RECOVER} --interface eth0 --image-dir {IMAGE} --timeout 1500 --log-level info "
        f"{' '.join(args)} >{log} 2>&1 </dev/null & echo $! >{work / name}.pid"
    )
    lan2.wait_until_succeeds(f"grep -q serving {log}", timeout=60)
    return str(log)


def recover_result(name: str, timeout: int = 1500) -> str:
    """router7-recover's exit code and output once it has ended."""
    pid = (work / f"{name}.pid").read_text().strip()
    lan2.wait_until_fails(f"kill -0 {pid}", timeout=timeout)
    return (work / f"{name}.log").read_text()


lan2.succeed(f"ip addr add {LAPTOP}/24 dev eth0")
backup = craft_backup()

with subtest("a blank disk netboots from router7-recover and installs the backup"):
    started = time.monotonic()
    start_recover("install", "--backup", str(backup))
    router.start(allow_reboot=True)
    out = recover_result("install")
    assert "the router is installed and reboots" in out, out
    for stage in ("booted", "disk", "writing", "perm", "synced", "done"):
        assert f"\n{stage}" in "\n" + out, f"no {stage} report:\n{out}"
    log.log(f"netboot + install took {time.monotonic() - started:.0f}s")

with subtest("it boots from its disk as the backup's router"):
    started = time.monotonic()
    # iPXE finds no DHCP server now and SeaBIOS boots the disk; waiting for its init's
    # line first keeps the test shell from talking to the recovery system on its way out.
    router.wait_for_console_text("router7-init: /perm is /dev/vda2", timeout=900)
    up = wait_online(router, lan)
    assert router.succeed("findmnt -n -o FSTYPE /perm").strip() == "ext4"
    assert "router7.recover" not in router.succeed("cat /proc/cmdline")
    assert router.succeed("od -An -tx1 /perm/dhcp6/duid").split() == DUID_BYTES
    assert read_json(router, LEASE6)["client_duid"] == DUID
    # kea delegated this /48 to the backup's DUID (kea writes DUIDs as aa:bb:...)
    pd = [lease for lease in driver.lab.leases6() if lease["prefix"] == str(up.delegated)]  # noqa: F821
    assert [lease["duid"].replace(":", "") for lease in pd] == [DUID], pd
    assert str(up.lan_v4.ip) == LAN_HOST_ADDR, f"the LAN host got {up.lan_v4}"
    log.log(f"delegated {up.delegated} to DUID {DUID}; LAN host {up.lan_v4}")
    log.log(f"reboot from disk to online took {time.monotonic() - started:.0f}s")

with subtest("a second recovery without backup or --wipe refuses to touch the disk"):
    start_recover("refuse")
    router.succeed("sync")
    router.reboot()
    out = recover_result("refuse")
    assert "FAILED: refused: vda holds a router7 /perm" in out, out
    # The recovery system stays up: its test shell reads the untouched disk.
    assert "router7.recover=" in router.succeed("cat /proc/cmdline")
    router.succeed("mkdir -p /mnt/old && mount -o ro /dev/vda2 /mnt/old")
    assert router.succeed("od -An -tx1 /mnt/old/dhcp6/duid").split() == DUID_BYTES

shutil.rmtree(work, ignore_errors=True)
