"""The disk packer finds syslinux's mbr.bin where Nix's syslinux keeps it
(<prefix>/share/syslinux next to <prefix>/bin/syslinux), as in pkgs/image.nix."""

from __future__ import annotations

from router7.image import tools


def test_mbr_next_to_the_syslinux_on_path(tmp_path, monkeypatch):
    prefix = tmp_path / "nix-store-syslinux"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "syslinux").mkdir(parents=True)
    binary = prefix / "bin" / "syslinux"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    mbr = prefix / "share" / "syslinux" / "mbr.bin"
    mbr.write_bytes(b"\0" * 440)
    monkeypatch.setattr(tools, "SYSLINUX_MBR_DIRS", [tmp_path / "nowhere"])
    monkeypatch.setenv("PATH", str(prefix / "bin"))
    assert tools.syslinux_mbr() == mbr


def test_no_syslinux_anywhere_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setattr(tools, "SYSLINUX_MBR_DIRS", [tmp_path / "nowhere"])
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        tools.syslinux_mbr()
    except tools.MissingTool as e:
        assert "syslinux" in str(e)
    else:
        raise AssertionError("no MissingTool")
