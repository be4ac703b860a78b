"""First boot: with no interfaces.json, name the NICs and write the file.

The first Ethernet NIC in PCI order becomes uplink0, the second lan0 with
192.168.42.1/24 (the lab's LAN, documented in docs/image.md). The file is then
written in router7's format (hardware_addr + name) so the owner can edit it;
on later boots netconfigd renames by MAC as usual.

Only NICs backed by a PCI device count (veths, bridges and tunnels have no
``device`` link, so this never fires in the namespace lab), and only once every
Ethernet-class PCI function has its net device: a half-probed driver must not
let the third port of an apu2c4 become lan0.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from router7.runtime.statefile import write_json_atomic

log = logging.getLogger(__name__)

SYSFS = Path("/sys")
DEFAULT_LAN_ADDR = "192.168.42.1/24"
ETHERNET_CLASS = 0x0200  # PCI class "network controller / ethernet" (upper 16 bits)
ARPHRD_ETHER = 1


@dataclass(frozen=True)
class Nic:
    name: str
    mac: str
    pci: str  # PCI address of the function, e.g. 0000:00:03.0
    path: str  # the resolved device path, sorts in bus order


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _pci_address(device_path: str) -> str:
    """The last PCI address in a device path (virtio NICs hang below their PCI function)."""
    parts = [p for p in device_path.split("/") if p.count(":") == 2 and "." in p]
    return parts[-1] if parts else ""


def ethernet_nics(sysfs: Path = SYSFS) -> list[Nic]:
    """Physical Ethernet NICs, in PCI bus order."""
    nics = []
    net = sysfs / "class" / "net"
    for dev in sorted(net.iterdir()) if net.is_dir() else []:
        device = dev / "device"
        if not device.exists() or (dev / "phy80211").exists() or (dev / "wireless").exists():
            continue
        if _read(dev / "type") != str(ARPHRD_ETHER):
            continue
        path = os.path.realpath(device)
        pci = _pci_address(path)
        if not pci:
            continue
        nics.append(Nic(dev.name, _read(dev / "address").lower(), pci, path))
    return sorted(nics, key=lambda n: _sort_key(n.path))


def _sort_key(path: str) -> list:
    # PCI addresses are fixed-width hex, so text order is bus order; split so
    # that a deeper bridge sorts after its parent function.
    return path.split("/")


def ethernet_pci_functions(sysfs: Path = SYSFS) -> set[str]:
    out = set()
    pci = sysfs / "bus" / "pci" / "devices"
    for dev in pci.iterdir() if pci.is_dir() else []:
        try:
            cls = int(_read(dev / "class"), 16)
        except ValueError:
            continue
        if cls >> 8 == ETHERNET_CLASS:
            out.add(dev.name)
    return out


def default_interfaces(sysfs: Path = SYSFS) -> dict | None:
    """interfaces.json content for these NICs, or None while they are not all there yet."""
    nics = ethernet_nics(sysfs)
    expected = ethernet_pci_functions(sysfs)
    missing = expected - {n.pci for n in nics}
    if missing:
        log.info("first boot: waiting for the net devices of PCI %s", ", ".join(sorted(missing)))
        return None
    if len(nics) < 2:
        log.warning("first boot: %d Ethernet NIC(s); need two (uplink0, lan0)", len(nics))
        return None
    uplink, lan = nics[0], nics[1]
    log.info(
        "first boot: %s (%s) is uplink0, %s (%s) is lan0 with %s",
        uplink.name, uplink.mac, lan.name, lan.mac, DEFAULT_LAN_ADDR,
    )  # fmt: skip
    return {
        "interfaces": [
            {"hardware_addr": uplink.mac, "name": "uplink0"},
            {"hardware_addr": lan.mac, "name": "lan0", "addr": DEFAULT_LAN_ADDR},
        ]
    }


def ensure_interfaces(perm: Path, sysfs: Path = SYSFS) -> bool:
    """Write perm/interfaces.json from the NICs if it does not exist; True if written."""
    path = Path(perm) / "interfaces.json"
    if path.exists() or path.is_symlink():
        return False
    content = default_interfaces(sysfs)
    if content is None:
        return False
    write_json_atomic(path, content)
    log.info("first boot: wrote %s", path)
    return True
