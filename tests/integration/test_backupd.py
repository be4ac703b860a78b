"""router7-backupd in the lab: a LAN host downloads a backup of perm and restores it;
the port does not answer from the isp and internet namespaces.

The router namespace gets lan0's address and a static uplink address by hand, so
this runs without the rest of the router.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router7.lab import Lab
from router7.runtime import auth

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAN_ADDR = "192.168.42.1"
LAN_CLIENT = "192.168.42.78/24"
UPLINK_ADDR = "192.0.2.120"  # outside kea's pool
UPLINK_ADDR6 = "2001:db8:1::120"
PORT = 8077
URL = f"http://{LAN_ADDR}:{PORT}/backup.tar.gz"


def make_perm(root: Path) -> Path:
    (root / "dhcp4/wire").mkdir(parents=True)
    (root / "dhcp4/wire/lease.json").write_text('{"address": "192.0.2.23/25"}\n')
    (root / "dhcp4/wire/ack").write_bytes(os.urandom(300))
    (root / "dhcp6").mkdir()
    (root / "dhcp6/duid").write_bytes(b"\x00\x01\x00\x01")
    (root / "interfaces.json").write_text('{"interfaces": []}\n')
    (root / "breakglass.host_key").write_text("-----BEGIN KEY-----\n")
    os.chmod(root / "breakglass.host_key", 0o600)
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # several chunks
    (root / "deep/a/b/c").mkdir(parents=True)
    (root / "deep/a/b/c" / ("n" * 150)).write_text("long name")
    (root / "cache").mkdir()
    (root / "cache/.nobackup").write_text("")
    (root / "cache/huge").write_bytes(b"0" * 1000)
    (root / "srv").mkdir()
    (root / "srv/index.html").write_text("router7 skips srv/")
    os.symlink("/etc/passwd", root / "link")
    return root


def snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            body = p.read_bytes() if stat.S_ISREG(st.st_mode) else None
            rel = str(p.relative_to(root))
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), int(st.st_mtime), body)
    return out


def curl(lab: Lab, node: str, *args: str, timeout: int = 20) -> subprocess.CompletedProcess:
    return lab.exec(
        node, "curl", "-sS", "--max-time", str(timeout), *args, check=False, timeout=timeout + 5
    )


@pytest.fixture(scope="module")
def backupd(lab_session: Lab, tmp_path_factory):
    lab = lab_session.up()
    tmp = tmp_path_factory.mktemp("backupd")
    perm = make_perm(tmp / "perm")
    token, _ = auth.load_or_create(perm)  # netconfigd's job at boot
    lab.reset_node("router")
    proc = None
    try:
        lab.exec("router", "ip", "addr", "add", f"{LAN_ADDR}/24", "dev", "lan0")
        lab.exec("router", "ip", "addr", "add", f"{UPLINK_ADDR}/25", "dev", "uplink0")
        lab.exec("router", "ip", "addr", "add", f"{UPLINK_ADDR6}/64", "dev", "uplink0", "nodad")
        lab.route_router_via_isp(4, 6)
        lab.exec("lan1", "ip", "addr", "replace", LAN_CLIENT, "dev", "eth0")
        cmd = [sys.executable, "-m", "router7.backupd.service", "--perm", str(perm)]
        cmd += ["--run-dir", str(tmp / "run")]
        with (tmp / "backupd.log").open("wb") as log:
            proc = lab.popen("router", *cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while curl(lab, "lan1", "-o", "/dev/null", f"http://{LAN_ADDR}:{PORT}/").returncode:
            if time.monotonic() > deadline:
                pytest.fail(f"backupd did not start; see {tmp / 'backupd.log'}")
            time.sleep(0.2)
        yield lab, perm, tmp, token
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        lab.exec("lan1", "ip", "addr", "del", LAN_CLIENT, "dev", "eth0", check=False)
        lab.reset_node("router")


def bearer(token: str) -> tuple[str, str]:
    return ("-H", f"Authorization: Bearer {token}")


def test_a_backup_needs_the_admin_credential(backupd):
    """Issue 16, case 5: a backup holds private keys; any LAN host used to get one."""
    lab, perm, tmp, token = backupd
    got = curl(lab, "lan1", "-o", str(tmp / "no.tar.gz"), "-w", "%{http_code}", URL)
    assert got.stdout == "401" and not (tmp / "no.tar.gz").read_bytes().startswith(b"\x1f\x8b")
    wrong = curl(lab, "lan1", "-o", "/dev/null", "-w", "%{http_code}", *bearer("x" + token), URL)
    assert wrong.stdout == "401"
    basic = curl(lab, "lan1", "-f", "-o", "/dev/null", "-u", f"admin:{token}", URL)
    assert basic.returncode == 0, basic.stderr


def test_round_trip_over_http(backupd):
    lab, perm, tmp, token = backupd
    archive = tmp / "download.tar.gz"
    got = curl(lab, "lan1", "-f", "-o", str(archive), "-D", "-", *bearer(token), URL)
    assert got.returncode == 0, got.stderr
    assert "content-type: application/gzip" in got.stdout.lower()
    assert 'filename="router7-backup-' in got.stdout

    restored = tmp / "restored"
    run = subprocess.run(
        [sys.executable, "-m", "router7.backupd.restore", str(archive), "--perm", str(restored)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    want = {
        k: v
        for k, v in snapshot(perm).items()
        if not k.startswith(("cache", "srv")) and k != "link"
    }
    assert snapshot(restored) == want
    assert "cache" not in os.listdir(restored) and "srv" not in os.listdir(restored)
    # Owners came back too (we run as root).
    assert os.stat(restored / "big.bin").st_uid == os.stat(perm / "big.bin").st_uid

    # The same perm gives the same bytes: downloads can be compared or deduplicated.
    again = curl(lab, "lan1", "-f", "-o", str(tmp / "again.tar.gz"), *bearer(token), URL)
    assert again.returncode == 0
    assert (tmp / "again.tar.gz").read_bytes() == archive.read_bytes()


def test_restore_straight_from_the_router_into_an_existing_perm(backupd):
    lab, perm, tmp, token = backupd
    target = tmp / "existing"
    target.mkdir()
    (target / "stale.json").write_text("{}")
    run = lab.exec(
        "lan1",
        sys.executable,
        "-m",
        "router7.backupd.restore",
        URL,
        "--perm",
        str(target),
        "--no-owner",
        "--token",
        token,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert not (target / "stale.json").exists()
    assert (target / "big.bin").read_bytes() == (perm / "big.bin").read_bytes()
    assert sorted(p.name for p in tmp.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("node", ["isp", "internet"])
def test_port_does_not_answer_from_outside(backupd, node):
    lab, _, _, token = backupd
    assert curl(lab, "lan1", "-f", "-o", "/dev/null", *bearer(token), URL).returncode == 0
    for url in (
        f"http://{UPLINK_ADDR}:{PORT}/backup.tar.gz",
        f"http://[{UPLINK_ADDR6}]:{PORT}/backup.tar.gz",
    ):
        got = curl(lab, node, "-o", "/dev/null", url, timeout=3)
        # 7: the router answered, with a reset: nothing listens there (not a timeout).
        assert got.returncode == 7, (node, url, got.returncode, got.stderr)
