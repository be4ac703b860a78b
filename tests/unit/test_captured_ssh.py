"""captured's SSH side: host keys, authorized_keys, key checking and the session channel."""

import io
import os
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from scapy.utils import PcapNgReader
from twisted.conch.error import ValidPublicKey
from twisted.conch.ssh import keys
from twisted.cred.credentials import ISSHPrivateKey, SSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import task

from router7.captured import ssh
from router7.captured.ring import Packet
from router7.captured.stream import Capture


def new_key() -> keys.Key:
    return keys.Key(ed25519.Ed25519PrivateKey.generate())


def pem(private_key) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(private_key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- host keys --------------------------------------------------------------------


def test_host_key_is_generated_once_and_kept(tmp_path):
    first = ssh.host_keys(tmp_path)
    path = tmp_path / ssh.HOST_KEY
    assert list(first) == [b"ssh-ed25519"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / (ssh.HOST_KEY + ".pub")).read_bytes().startswith(b"ssh-ed25519 ")
    again = ssh.host_keys(tmp_path)
    assert again[b"ssh-ed25519"] == first[b"ssh-ed25519"]
    assert not [n for n in os.listdir(path.parent) if n.endswith(".tmp")]


def test_router7_breakglass_pem_key_is_offered_too(tmp_path):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "breakglass.host_key").write_bytes(pem(rsa_key))
    found = ssh.host_keys(tmp_path)
    assert sorted(found) == [b"ssh-ed25519", b"ssh-rsa"]
    assert found[b"ssh-rsa"].public() == keys.Key(rsa_key).public()


def test_breakglass_key_wins_a_type_clash(tmp_path):
    ed = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "breakglass.host_key").write_bytes(pem(ed))
    assert ssh.host_keys(tmp_path)[b"ssh-ed25519"].public() == keys.Key(ed).public()


def test_broken_breakglass_key_is_ignored(tmp_path):
    (tmp_path / "breakglass.host_key").write_bytes(b"-----BEGIN NONSENSE-----\n")
    assert list(ssh.host_keys(tmp_path)) == [b"ssh-ed25519"]


# --- authorized keys ----------------------------------------------------------------


def test_authorized_keys_parsing(tmp_path):
    a, b = new_key(), new_key()
    path = tmp_path / "authorized_keys"
    path.write_bytes(
        b"# the owner's laptop\n\n"
        + a.public().toString("openssh")
        + b" me@laptop\n"
        + b'from="10.0.0.1" '
        + b.public().toString("openssh")
        + b"\n"
        + b"ssh-ed25519 not-base64!!\n"
        + b"garbage\n"
    )
    assert ssh.read_authorized_keys(path) == [a.public()]
    assert ssh.read_authorized_keys(tmp_path / "missing") == []


def credentials(key: keys.Key, signed: bool = True) -> SSHPrivateKey:
    blob = key.public().blob()
    sig_data = b"session-id-and-request"
    return SSHPrivateKey(
        b"anyone", b"ssh-ed25519", blob, sig_data, key.sign(sig_data) if signed else None
    )


def result_of(d):
    out = []
    d.addBoth(out.append)
    return out[0]


def test_checker_accepts_listed_keys_and_counts_rejections(tmp_path):
    good, stranger = new_key(), new_key()
    path = tmp_path / "authorized_keys"
    path.write_bytes(good.public().toString("openssh") + b"\n")
    checker = ssh.CountingKeyChecker(ssh.AuthorizedKeysFile(path))
    assert result_of(checker.requestAvatarId(credentials(good))) == b"anyone"
    failure = result_of(checker.requestAvatarId(credentials(stranger)))
    assert failure.check(UnauthorizedLogin)
    assert checker.rejected == 1
    # An unsigned probe is answered "go on and sign" without counting.
    assert result_of(checker.requestAvatarId(credentials(stranger, signed=False))).check(
        ValidPublicKey
    )
    assert checker.rejected == 1
    # The file is read at every attempt: a removed key stops working at once.
    path.write_bytes(b"")
    assert result_of(checker.requestAvatarId(credentials(good))).check(UnauthorizedLogin)


