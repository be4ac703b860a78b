"""router7-updated as a process in a network namespace, over HTTP on its LAN address:
the credential, bad uploads, a good upload into slot B and the kexec it asks for.

kexec is a stand-in script first in PATH (it records its arguments): the real one
would replace the machine's kernel. No trial runs here (no router7.trial=1), so the
service never reboots; the VM scenario vm-tests/update.py does the real thing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.polling import wait_for

LAN = "192.168.42.1"
FAKE_KEXEC = """#!/bin/sh
echo "$@" >> "{log}"
[ "$1" = "-e" ] && {{ echo "kexec_core: not in a test" >&2; exit 1; }}
exit 0
"""


@pytest.fixture
def updated(tmp_path):
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for a network namespace")
    ns = f"r7upd{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        yield from _run_updated(ns, tmp_path)
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _run_updated(ns, tmp_path):
    for cmd in (
        ["link", "set", "lo", "up"],
        ["link", "add", "lan0", "type", "veth", "peer", "name", "lan0peer"],
        ["link", "set", "lan0peer", "up"],
        ["addr", "add", f"{LAN}/24", "dev", "lan0"],
        ["link", "set", "lan0", "up"],
    ):
        subprocess.run(["ip", "-n", ns, *cmd], check=True)
    boot = tmp_path / "boot"
    for slot in "AB":
        (boot / slot).mkdir(parents=True)
        (boot / slot / "vmlinuz").write_bytes(b"kernel " + slot.encode())
        (boot / slot / "initrd").write_bytes(b"initrd " + slot.encode())
        (boot / slot / "cmdline").write_text("console=ttyS0 panic=10\n")
    (boot / "syslinux.cfg").write_text("DEFAULT A\nINCLUDE default.cfg\n")
    (boot / "default.cfg").write_text("DEFAULT A\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kexec").write_text(FAKE_KEXEC.format(log=tmp_path / "kexec.log"))
    (bin_dir / "kexec").chmod(0o755)
    (tmp_path / "cmdline").write_text("console=ttyS0 panic=10 router7.slot=A\n")
    (tmp_path / "version").write_text("1.0\n")
    perm = tmp_path / "perm"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    log = open(tmp_path / "updated.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "router7.updated.service",
         "--perm", str(perm), "--run-dir", str(tmp_path / "run"), "--lan", "lan0",
         "--boot", str(boot), "--cmdline", str(tmp_path / "cmdline"),
         "--version-file", str(tmp_path / "version"), "--log-level", "debug"],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip

    def client(*args, token=None):
        tok = ["--token", token] if token else ["--token-file", str(perm / "admin/token")]
        return subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "router7.updated.client",
             "--router", LAN, *tok, *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    try:
        wait_for(lambda: client("status").returncode == 0, "updated to answer", timeout=120)
        yield client, boot, tmp_path
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()


def image(dir: Path, kernel: bytes, initrd: bytes, version="2.0") -> Path:
    dir.mkdir(parents=True, exist_ok=True)
    (dir / "vmlinuz").write_bytes(kernel)
    (dir / "initrd").write_bytes(initrd)
    files = {
        n: {"bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()}
        for n, b in (("vmlinuz", kernel), ("initrd", initrd))
    }
    (dir / "manifest.json").write_text(
        json.dumps({"version": version, "cmdline": "console=ttyS0 panic=10", "files": files})
    )
    return dir


def snapshot(boot: Path) -> dict:
    return {p.relative_to(boot): p.read_bytes() for p in boot.rglob("*") if p.is_file()}


def test_credential_bad_input_then_a_good_update_and_its_kexec(updated):
    client, boot, tmp = updated
    before = snapshot(boot)
    status = json.loads(client("status").stdout)
    assert (status["running_slot"], status["default_slot"], status["version"]) == ("A", "A", "1.0")
    good = image(tmp / "good", b"new kernel" * 1000, b"new initrd" * 5000)

    # A wrong token: 401, nothing written.
    r = client("put", "manifest.json", str(good / "manifest.json"), token="wrong")
    assert r.returncode != 0 and "wrong credentials" not in r.stdout
    assert "401" in r.stderr and "admin credential" in r.stderr
    assert snapshot(boot) == before

    # A truncated initrd: 400 naming the file; the slot keeps no partial file.
    assert client("put", "manifest.json", str(good / "manifest.json")).returncode == 0
    (tmp / "short").write_bytes((good / "initrd").read_bytes()[:-100])
    r = client("put", "initrd", str(tmp / "short"))
    assert r.returncode != 0 and "400" in r.stderr and "truncated" in r.stderr, r.stderr
    # A file whose digest is not the manifest's: 400.
    (tmp / "other").write_bytes(b"x" * len((good / "vmlinuz").read_bytes()))
    r = client("put", "vmlinuz", str(tmp / "other"))
    assert r.returncode != 0 and "does not match the manifest" in r.stderr, r.stderr
    r = client("trial", "--deadline", "120")
    assert r.returncode != 0 and "409" in r.stderr and "not everything" in r.stderr
    assert not [p for p in boot.rglob("*") if p.name.startswith(".")]
    assert (boot / "default.cfg").read_text() == "DEFAULT A\n"

    # The good image: slot B written, kexec asked for with the trial flag, the
    # default untouched; the stand-in kexec -e fails, and that is recorded.
    r = client("upload", str(good))
    assert r.returncode == 0, r.stderr
    r = client("trial", "--deadline", "120")
    assert r.returncode == 0, r.stderr
    entry = json.loads(r.stdout)
    assert entry["to_slot"] == "B"
    assert entry["kexec"].endswith("router7.slot=B router7.trial=1 router7.deadline=120")
    assert (boot / "B/vmlinuz").read_bytes() == (good / "vmlinuz").read_bytes()
    assert (boot / "B/initrd").read_bytes() == (good / "initrd").read_bytes()
    assert (boot / "B/version").read_text() == "2.0\n"
    assert (boot / "default.cfg").read_text() == "DEFAULT A\n"
    assert (boot / "A/vmlinuz").read_bytes() == b"kernel A"

    def settled():
        last = json.loads(client("status").stdout)["last_update"]
        return last if last["result"] != "trial" else None

    last = wait_for(settled, "the kexec failure to be recorded", timeout=60)
    assert last["result"] == "failed" and "not in a test" in last["reason"]
    kexec = (tmp / "kexec.log").read_text().splitlines()
    assert kexec[0].startswith(f"-s -l {boot}/B/vmlinuz --initrd={boot}/B/initrd ")
    assert kexec[1] == "-e"
    history = json.loads((tmp / "perm/update/history.json").read_text())
    assert history["updates"][-1]["from_version"] == "1.0"
    assert history["updates"][-1]["to_version"] == "2.0"
