"""First boot: NICs in PCI order become uplink0 and lan0; interfaces.json is written once."""

from __future__ import annotations

import json
from pathlib import Path

from router7.netconfigd import firstboot


def fake_nic(sys: Path, name: str, mac: str, device: str | None, *, type_: int = 1) -> None:
    """A /sys/class/net entry; device is a path under /sys/devices (None: virtual)."""
    d = sys / "class" / "net" / name
    d.mkdir(parents=True)
    (d / "address").write_text(mac + "\n")
    (d / "type").write_text(f"{type_}\n")
    if device is not None:
        target = sys / "devices" / device
        target.mkdir(parents=True, exist_ok=True)
        (d / "device").symlink_to(target)


def fake_pci(sys: Path, addr: str, cls: str) -> None:
    d = sys / "bus" / "pci" / "devices" / addr
    d.mkdir(parents=True)
    (d / "class").write_text(cls + "\n")


def test_pci_order_not_name_order(tmp_path):
    sys = tmp_path
    # eth0 sits on the later PCI slot: it must not become the uplink.
    fake_nic(sys, "eth0", "52:54:00:00:00:02", "pci0000:00/0000:00:05.0/virtio2")
    fake_nic(sys, "eth1", "52:54:00:00:00:01", "pci0000:00/0000:00:04.0/virtio1")
    fake_nic(sys, "veth0", "aa:aa:aa:aa:aa:aa", None)
    fake_pci(sys, "0000:00:04.0", "0x020000")
    fake_pci(sys, "0000:00:05.0", "0x020000")
    fake_pci(sys, "0000:00:01.1", "0x010180")  # IDE: not a NIC
    assert firstboot.default_interfaces(sys) == {
        "interfaces": [
            {"hardware_addr": "52:54:00:00:00:01", "name": "uplink0"},
            {"hardware_addr": "52:54:00:00:00:02", "name": "lan0", "addr": "192.168.42.1/24"},
        ]
    }


def test_waits_until_every_ethernet_function_has_its_net_device(tmp_path):
    sys = tmp_path
    fake_nic(sys, "eth0", "00:0d:b9:00:00:01", "pci0000:00/0000:00:02.2/0000:01:00.0")
    fake_nic(sys, "eth1", "00:0d:b9:00:00:03", "pci0000:00/0000:00:02.4/0000:03:00.0")
    for addr in ("0000:01:00.0", "0000:02:00.0", "0000:03:00.0"):
        fake_pci(sys, addr, "0x020000")
    assert firstboot.default_interfaces(sys) is None  # 0000:02:00.0 not probed yet
    fake_nic(sys, "eth2", "00:0d:b9:00:00:02", "pci0000:00/0000:00:02.3/0000:02:00.0")
    names = {i["hardware_addr"]: i["name"] for i in firstboot.default_interfaces(sys)["interfaces"]}
    assert names == {"00:0d:b9:00:00:01": "uplink0", "00:0d:b9:00:00:02": "lan0"}


def test_wifi_and_single_nic_are_not_enough(tmp_path):
    sys = tmp_path
    fake_nic(sys, "eth0", "00:0d:b9:00:00:01", "pci0000:00/0000:00:02.2/0000:01:00.0")
    fake_nic(sys, "wlan0", "04:f0:21:00:00:01", "pci0000:00/0000:00:02.5/0000:04:00.0")
    (sys / "class/net/wlan0/phy80211").mkdir()
    fake_pci(sys, "0000:01:00.0", "0x020000")
    fake_pci(sys, "0000:04:00.0", "0x028000")  # Wi-Fi controller class
    assert firstboot.default_interfaces(sys) is None


def test_writes_once_and_never_overwrites(tmp_path):
    sys, perm = tmp_path / "sys", tmp_path / "perm"
    perm.mkdir()
    fake_nic(sys, "eth0", "52:54:00:00:00:01", "pci0000:00/0000:00:04.0/virtio1")
    fake_nic(sys, "eth1", "52:54:00:00:00:02", "pci0000:00/0000:00:05.0/virtio2")
    assert firstboot.ensure_interfaces(perm, sys) is True
    written = json.loads((perm / "interfaces.json").read_text())
    assert [i["name"] for i in written["interfaces"]] == ["uplink0", "lan0"]
    (perm / "interfaces.json").write_text("{ corrupt")  # the owner's (bad) edit stays
    assert firstboot.ensure_interfaces(perm, sys) is False
    assert (perm / "interfaces.json").read_text() == "{ corrupt"


def test_written_file_parses_as_router7_config(tmp_path):
    from router7.netconfigd.config import parse_interfaces

    sys = tmp_path
    fake_nic(sys, "eth0", "52:54:00:00:00:01", "pci0000:00/0000:00:04.0/virtio1")
    fake_nic(sys, "eth1", "52:54:00:00:00:02", "pci0000:00/0000:00:05.0/virtio2")
    parsed = parse_interfaces(firstboot.default_interfaces(sys), "interfaces.json")
    lan = parsed.by_name("lan0")
    assert lan is not None and str(lan.addr) == "192.168.42.1/24"
