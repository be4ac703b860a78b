"""The service runtime in real processes: pid files, signals, readiness, LAN-only HTTP."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router7.runtime.notify import notify, running_pid
from tests.helpers.polling import wait_for

REPO = Path(__file__).parents[2]


def start_echo(tmp_path, run_dir, name, *extra, env=None, netns=None):
    events = tmp_path / f"{name}.events"
    cmd = [
        sys.executable,
        "-m",
        "tests.helpers.echo_service",
        "--perm",
        str(tmp_path / "perm"),
        "--run-dir",
        str(run_dir),
        "--events",
        str(events),
        *extra,
    ]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stderr=(tmp_path / f"{name}.log").open("wb"),  # noqa: SIM115 - lives as long as the child
    )
    wait_for(
        lambda: events.exists() and "started" in events.read_text(),
        f"{name} start",
        15.0,
        interval=0.05,
        logs=[tmp_path / f"{name}.log"],
    )
    return proc, events


def lines(path):
    return path.read_text().split()


def test_notify_reaches_the_service_of_the_same_run_dir(tmp_path):
    a, b = tmp_path / "router-a", tmp_path / "router-b"
    pa, ea = start_echo(tmp_path, a, "a")
    pb, eb = start_echo(tmp_path, b, "b")
    try:
        assert running_pid(a, "echo") == pa.pid and running_pid(b, "echo") == pb.pid
        assert notify(a, "echo")
        wait_for(lambda: "reload" in lines(ea), "reload in a", 15.0, interval=0.05)
        time.sleep(0.3)
        assert lines(eb) == ["started"]  # b heard nothing
        assert notify(b, "echo")
        wait_for(lambda: "reload" in lines(eb), "reload in b", 15.0, interval=0.05)
        assert lines(ea).count("reload") == 1
    finally:
        pa.terminate(), pb.terminate()
        assert pa.wait(10) == 0 and pb.wait(10) == 0
    # SIGTERM is a clean stop: the stop hook ran and the pid file is gone.
    assert lines(ea)[-1] == "stop" and lines(eb)[-1] == "stop"
    assert not (a / "echo.pid").exists()
    assert notify(a, "echo") is False


def test_stale_pid_file_is_not_signalled(tmp_path):
    run = tmp_path / "run"
    p, _ = start_echo(tmp_path, run, "x")
    p.kill()  # SIGKILL: the pid file stays behind
    p.wait()
    assert (run / "echo.pid").exists()
    assert running_pid(run, "echo") is None
    assert notify(run, "echo") is False


def test_readiness_and_release_exit_code(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(15)
        p, events = start_echo(tmp_path, tmp_path / "run", "r", env={"NOTIFY_SOCKET": path})
        assert sock.recv(100) == b"READY=1"
        p.send_signal(signal.SIGUSR2)
        assert p.wait(10) == 125
        assert sock.recv(100) == b"STOPPING=1"
    assert lines(events) == ["started", "release", "stop"]


def test_help_documents_common_flags():
    out = subprocess.run(
        [sys.executable, "-m", "tests.helpers.echo_service", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for flag in ("--perm", "--run-dir", "--uplink", "--lan", "--log-level", "--events"):
        assert flag in out


@pytest.fixture
def netns():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"r7rt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    yield name
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
    for pid in pids.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", name], check=False)


def ns(name, *cmd):
    return subprocess.run(["ip", "-n", name, *cmd], check=True)


def fetch(netns, url):
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            netns,
            sys.executable,
            "-c",
            f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=3).read().decode())",
        ],
        capture_output=True,
        text=True,
    )


@pytest.mark.root
def test_management_http_listens_on_lan_side_only(tmp_path, netns):
    ns(netns, "link", "set", "lo", "up")
    for ifname, addr in (("uplink0", "10.0.0.2/24"), ("lan0", "192.168.42.1/24")):
        # veth, not dummy: the dummy module may be missing from the kernel
        ns(netns, "link", "add", ifname, "type", "veth", "peer", "name", f"{ifname}p")
        ns(netns, "link", "set", f"{ifname}p", "up")
        ns(netns, "addr", "add", addr, "dev", ifname)
        ns(netns, "link", "set", ifname, "up")
    p, events = start_echo(tmp_path, tmp_path / "run", "m", "--http-port", "18066", netns=netns)
    try:
        ok = fetch(netns, "http://192.168.42.1:18066/metrics")
        assert ok.returncode == 0 and "python_info" in ok.stdout
        refused = fetch(netns, "http://10.0.0.2:18066/metrics")  # uplink: private, still refused
        assert refused.returncode != 0 and "Connection refused" in refused.stderr
        assert fetch(netns, "http://192.168.43.1:18066/").returncode != 0
        # A new LAN address is picked up on SIGUSR1.
        ns(netns, "addr", "add", "192.168.43.1/24", "dev", "lan0")
        p.send_signal(signal.SIGUSR1)
        wait_for(lambda: "reload" in lines(events), "reload", 15.0, interval=0.05)
        assert "router7 management" in fetch(netns, "http://192.168.43.1:18066/").stdout
    finally:
        p.terminate()
        p.wait(10)
