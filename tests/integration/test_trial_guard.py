"""router7-trial-guard.service's shell, run as systemd would run it (root).

In a private mount namespace, /proc/cmdline, /proc/uptime and /boot are this test's
files, `sleep` and `systemctl` are stubs that record their arguments, and the
process has no CAP_SYS_BOOT: were the stub ever bypassed, reboot(2) would fail.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "pkgs/systemd/router7-trial-guard.service"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
    reason="needs root, unshare and setpriv (a private mount namespace)",
)


def exec_start() -> list[str]:
    """ExecStart= as systemd reads it: continued lines joined, `$$` is `$`."""
    text = UNIT.read_text().replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    return [w.replace("$$", "$") for w in shlex.split(line.removeprefix("ExecStart="))]


def run_guard(tmp_path: Path, cmdline: str, uptime: float, default_slot: str) -> dict:
    stubs, boot, calls = tmp_path / "stubs", tmp_path / "boot", tmp_path / "calls"
    stubs.mkdir()
    boot.mkdir()
    (boot / "default.cfg").write_text(f"DEFAULT {default_slot}\n")
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    (tmp_path / "uptime").write_text(f"{uptime:.2f} 1.00\n")
    for name in ("sleep", "systemctl"):
        stub = stubs / name
        stub.write_text(f'#!/bin/sh\necho "$*" > {calls}.{name}\n')
        stub.chmod(0o755)
    argv = exec_start()
    assert argv[:2] == ["/bin/sh", "-c"], argv
    mounts = (
        f"mount --bind {tmp_path}/cmdline /proc/cmdline && "
        f"mount --bind {tmp_path}/uptime /proc/uptime && "
        f"mount --bind {boot} /boot && "
        f'exec setpriv --bounding-set -sys_boot --inh-caps -sys_boot env PATH="{stubs}:$PATH" '
        f"/bin/sh -c {shlex.quote(argv[2])}"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", mounts],
        capture_output=True,
        text=True,
        timeout=30,
    )

    def called(name: str) -> str | None:
        f = Path(f"{calls}.{name}")
        return f.read_text().strip() if f.exists() else None

    return {
        "rc": proc.returncode,
        "out": proc.stdout + proc.stderr,
        "sleep": called("sleep"),
        "systemctl": called("systemctl"),
    }


def test_an_uncommitted_trial_past_its_deadline_reboots_into_the_default(tmp_path):
    r = run_guard(tmp_path, "console=ttyS0 router7.slot=B router7.trial=1 router7.deadline=30",
                  uptime=400.5, default_slot="A")  # fmt: skip
    assert r["systemctl"] == "reboot -ff", r
    assert r["sleep"] is None, r  # already past deadline + 300 s
    assert "slot B not committed 330 s after boot" in r["out"], r


def test_the_guard_sleeps_until_five_minutes_after_the_deadline(tmp_path):
    r = run_guard(tmp_path, "router7.slot=B router7.trial=1 router7.deadline=600",
                  uptime=25.9, default_slot="A")  # fmt: skip
    assert r["sleep"] == str(600 + 300 - 25), r
    assert r["systemctl"] == "reboot -ff", r


def test_a_committed_trial_is_left_alone(tmp_path):
    r = run_guard(tmp_path, "router7.slot=B router7.trial=1 router7.deadline=30",
                  uptime=400.0, default_slot="B")  # fmt: skip
    assert (r["rc"], r["systemctl"]) == (0, None), r


def test_without_a_deadline_on_the_command_line_the_default_is_600_s(tmp_path):
    r = run_guard(tmp_path, "router7.slot=A router7.trial=1", uptime=100.0, default_slot="B")
    assert r["sleep"] == str(600 + 300 - 100), r
    assert r["systemctl"] == "reboot -ff", r
