"""The driver against the real image: both boot paths, and how failures read.

One disk boot serves these tests (netboot: test_netboot.py, a second boot
after this one ends).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from router7.vmtest.driver import Driver
from router7.vmtest.machine import RequestedAssertionFailed

UNITS_UP = """
start_all()
router.wait_for_unit("router7-netconfigd.service", timeout=900)
router.succeed("test -d /perm")
"""


def _driver(tmp_path: Path, image: Path, boot: str) -> Driver:
    script = tmp_path / f"boot_{boot}.py"
    script.write_text(UNITS_UP)
    return Driver(script, image_dir=image, boot=boot, echo=False)


@pytest.fixture(scope="module")
def disk_booted(router_image, tmp_path_factory):
    d = _driver(tmp_path_factory.mktemp("disk"), router_image, "disk")
    with d:
        start = time.monotonic()
        d.run()
        print(f"\ndisk boot to router7-netconfigd active: {time.monotonic() - start:.1f}s")
        yield d


@pytest.mark.vm
def test_disk_boot_through_seabios_brings_up_the_units(disk_booted):
    router = disk_booted.router
    # syslinux (on the disk, started by SeaBIOS) adds BOOT_IMAGE= to the command line.
    assert "BOOT_IMAGE=" in router.succeed("cat /proc/cmdline")
    out = router.succeed("systemctl is-active router7-netconfigd.service")
    assert out.strip() == "active"
    # The first NIC in PCI order is the uplink.
    assert "02:72:37" in router.succeed("cat /sys/class/net/*/address")


@pytest.mark.vm
def test_a_failing_succeed_reports_machine_command_output_and_exit_code(disk_booted):
    router = disk_booted.router
    with pytest.raises(RequestedAssertionFailed) as err:
        router.succeed("echo partial output; echo why it failed >&2; exit 42")
    text = str(err.value)
    assert text.startswith("router: command `echo partial output; echo why it failed >&2; exit 42`")
    assert "exit code 42" in text
    assert "partial output" in text
    assert "why it failed" in text


@pytest.mark.vm
def test_monitor_commands_reach_qemu(disk_booted):
    router = disk_booted.router
    assert "uplink: index=" in router.send_monitor_command("info network")
    mac = router.config.nics[0].mac
    dev = router.succeed(f"grep -l {mac} /sys/class/net/*/address | cut -d/ -f5").strip()
    router.succeed(f"ip link set {dev} up")
    router.send_monitor_command("set_link uplink off")
    router.wait_until_succeeds(f"test $(cat /sys/class/net/{dev}/carrier) = 0", timeout=60)
    router.send_monitor_command("set_link uplink on")
    router.wait_until_succeeds(f"test $(cat /sys/class/net/{dev}/carrier) = 1", timeout=60)
