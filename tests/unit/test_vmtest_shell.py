"""The test-shell protocol without qemu: a local bash plays the guest's shell."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest

from router7.vmtest import shell
from router7.vmtest.logger import Logger
from router7.vmtest.machine import BaseMachine, RequestedAssertionFailed


def run_in_bash(line: bytes, garbage: bytes = b"") -> bytes:
    """What the guest's shell prints for `line`, after some console noise."""
    out = subprocess.run(
        ["bash", "--noprofile", "--norc"], input=line, capture_output=True, check=True
    )
    return garbage + out.stdout


def roundtrip(tmp_path: Path, command: str, timeout: int | None = None) -> shell.Reply:
    marker = shell.new_marker()
    line = shell.request(
        command, marker, timeout, err_file=str(tmp_path / "err"), rc_file=str(tmp_path / "rc")
    )
    out = run_in_bash(line, garbage=b"console noise\n\x00\xff")
    parsed = shell.parse(out, marker)
    assert parsed is not None, out
    return parsed[0]


def test_stdout_stderr_and_status_come_back_separately(tmp_path):
    reply = roundtrip(tmp_path, "echo out; echo err >&2; exit 3")
    assert reply == shell.Reply(3, "out\n", "err\n")


def test_any_bytes_and_quotes_survive(tmp_path):
    reply = roundtrip(tmp_path, """printf '%s\\n' "it's \\"quoted\\" $((1+1))"; printf 'a\\tb'""")
    assert reply.status == 0
    assert reply.stdout == 'it\'s "quoted" 2\na\tb'


def test_nixos_semantics_set_euo_pipefail(tmp_path):
    assert roundtrip(tmp_path, "false; echo not reached").status == 1
    assert roundtrip(tmp_path, "false | true").status == 1
    assert roundtrip(tmp_path, "echo $UNSET_VARIABLE").status != 0


def test_guest_side_timeout_ends_the_command(tmp_path):
    assert roundtrip(tmp_path, "sleep 5", timeout=1).status == 124


def test_parse_waits_for_the_whole_reply_and_keeps_the_rest():
    marker = shell.new_marker()
    assert shell.parse(b"aGk=\n" + marker.encode() + b" 0", marker) is None
    reply, rest = shell.parse(b"junk\naGk=\n" + marker.encode() + b" 0 \nnext", marker)
    assert reply == shell.Reply(0, "hi", "")
    assert rest == b"next"


def test_a_reply_to_another_marker_is_not_ours():
    assert shell.parse(b"aGk=\nR7TS-other 0 \n", shell.new_marker()) is None


@pytest.fixture
def guest_shell(tmp_path):
    """A unix socket served by a bash, like qemu's chardev with the guest's shell behind."""
    path = tmp_path / "testshell.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    procs = []

    def serve():
        conn, _ = server.accept()
        procs.append(subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=conn, stdout=conn))
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    ts = shell.TestShell(str(path))
    yield ts
    ts.close()
    server.close()
    for p in procs:
        p.kill()
        p.wait()


def test_test_shell_over_a_socket(guest_shell):
    assert guest_shell.wait_ready(10) >= 0
    assert guest_shell.run("echo $((6*7))", timeout=10).stdout == "42\n"
    big = guest_shell.run("head -c 300000 /dev/zero | tr '\\0' x", timeout=10)
    assert big.stdout == "x" * 300000
    assert guest_shell.run("exit 5", timeout=10).status == 5


class LocalMachine(BaseMachine):
    """A machine whose commands run in a local bash: the driver's logic alone."""

    def _run(self, command, timeout):
        p = subprocess.run(
            ["bash", "-c", f"set -euo pipefail; {command}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return p.returncode, p.stdout, p.stderr


def test_a_failed_succeed_names_machine_command_output_and_exit_code(tmp_path):
    m = LocalMachine("router", tmp_path, Logger(tmp_path, echo=False))
    with pytest.raises(RequestedAssertionFailed) as err:
        m.succeed("echo some output; echo the reason >&2; exit 7")
    text = str(err.value)
    assert "router" in text
    assert "echo some output; echo the reason >&2; exit 7" in text
    assert "exit code 7" in text
    assert "some output" in text and "the reason" in text
    # ... and the machine's log has it too.
    assert "[exit 7]" in (tmp_path / "router.log").read_text()


def test_wait_until_succeeds_returns_output_and_fail_raises(tmp_path):
    m = LocalMachine("lan", tmp_path, Logger(tmp_path, echo=False))
    assert m.wait_until_succeeds("echo ok", timeout=5) == "ok\n"
    assert m.wait_until_fails("echo gone; exit 3", timeout=5) == "gone\n"
    assert m.fail("exit 1") == ""
    with pytest.raises(RequestedAssertionFailed, match="unexpectedly succeeded"):
        m.fail("true")


class FakeLab:
    prefix = "x"

    def __init__(self):
        self.running = {"isp-dhcp4": True}

    def ns(self, node):
        return f"x-{node}"

    def stop_peer(self, name):
        self.running[name] = False

    def start_peer(self, name):
        self.running[name] = True

    def peer_running(self, name):
        return self.running.get(name, False)


def test_systemctl_on_the_isp_maps_kea_and_radvd_to_lab_peers(tmp_path):
    from router7.vmtest.machine import NamespaceMachine

    lab = FakeLab()
    isp = NamespaceMachine("isp", tmp_path, Logger(tmp_path, echo=False), lab, "isp")
    assert isp.systemctl("stop kea-dhcp4-server") == (0, "")
    assert lab.running["isp-dhcp4"] is False
    assert isp.systemctl("is-active kea-dhcp4-server.service")[0] == 3
    assert isp.get_unit_info("kea-dhcp4-server")["ActiveState"] == "inactive"
    isp.systemctl("start kea-dhcp4-server")
    isp.wait_for_unit("kea-dhcp4-server", timeout=5)
    assert isp.systemctl("restart radvd")[0] == 0 and lab.running["isp-radvd"]
    assert isp.systemctl("status sshd")[0] != 0


def test_a_lan_host_starts_its_dhcp_client_with_its_first_command(tmp_path, monkeypatch):
    """Not at start(): the router VM is still booting then (see NamespaceMachine.start)."""
    from router7.lab import router as lab_router
    from router7.vmtest import machine
    from router7.vmtest.machine import NamespaceMachine

    started = []
    monkeypatch.setattr(lab_router, "start_lan_client", lambda lab, node: started.append(node))
    ran = []

    def fake_run(argv, **kw):
        ran.append(argv)
        return subprocess.CompletedProcess(argv, 0, "ok\n", "")

    monkeypatch.setattr(machine.subprocess, "run", fake_run)
    lan = NamespaceMachine("lan", tmp_path, Logger(tmp_path, echo=False), FakeLab(), "lan1")
    isp = NamespaceMachine("isp", tmp_path, Logger(tmp_path, echo=False), FakeLab(), "isp")
    for m in (lan, isp):
        m.start()
    assert started == []
    assert isp.succeed("true") == "ok\n" and started == []
    assert lan.succeed("ip -4 addr") == "ok\n"
    assert lan.succeed("true") == "ok\n"
    assert started == ["lan1"], "the client starts once, before the first command"
    assert ran[1][:4] == ["ip", "netns", "exec", "x-lan1"]
