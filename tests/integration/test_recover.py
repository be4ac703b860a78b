"""router7-recover on a real segment: PXE clients get an answer, other hosts none;
TFTP and HTTP serve the boot script and the image; the router's progress posts
decide the exit code.

    <t>-lap eth0 192.168.42.250/24 (router7-recover) ──── <t>-cli eth0 (dhclient, busybox tftp, curl)

dhclient runs with -sf /bin/true (no interface changes) and its own lease file;
a config with `send vendor-class-identifier "PXEClient..."` makes it a PXE
client, without it it is any laptop or phone on the LAN.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.netns import Namespaces, skip_unless_root_with, unique_tag
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]
SERVER = "192.168.42.250"
URL = f"http://{SERVER}:8077"
RECOVER = Path(sys.executable).with_name("router7-recover")


@pytest.fixture
def segment():
    skip_unless_root_with("ip", "dhclient", "busybox", "curl")
    with Namespaces(unique_tag("rcv"), "lap", "cli", ipv6=False) as ns:
        lap, cli = ns.names
        ns.veth(lap, "eth0", cli, "eth0", b_mac="02:72:37:00:99:01")
        ns.addr(lap, "eth0", f"{SERVER}/24")
        yield ns, lap, cli


@pytest.fixture
def image_dir(tmp_path):
    d = tmp_path / "image"
    d.mkdir()
    (d / "vmlinuz").write_bytes(b"K" * 100_000)
    (d / "initrd").write_bytes(bytes(range(256)) * 3000)
    (d / "disk.img").write_bytes(b"D" * 4096)
    (d / "cmdline").write_text("console=ttyS0,115200 net.ifnames=0 panic=10\n")
    return d


def start_recover(ns, lap, image_dir, tmp_path, *args):
    log = tmp_path / "recover.log"
    proc = ns.popen(
        lap, RECOVER, "--interface", "eth0", "--image-dir", image_dir, "--timeout", "120",
        "--log-level", "info", *args,
        stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115 (the child owns it)
    )  # fmt: skip
    wait_for(
        lambda: "serving" in log.read_text() or proc.poll() is not None,
        "router7-recover listening",
        logs=[log],
    )
    assert proc.poll() is None, log.read_text()
    return proc, log


def dhclient(ns, cli, tmp_path, name, conf):
    """One dhclient run: (exit code, its messages, the lease file). On success it
    goes to the background; it is stopped at once through its pid file."""
    cf = tmp_path / f"{name}.conf"
    cf.write_text("timeout 8;\nretry 60;\ninitial-interval 1;\n" + conf)
    lf, pf, err = (tmp_path / f"{name}.{ext}" for ext in ("leases", "pid", "err"))
    lf.write_text("")
    with err.open("wb") as errf:
        rc = subprocess.run(
            ["ip", "netns", "exec", cli, "dhclient", "-4", "-1", "-sf", "/bin/true",
             "-cf", str(cf), "-lf", str(lf), "-pf", str(pf), "eth0"],
            stdout=subprocess.DEVNULL, stderr=errf, timeout=60,
        ).returncode  # fmt: skip
    if pf.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pf.read_text()), signal.SIGKILL)
    return rc, err.read_text(), lf.read_text()


def test_serves_pxe_clients_only_and_exits_on_the_routers_word(segment, image_dir, tmp_path):
    ns, lap, cli = segment
    proc, log = start_recover(ns, lap, image_dir, tmp_path, "--wipe")
    try:
        # Any other host: no answer at all (dhclient gives up after its timeout).
        rc, err, leases = dhclient(ns, cli, tmp_path, "laptop", "")
        assert rc != 0, err  # "No DHCPOFFERS received" (in syslog)
        assert leases.strip() == ""
        assert "ignoring 02:72:37:00:99:01" in log.read_text()

        # A PXE ROM: an address and PXELINUX; iPXE: the iPXE script.
        rc, err, leases = dhclient(
            ns, cli, tmp_path, "pxe",
            'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";\n',
        )  # fmt: skip
        assert rc == 0, err
        assert "fixed-address 192.168.42.251;" in leases
        assert 'filename "lpxelinux.0";' in leases
        rc, err, leases = dhclient(
            ns, cli, tmp_path, "ipxe",
            'send vendor-class-identifier "PXEClient:Arch:00000:UNDI:002001";\n'
            'send user-class "iPXE";\n',
        )  # fmt: skip
        assert rc == 0 and 'filename "boot.ipxe";' in leases, err

        # TFTP (busybox's client, with blksize and tsize) and HTTP.
        ns.ip(cli, "addr", "add", "192.168.42.251/24", "dev", "eth0")
        for name, blksize in (("boot.ipxe", "512"), ("initrd", "1400")):
            subprocess.run(
                ["ip", "netns", "exec", cli, "busybox", "tftp", "-g", "-b", blksize,
                 "-r", name, "-l", str(tmp_path / f"got-{name}"), SERVER],
                check=True, timeout=60,
            )  # fmt: skip
        script = (tmp_path / "got-boot.ipxe").read_text()
        assert f"kernel {URL}/vmlinuz" in script and f"router7.recover={URL}" in script
        assert (tmp_path / "got-initrd").read_bytes() == (image_dir / "initrd").read_bytes()
        curl = ["ip", "netns", "exec", cli, "curl", "-sf"]
        plan = json.loads(subprocess.run([*curl, f"{URL}/plan"], capture_output=True).stdout)
        assert plan["wipe"] is True and plan["backup"] is None and plan["disk_size"] == 4096
        disk = subprocess.run([*curl, f"{URL}/disk.img"], capture_output=True).stdout
        assert disk == (image_dir / "disk.img").read_bytes()

        # The router's reports: a progress bar, then success ends router7-recover.
        for report in (
            {"stage": "booted"},
            {"stage": "writing", "done": 2048, "total": 4096},
            {"stage": "done", "message": "rebooting"},
        ):
            subprocess.run(
                [*curl, "-d", json.dumps(report), f"{URL}/progress"], check=True, timeout=20
            )
        assert proc.wait(timeout=30) == 0, log.read_text()
        out = log.read_text()
        assert "[###############---------------]  50.0%" in out
        assert "the router is installed and reboots" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_refusal_from_the_router_is_a_failure(segment, image_dir, tmp_path):
    ns, lap, cli = segment
    proc, log = start_recover(ns, lap, image_dir, tmp_path)
    try:
        ns.ip(cli, "addr", "add", "192.168.42.251/24", "dev", "eth0")
        report = {"stage": "failed", "message": "refused: vda holds a router7 /perm"}
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                cli,
                "curl",
                "-sf",
                "-d",
                json.dumps(report),
                f"{URL}/progress",
            ],
            check=True,
            timeout=20,
        )
        assert proc.wait(timeout=30) == 1
        assert "FAILED: refused: vda holds a router7 /perm" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_setup_errors_name_the_problem(segment, image_dir, tmp_path):
    ns, lap, _cli = segment
    (image_dir / "disk.img").unlink()
    r = subprocess.run(
        ["ip", "netns", "exec", lap, RECOVER, "--interface", "eth0", "--image-dir", image_dir],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "disk.img: missing" in r.stderr
    r = subprocess.run(
        ["ip", "netns", "exec", lap, RECOVER, "--interface", "nope0", "--image-dir", image_dir],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2 and "nope0: no such network interface" in r.stderr
