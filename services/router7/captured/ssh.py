"""The SSH face of captured (Twisted conch): `ssh -p 5022 router7 | wireshark -k -i -`.

Differences from the original, on purpose:
- Only public keys listed in <perm>/captured/authorized_keys get in (the
  original accepted any key). The file is read at every login, so adding a
  key needs no restart. The user name is ignored. No password auth exists.
- The host key is <perm>/captured/ssh_host_ed25519_key, generated on first
  start; router7's <perm>/breakglass.host_key (PEM) is offered as well when
  present, so clients that know the old router7's host key keep trusting it.
- The stream is pcapng (one interface description per interface), not pcap.

Any `exec` or `shell` request streams the capture: the ring, then live
packets, until the client goes away. The exec command `ring` sends only the
ring and then exits (for saving a file). pty-req is accepted and ignored
(ssh asks for one when run from a terminal); nothing else is allowed: no
subsystems, no port forwarding, no other channel types.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch import avatar, checkers
from twisted.conch.error import ValidPublicKey
from twisted.conch.ssh import channel, factory, keys, transport
from twisted.cred import portal
from twisted.cred.error import UnauthorizedLogin
from zope.interface import implementer

from router7.captured.stream import Capture, PcapngStream
from router7.runtime.statefile import write_bytes_atomic

log = logging.getLogger(__name__)

HOST_KEY = "captured/ssh_host_ed25519_key"
BREAKGLASS_HOST_KEY = "breakglass.host_key"
AUTHORIZED_KEYS = "captured/authorized_keys"


# --- host keys -------------------------------------------------------------------


def load_or_create_host_key(path: Path) -> keys.Key:
    """The Ed25519 host key at ``path``, generated (and persisted atomically) if absent."""
    if path.exists():
        return keys.Key.fromFile(str(path))
    key = keys.Key(ed25519.Ed25519PrivateKey.generate())
    write_bytes_atomic(path, key.toString("openssh"), mode=0o600)
    write_bytes_atomic(
        path.with_name(path.name + ".pub"), key.public().toString("openssh") + b" router7\n"
    )
    log.info("generated SSH host key %s (%s)", path, key.fingerprint())
    return key


def _private_key(data: bytes) -> keys.Key:
    """An unencrypted private key in any PEM or OpenSSH format.

    conch reads OpenSSH and traditional PEM ("BEGIN RSA PRIVATE KEY"); PKCS#8
    ("BEGIN PRIVATE KEY") goes through cryptography.
    """
    try:
        key = keys.Key.fromString(data)
    except keys.BadKeyError:
        key = keys.Key(serialization.load_pem_private_key(data, password=None))
    if key.isPublic():
        raise ValueError("a public key, not a private one")
    return key


def host_keys(perm: Path) -> dict[bytes, keys.Key]:
    """Private host keys by SSH key type; the breakglass key wins a type clash."""
    own = load_or_create_host_key(perm / HOST_KEY)
    found = {own.sshType(): own}
    breakglass = perm / BREAKGLASS_HOST_KEY
    if breakglass.exists():
        try:
            found_key = _private_key(breakglass.read_bytes())
            found[found_key.sshType()] = found_key
        except (OSError, ValueError, TypeError, keys.BadKeyError, keys.EncryptedKeyError) as e:
            log.warning("ignoring %s: %s", breakglass, e)
    for key in found.values():
        log.info("SSH host key %s %s", key.sshType().decode(), key.fingerprint())
    return found


# --- client keys -----------------------------------------------------------------


def read_authorized_keys(path: Path) -> list[keys.Key]:
    """Public keys of an OpenSSH authorized_keys file; a missing file means none.

    Lines with options (from="...", command="...", ...) are skipped rather
    than honoured partially: ignoring a restriction would widen access.
    """
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    except OSError as e:
        log.error("cannot read %s: %s", path, e)
        return []
    found = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            key = keys.Key.fromString(line)
        except (keys.BadKeyError, ValueError, IndexError) as e:
            log.warning(
                "%s:%d: not a public key line (options are unsupported): %s", path, number, e
            )
            continue
        if key.isPublic():
            found.append(key)
    return found


@implementer(checkers.IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The same keys for every user name, re-read on every login attempt."""

    def __init__(self, path: Path):
        self.path = path

    def getAuthorizedKeys(self, username: bytes):
        return read_authorized_keys(self.path)


