import socket

from router7.runtime.sdnotify import sd_notify


def test_ready_reaches_notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
        assert sock.recv(100) == b"READY=1"


def test_abstract_socket():
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0router7-test-notify")
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": "@router7-test-notify"})
        assert sock.recv(100) == b"READY=1"


def test_without_systemd():
    assert sd_notify("READY=1", {}) is False
