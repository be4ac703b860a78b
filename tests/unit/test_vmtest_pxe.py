"""The VM launcher's qemu command line (pxe boot path, blank disk, TCG cache) and
scenario header options."""

from __future__ import annotations

from pathlib import Path

import pytest

from router7.vmtest import qemu
from router7.vmtest.driver import scenario_options


def config(tmp_path: Path, **kw) -> qemu.VmConfig:
    nics = [qemu.Nic("uplink", "tap-uplink"), qemu.Nic("lan", "tap-lan")]
    return qemu.VmConfig("r", tmp_path, tmp_path, nics, **kw)


def devices(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]


def test_pxe_boots_the_lan_nic_first_then_the_disk(tmp_path):
    devs = devices(qemu.argv(config(tmp_path, boot="pxe"), accel="tcg"))
    lan = next(d for d in devs if "id=lan," in d)
    uplink = next(d for d in devs if "id=uplink," in d)
    disk = next(d for d in devs if d.startswith("virtio-blk-pci"))
    assert "bootindex=1" in lan and "romfile=" not in lan  # qemu's iPXE ROM
    assert "romfile=" in uplink and "bootindex" not in uplink
    assert "bootindex=2" in disk


def test_other_boot_modes_keep_every_nic_rom_less(tmp_path):
    devs = devices(qemu.argv(config(tmp_path, boot="disk"), accel="tcg"))
    assert all("romfile=" in d for d in devs if "netdev=" in d and "boot-net" not in d)


def test_tcg_gets_a_bounded_translation_cache_and_kvm_none(tmp_path):
    # The bound is what keeps kexec'd systems from crawling under TCG (qemu.py).
    a = qemu.argv(config(tmp_path), accel="tcg")
    assert a[a.index("-accel") + 1] == f"tcg,tb-size={qemu.TCG_CACHE_MIB}"
    a = qemu.argv(config(tmp_path), accel="kvm")
    assert a[a.index("-accel") + 1] == "kvm"


def test_blank_disk_is_empty_and_sized(tmp_path):
    import json
    import subprocess

    cfg = config(tmp_path, boot="pxe", blank_disk_mib=64)
    qemu.prepare_disk(cfg)
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(cfg.disk)], capture_output=True, check=True
        ).stdout
    )
    assert info["virtual-size"] == 64 << 20 and "backing-filename" not in info


def test_scenario_header_options():
    text = "# a scenario\n# router7-vmtest: boot=pxe blank-disk-mib=512\nstart_all()\n"
    assert scenario_options(text) == {"boot": "pxe", "blank-disk-mib": "512"}
    assert scenario_options("start_all()\n") == {}
    assert scenario_options("# router7-vmtest: nix=none\n") == {"nix": "none"}
    with pytest.raises(ValueError, match="want boot=MODE"):
        scenario_options("# router7-vmtest: memory=2048\n")
