"""router7-recover's pieces without a network: what it serves, progress reports,
HTTP resources; and the recovery system's pure parts (command line, disks)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from twisted.web.test.requesthelper import DummyRequest

from router7.recover import install, progress
from router7.recover.served import ImageError, Served
from router7.recover.web import Root

URL = "http://192.168.42.250:8077"


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "image"
    d.mkdir()
    for name in ("vmlinuz", "initrd", "disk.img"):
        (d / name).write_bytes(name.encode() * 10)
    (d / "cmdline").write_text("console=ttyS0,115200 net.ifnames=0 panic=10\n")
    (d / "manifest.json").write_text(json.dumps({"files": {"disk.img": {"sha256": "ab" * 32}}}))
    return d


def test_check_names_the_missing_file(image_dir, tmp_path):
    (image_dir / "initrd").unlink()
    with pytest.raises(ImageError, match="initrd: missing"):
        Served(image_dir, URL).check()
    (image_dir / "initrd").write_bytes(b"x")
    with pytest.raises(ImageError, match="nope.tar.gz: no such backup"):
        Served(image_dir, URL, backup=tmp_path / "nope.tar.gz").check()


def test_boot_scripts_carry_the_recovery_command_line(image_dir):
    s = Served(image_dir, URL)
    script = s.ipxe_script()
    assert script.startswith("#!ipxe\n")
    assert f"kernel {URL}/vmlinuz initrd=initrd console=ttyS0,115200" in script
    assert f"router7.recover={URL} systemd.unit=router7-recovery.target" in script
    assert "router7.recover_mac=${mac}" in script
    assert f"initrd {URL}/initrd" in script
    cfg = s.pxelinux_config()
    assert "IPAPPEND 3" in cfg and f"router7.recover={URL}" in cfg
    assert s.tftp_lookup("boot.ipxe") == script.encode()
    assert s.tftp_lookup("pxelinux.cfg/01-52-54-00-12-34-56") == cfg.encode()
    assert s.tftp_lookup("../etc/passwd") is None
    assert s.http_file("disk.img") == image_dir / "disk.img"
    assert s.http_file("backup.tar.gz") is None


def test_plan_says_wipe_backup_and_checksum(image_dir, tmp_path):
    backup = tmp_path / "b.tar.gz"
    backup.write_bytes(b"x")
    plan = Served(image_dir, URL, backup=backup).plan()
    assert plan == {
        "disk_image": f"{URL}/disk.img",
        "disk_size": 80,
        "wipe": False,
        "backup": f"{URL}/backup.tar.gz",
        "disk_sha256": "ab" * 32,
    }
    assert Served(image_dir, URL, wipe=True).plan()["wipe"] is True


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"stage": "hacked"}', "stage"),
        (b'{"stage": "writing", "done": -1}', "done"),
        (b'{"stage": "writing", "total": true}', "total"),
        (b'{"stage": "failed", "message": 3}', "message"),
    ],
)
def test_bad_reports_are_refused(body, why):
    with pytest.raises(progress.BadReport, match=why):
        progress.parse_report(body)


def test_progress_ends_at_the_first_final_report():
    p = progress.Progress()
    p.add(progress.Report("writing", done=5, total=10))
    assert p.result is None and p.stage == "writing"
    p.add(progress.Report("failed", "refused: vda holds a router7 /perm"))
    p.add(progress.Report("done"))
    assert p.result is False and p.failure.startswith("refused")
    assert progress.bar(5, 10, width=10) == "[#####-----]  50.0%"
    assert "writing  [" in progress.render(progress.Report("writing", "", 1 << 20, 2 << 20))


def _render(root, path: bytes, method=b"GET", body=b""):
    req = DummyRequest([path])
    req.method = method
    if body:
        from io import BytesIO

        req.content = BytesIO(body)
    child = root.getChild(path, req) if path not in root.children else root.children[path]
    out = child.render(req)
    return req, (out if isinstance(out, bytes) else b"".join(req.written))


def test_http_plan_progress_and_unknown_names(image_dir):
    got = []
    root = Root(Served(image_dir, URL), got.append)
    _req, body = _render(root, b"plan")
    assert json.loads(body)["disk_image"] == f"{URL}/disk.img"
    req, body = _render(root, b"progress", b"POST", b'{"stage": "booted"}')
    assert body == b"ok\n" and got == [progress.Report("booted")]
    req, body = _render(root, b"progress", b"POST", b'{"stage": 1}')
    assert req.responseCode == 400 and b"stage" in body and len(got) == 1
    req, _ = _render(root, b"passwd")
    assert req.responseCode == 404


# ---- the recovery system


def test_cmdline_from_ipxe_and_pxelinux():
    ipxe = (
        "console=ttyS0 router7.recover=http://10.0.0.1:8077 router7.recover_ip=10.0.0.2 "
        "router7.recover_mask=255.255.255.0 router7.recover_mac=52:54:00:AA:BB:CC"
    )
    p = install.parse_cmdline(ipxe)
    assert (p.url, str(p.address), p.mac) == (
        "http://10.0.0.1:8077",
        "10.0.0.2/24",
        "52:54:00:aa:bb:cc",
    )
    pxelinux = "router7.recover=http://10.0.0.1:8077/ ip=10.0.0.2:10.0.0.1:0.0.0.0:255.255.0.0 BOOTIF=01-52-54-00-aa-bb-cc"
    p = install.parse_cmdline(pxelinux)
    assert (p.url, str(p.address), p.mac) == (
        "http://10.0.0.1:8077",
        "10.0.0.2/16",
        "52:54:00:aa:bb:cc",
    )
    assert install.parse_cmdline("console=ttyS0 quiet") is None


def fake_block(sysfs: Path, name: str, sectors: int, *, removable=0, ro=0, device=True, parts=()):
    d = sysfs / "block" / name
    d.mkdir(parents=True)
    (d / "size").write_text(f"{sectors}\n")
    (d / "removable").write_text(f"{removable}\n")
    (d / "ro").write_text(f"{ro}\n")
    if device:
        (d / "device").mkdir()
    for i, p in enumerate(parts, 1):
        (d / p).mkdir()
        (d / p / "partition").write_text(f"{i}\n")


def test_only_real_fixed_writable_disks_count(tmp_path):
    fake_block(tmp_path, "vda", 2 << 20, parts=("vda1", "vda2"))
    fake_block(tmp_path, "loop0", 100, device=False)
    fake_block(tmp_path, "sr0", 100)
    fake_block(tmp_path, "sdb", 100, removable=1)  # a USB stick
    fake_block(tmp_path, "mmcblk0boot0", 100, ro=1)
    found = install.disks(tmp_path)
    assert found == [install.Disk("vda", (2 << 20) * 512, ("vda1", "vda2"))]
    assert found[0].partition(2) == "/dev/vda2"
    assert install.Disk("mmcblk0", 1, ()).partition(2) == "/dev/mmcblk0p2"


def test_choose_disk_refuses_none_several_or_too_small():
    a, b = install.Disk("sda", 1 << 30, ()), install.Disk("sdb", 1 << 30, ())
    with pytest.raises(install.Refused, match="no disk"):
        install.choose_disk([], 1)
    with pytest.raises(install.Refused, match="several disks \\(sda, sdb\\)"):
        install.choose_disk([a, b], 1)
    with pytest.raises(install.Refused, match="the image needs"):
        install.choose_disk([a], 2 << 30)
    assert install.choose_disk([a], 1 << 20) == a


def test_recognises_a_router7_perm_file_system(tmp_path):
    img = tmp_path / "perm.img"
    img.write_bytes(b"\0" * (4 << 20))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "perm", str(img)], check=True)
    assert install.is_router7_perm(img.read_bytes()[:2048])
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "data", str(img)], check=True)
    assert not install.is_router7_perm(img.read_bytes()[:2048])
    assert not install.is_router7_perm(b"\0" * 2048)
    assert not install.is_router7_perm(b"")
