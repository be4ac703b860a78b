"""Reset the router through a Teensy "rebootor" (optional: `--rebootor DEV`).

The original's rebootor is a Teensy++ running PJRC's rebootor firmware, wired to
the apu2's reset line (J2 pin 5, GND on pin 4). It is a USB HID device with
VID 0x16C0, PID 0x0477; the original sends it the 6-byte output report "reboot"
as a HID SET_REPORT control transfer. Linux's hidraw does the same for us: a
write of report number 0 followed by the report becomes SET_REPORT (output) when
the device has no interrupt-out endpoint. So no libusb: one write to
/dev/hidrawN, which the owner can grant with a udev rule (docs/recovery.md).
"""

from __future__ import annotations

import os
from pathlib import Path

VID, PID = 0x16C0, 0x0477
REPORT = b"\x00reboot"  # report number 0 (no numbered reports), then the 6-byte report


class RebootorError(RuntimeError):
    pass


def hid_id(device: Path, sysfs: Path = Path("/sys")) -> tuple[int, int] | None:
    """(vid, pid) of a hidraw device from sysfs, or None if sysfs does not know it."""
    uevent = sysfs / "class/hidraw" / device.name / "device/uevent"
    try:
        text = uevent.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("HID_ID="):  # HID_ID=0003:000016C0:00000477
            _bus, vid, pid = line.split("=", 1)[1].split(":")
            return int(vid, 16), int(pid, 16)
    return None


def find(sysfs: Path = Path("/sys")) -> Path | None:
    """The first attached rebootor's /dev/hidrawN."""
    base = sysfs / "class/hidraw"
    if not base.is_dir():
        return None
    for d in sorted(base.iterdir()):
        if hid_id(Path("/dev") / d.name, sysfs) == (VID, PID):
            return Path("/dev") / d.name
    return None


def reset(device: Path | str, sysfs: Path = Path("/sys")) -> Path:
    """Send "reboot"; `device` is a path or "auto". Refuses a hidraw of another kind."""
    if str(device) == "auto":
        found = find(sysfs)
        if found is None:
            raise RebootorError(
                f"no rebootor (USB {VID:04x}:{PID:04x}) attached: reset the router by hand"
            )
        device = found
    device = Path(device)
    ident = hid_id(device, sysfs)
    if ident is not None and ident != (VID, PID):
        raise RebootorError(
            f"{device} is USB {ident[0]:04x}:{ident[1]:04x}, not a rebootor ({VID:04x}:{PID:04x})"
        )
    try:
        fd = os.open(device, os.O_WRONLY)
    except OSError as e:
        raise RebootorError(f"--rebootor {device}: {e.strerror}") from e
    try:
        n = os.write(fd, REPORT)
    except OSError as e:
        raise RebootorError(f"--rebootor {device}: write failed: {e.strerror}") from e
    finally:
        os.close(fd)
    if n != len(REPORT):
        raise RebootorError(f"--rebootor {device}: wrote {n} of {len(REPORT)} bytes")
    return device
