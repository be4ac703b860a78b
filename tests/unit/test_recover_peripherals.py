"""router7-recover's optional peripherals: the serial console (through pyserial,
against a pty standing in for qemu's serial port) and the Teensy rebootor
(against a fake hidraw file that records what was written)."""

from __future__ import annotations

import io
import os
import pty
import time
from pathlib import Path

import pytest

from router7.recover import rebootor
from router7.recover.console import Console, ConsoleError


def fake_hidraw(sysfs: Path, name: str, hid_id: str) -> None:
    d = sysfs / "class/hidraw" / name / "device"
    d.mkdir(parents=True)
    (d / "uevent").write_text(f"DRIVER=hid-generic\nHID_ID={hid_id}\nHID_NAME=Teensy\n")


def test_rebootor_writes_the_reboot_report(tmp_path):
    dev = tmp_path / "hidraw3"
    dev.write_bytes(b"")
    assert rebootor.reset(dev, sysfs=tmp_path / "nosys") == dev
    assert dev.read_bytes() == b"\x00reboot"


def test_rebootor_refuses_another_hid_device_and_finds_the_right_one(tmp_path):
    sysfs = tmp_path / "sys"
    fake_hidraw(sysfs, "hidraw0", "0003:0000046D:0000C52B")  # a mouse receiver
    fake_hidraw(sysfs, "hidraw1", "0003:000016C0:00000477")
    dev = tmp_path / "hidraw0"
    dev.write_bytes(b"")
    with pytest.raises(rebootor.RebootorError, match="046d:c52b, not a rebootor"):
        rebootor.reset(dev, sysfs=sysfs)
    assert dev.read_bytes() == b""
    assert rebootor.find(sysfs) == Path("/dev/hidraw1")
    with pytest.raises(rebootor.RebootorError, match="no rebootor"):
        rebootor.reset("auto", sysfs=tmp_path / "empty")
    with pytest.raises(rebootor.RebootorError, match="No such file"):
        rebootor.reset(tmp_path / "hidraw9", sysfs=sysfs)


def test_console_logs_everything_and_shows_boot_stages(tmp_path):
    pytest.importorskip("serial")
    master, slave = pty.openpty()
    out = io.StringIO()
    console = Console(os.ttyname(slave), tmp_path / "console.log", out=out)
    console.start()
    try:
        os.write(
            master,
            b"iPXE 1.21.1+ -- Open Source Network Boot Firmware\r\n"
            b"[    0.000000] Linux version 6.1.0-57-amd64\r\n"
            b"noise\r\n"
            b"router7-recovery: writing /dev/vda\r\n",
        )
        deadline = time.monotonic() + 20
        while len(console.stages) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        console.stop()
        os.close(master)
        os.close(slave)
    assert console.stages == [
        "iPXE 1.21.1+ -- Open Source Network Boot Firmware",
        "[    0.000000] Linux version 6.1.0-57-amd64",
        "router7-recovery: writing /dev/vda",
    ]
    assert "console: router7-recovery: writing /dev/vda" in out.getvalue()
    assert b"noise\r\n" in (tmp_path / "console.log").read_bytes()


def test_console_names_a_bad_url(tmp_path):
    pytest.importorskip("serial")
    with pytest.raises(ConsoleError, match="--serial /dev/nonexistent-tty"):
        Console("/dev/nonexistent-tty", tmp_path / "log").start()