def test_factory_offers_only_publickey_auth(tmp_path):
    # conch's userauth offers exactly the methods the portal's checkers accept.
    factory, _ = ssh.ssh_factory(Capture(["lan0"], 10), task.Clock(), tmp_path)
    assert factory.portal.listCredentialsInterfaces() == [ISSHPrivateKey]
    assert list(factory.publicKeys) == [b"ssh-ed25519"]


# --- the session channel ----------------------------------------------------------


class FakeTransport:
    def getPeer(self):
        return "peer"


class FakeConn:
    transport = FakeTransport()

    def __init__(self):
        self.data, self.requests, self.eof, self.closed = [], [], False, False

    def sendData(self, channel, data):
        self.data.append(data)

    def sendRequest(self, channel, kind, data, wantReply=0):
        self.requests.append((kind, data))

    def sendEOF(self, channel):
        self.eof = True

    def sendClose(self, channel):
        self.closed = True


def open_channel(capture, window=1 << 20):
    clock = task.Clock()
    user = ssh.CaptureUser(capture, clock)
    chan = user.lookupChannel(b"session", window, 32768, b"")
    chan.conn = FakeConn()
    chan.channelOpen(b"")
    return chan, clock


def exec_data(command: bytes) -> bytes:
    return struct.pack(">L", len(command)) + command


def packets(chan):
    return list(PcapNgReader(io.BytesIO(b"".join(chan.conn.data))))


def test_exec_ring_streams_the_ring_after_the_reply_then_exits():
    capture = Capture(["uplink0", "lan0"], 10)
    capture.add(Packet(1, "uplink0", b"\x01" * 60, 60))
    chan, clock = open_channel(capture)
    assert chan.requestReceived(b"exec", exec_data(b"ring")) == 1
    assert chan.conn.data == []  # the success reply goes out first
    clock.advance(0)
    assert [p.sniffed_on for p in packets(chan)] == ["uplink0"]
    assert chan.conn.requests == [(b"exit-status", struct.pack(">L", 0))]
    assert chan.conn.eof and chan.conn.closed


@pytest.mark.parametrize("request_type", [b"shell", b"exec"])
def test_shell_or_any_command_streams_live(request_type):
    capture = Capture(["lan0"], 10)
    chan, clock = open_channel(capture)
    data = exec_data(b"dump") if request_type == b"exec" else b""
    assert chan.requestReceived(b"pty-req", b"") == 1
    assert chan.requestReceived(request_type, data) == 1
    clock.advance(0)
    capture.add(Packet(2, "lan0", b"\x02" * 60, 60))
    assert [p.original for p in packets(chan)] == [b"\x02" * 60]
    assert not chan.conn.closed
    assert chan.requestReceived(b"shell", b"") == 0  # one stream per channel
    chan.closed()
    assert not capture.streams


def test_ctrl_c_from_a_raw_terminal_ends_the_stream():
    capture = Capture(["lan0"], 10)
    chan, clock = open_channel(capture)
    chan.requestReceived(b"pty-req", b"")
    chan.requestReceived(b"shell", b"")
    clock.advance(0)
    chan.dataReceived(b"q")
    assert not chan.conn.closed
    chan.dataReceived(b"\x03")
    assert chan.conn.closed


@pytest.mark.parametrize("request_type", [b"subsystem", b"x11-req", b"auth-agent-req@openssh.com"])
def test_other_requests_are_refused(request_type):
    chan, _ = open_channel(Capture(["lan0"], 10))
    assert not chan.requestReceived(request_type, exec_data(b"sftp"))


def test_only_session_channels():
    user = ssh.CaptureUser(Capture(["lan0"], 10), task.Clock())
    with pytest.raises(Exception, match="unknown channel"):
        user.lookupChannel(b"direct-tcpip", 1 << 20, 32768, b"")


def test_a_full_ssh_window_pauses_the_stream():
    capture = Capture(["lan0"], 1000)
    for i in range(300):
        capture.add(Packet(i, "lan0", b"\x03" * 100, 100))
    chan, clock = open_channel(capture, window=4096)
    chan.requestReceived(b"shell", b"")
    clock.advance(0)
    assert chan.stream.paused
    queued = len(chan.stream.pending)
    assert queued > 0
    chan.addWindowBytes(1 << 24)
    assert not chan.stream.paused and not chan.stream.pending
    assert len(packets(chan)) == 300