class CountingKeyChecker(checkers.SSHPublicKeyChecker):
    """SSHPublicKeyChecker that counts rejected (signed) key offers for /metrics."""

    def __init__(self, keydb):
        super().__init__(keydb)
        self.rejected = 0

    def requestAvatarId(self, credentials):
        def count(failure):
            # ValidPublicKey (an UnauthorizedLogin) only means "now sign it".
            if failure.check(UnauthorizedLogin) and not failure.check(ValidPublicKey):
                self.rejected += 1
                log.info("rejected SSH key for user %r", credentials.username)
            return failure

        return super().requestAvatarId(credentials).addErrback(count)


# --- sessions --------------------------------------------------------------------


class CaptureChannel(channel.SSHChannel):
    """A session channel whose only program is the capture stream."""

    name = b"session"

    def channelOpen(self, specificData):
        self.stream: PcapngStream | None = None

    def request_pty_req(self, data):
        # Accepted (refusing makes ssh print a warning) and ignored: the
        # stream is binary either way. See dataReceived for Ctrl-C.
        return 1

    def request_env(self, data):
        return 0

    def request_shell(self, data):
        return self._start(live=True)

    def request_exec(self, data):
        (length,) = struct.unpack(">L", data[:4])
        command = data[4 : 4 + length].strip()
        return self._start(live=command != b"ring")

    def _start(self, live: bool):
        if getattr(self, "stream", None) is not None:
            return 0  # one program per channel
        user: CaptureUser = self.avatar
        self.stream = user.capture.open_stream(
            self.write, live=live, kind="ssh", on_done=self._done
        )
        # Start on the next reactor turn: the request's success reply must
        # reach the client before the first stream bytes.
        user.reactor.callLater(0, self.stream.start)
        log.info("SSH client %s streaming (%s)", self.getPeer(), "live" if live else "ring")
        return 1

    def _done(self):
        """A ring-only stream is complete: exit status 0, EOF, close."""
        self.conn.sendRequest(self, b"exit-status", struct.pack(">L", 0))
        self.conn.sendEOF(self)
        self.loseConnection()

    def stopWriting(self):
        if getattr(self, "stream", None) is not None:
            self.stream.pauseProducing()

    def startWriting(self):
        if getattr(self, "stream", None) is not None:
            self.stream.resumeProducing()

    def dataReceived(self, data):
        # With a pty the client's terminal is raw, so Ctrl-C/Ctrl-D arrive here.
        if b"\x03" in data or b"\x04" in data:
            self.loseConnection()

    def eofReceived(self):
        pass  # wireshark never writes; EOF on stdin must not end the stream

    def closed(self):
        if getattr(self, "stream", None) is not None:
            self.avatar.capture.close_stream(self.stream)
            self.stream = None


class CaptureUser(avatar.ConchUser):
    def __init__(self, capture: Capture, reactor):
        super().__init__()
        self.capture = capture
        self.reactor = reactor
        self.channelLookup = {b"session": CaptureChannel}


@implementer(portal.IRealm)
class CaptureRealm:
    def __init__(self, capture: Capture, reactor):
        self.capture = capture
        self.reactor = reactor

    def requestAvatar(self, avatarId, mind, *interfaces):
        from twisted.conch.interfaces import IConchUser

        if IConchUser not in interfaces:
            raise NotImplementedError("only IConchUser")
        return IConchUser, CaptureUser(self.capture, self.reactor), lambda: None


class _ServerTransport(transport.SSHServerTransport):
    def receiveError(self, reasonCode, description):
        # conch logs every client's goodbye as an error; an ordinary
        # disconnect (wireshark closed) is not one.
        log.info("SSH client disconnected: %s (code %d)", description, reasonCode)


class CaptureSSHFactory(factory.SSHFactory):
    protocol = _ServerTransport

    def __init__(self, private_keys: dict[bytes, keys.Key], the_portal: portal.Portal):
        self.privateKeys = private_keys
        self.publicKeys = {t: k.public() for t, k in private_keys.items()}
        self.portal = the_portal
        self.primes = None  # no moduli file: conch then uses fixed-group key exchanges only

    def getPrimes(self):
        return None


def ssh_factory(
    capture: Capture, reactor, perm: Path
) -> tuple[CaptureSSHFactory, CountingKeyChecker]:
    """The SSH server factory for ``capture``, with keys from ``perm``."""
    keys_path = perm / AUTHORIZED_KEYS
    checker = CountingKeyChecker(AuthorizedKeysFile(keys_path))
    the_portal = portal.Portal(CaptureRealm(capture, reactor), [checker])
    server = CaptureSSHFactory(host_keys(perm), the_portal)  # creates <perm>/captured/
    if not read_authorized_keys(keys_path):
        log.warning("no keys in %s: every SSH login will be refused", keys_path)
    return server, checker
