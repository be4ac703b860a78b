"""The capture socket reader, with the socket faked (the real one is in the integration test)."""

import errno
import socket

from twisted.internet.testing import MemoryReactor

from router7.captured import sniffer
from router7.captured.ring import PACKET_OUTGOING


class FakeSocket:
    """Serves queued (frame, real_length, pkttype, timestamp) then EAGAIN."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.closed = False

    def fileno(self):
        return 99

    def close(self):
        self.closed = True

    def recvmsg_into(self, buffers, ancbufsize, flags):
        assert flags & socket.MSG_TRUNC
        if not self.frames:
            raise BlockingIOError
        item = self.frames.pop(0)
        if isinstance(item, OSError):
            raise item
        frame, real_len, pkttype, ts = item
        buffers[0][: len(frame)] = frame
        anc = []
        if ts is not None:
            anc = [(socket.SOL_SOCKET, sniffer.SO_TIMESTAMPNS, sniffer._TIMESPEC.pack(*ts))]
        return real_len, anc, 0, ("lan0", 0x0800, pkttype, 1, b"\x02" * 6)


def make(monkeypatch, frames, index=7):
    got = []
    sock = FakeSocket(frames)
    monkeypatch.setattr(sniffer, "open_socket", lambda name: sock)
    monkeypatch.setattr(sniffer.socket, "if_nametoindex", lambda name: index)
    s = sniffer.InterfaceSniffer(MemoryReactor(), "lan0", got.append)
    s.ensure()
    return s, sock, got


def test_reads_frames_with_kernel_timestamps_and_direction(monkeypatch):
    s, _, got = make(
        monkeypatch,
        [
            (b"\x01" * 60, 60, 0, (1_700_000_000, 123_456_789)),
            (b"\x02" * 42, 42, PACKET_OUTGOING, None),
        ],
    )
    assert s.capturing and s in s.reactor.readers
    s.doRead()
    assert got[0].ts_ns == 1_700_000_000_123_456_789
    assert (got[0].ifname, got[0].data, got[0].orig_len) == ("lan0", b"\x01" * 60, 60)
    assert got[1].outgoing and got[1].ts_ns > 1_700_000_000_123_456_789  # time at read


def test_longer_frames_keep_their_real_length(monkeypatch):
    big = sniffer.BUFFER + 100
    s, _, got = make(monkeypatch, [(b"\x03" * 100, big, 0, None)])
    s.doRead()
    assert got[0].orig_len == big and len(got[0].data) == sniffer.BUFFER


def test_link_down_error_is_counted_and_the_socket_kept(monkeypatch):
    s, sock, got = make(monkeypatch, [OSError(errno.ENETDOWN, "down"), (b"\x04" * 60, 60, 0, None)])
    s.doRead()
    assert s.errors == {"ENETDOWN": 1} and not sock.closed
    s.doRead()
    assert len(got) == 1


def test_replaced_interface_is_reopened(monkeypatch):
    s, sock, _ = make(monkeypatch, [])
    replacement = FakeSocket([])
    monkeypatch.setattr(sniffer, "open_socket", lambda name: replacement)
    monkeypatch.setattr(sniffer.socket, "if_nametoindex", lambda name: 8)
    s.ensure()
    assert sock.closed and s.sock is replacement and s.ifindex == 8


def test_missing_interface_is_retried(monkeypatch):
    def fail(name):
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(sniffer, "open_socket", fail)
    s = sniffer.InterfaceSniffer(MemoryReactor(), "uplink0", lambda p: None)
    s.ensure()
    assert not s.capturing
    sock = FakeSocket([])
    monkeypatch.setattr(sniffer, "open_socket", lambda name: sock)
    monkeypatch.setattr(sniffer.socket, "if_nametoindex", lambda name: 3)
    s.ensure()
    assert s.capturing
