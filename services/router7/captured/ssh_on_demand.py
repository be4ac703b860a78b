"""captured's SSH side, loaded at the first SSH connection rather than at start.

Twisted conch and cryptography cost captured about 13 MiB of its ~50 (bench/memory.py),
and most routers never see an SSH capture. So start-up only checks that the host key
file looks like a private key (a broken one still disables just SSH, at start, as
before) and listens; the first connection imports router7.captured.ssh and builds
the real factory, which then stays. A first start generates the host key in a
short-lived child process, so that conch is not loaded for good by it either.
"""

from __future__ import annotations

import base64
import binascii
import logging
import subprocess
import sys
from pathlib import Path

from twisted.internet import protocol

log = logging.getLogger(__name__)

HOST_KEY = "captured/ssh_host_ed25519_key"  # the same as router7.captured.ssh.HOST_KEY


def check_host_key(perm: Path) -> None:
    """Raise ValueError unless <perm>/captured/ssh_host_ed25519_key is absent (it is then
    generated) or PEM-armoured base64, as every private key format conch reads is."""
    path = perm / HOST_KEY
    if not path.exists():
        generate_host_key(path)
        return
    lines = path.read_bytes().strip().splitlines()
    if (
        len(lines) < 3
        or not lines[0].startswith(b"-----BEGIN ")
        or not lines[-1].startswith(b"-----END ")
    ):
        raise ValueError(f"{path}: not a PEM or OpenSSH private key")
    body = b"".join(line for line in lines[1:-1] if b":" not in line)  # skip PEM headers
    try:
        base64.b64decode(body, validate=True)
    except binascii.Error as e:
        raise ValueError(f"{path}: bad base64: {e}") from None


_GENERATE = (
    "import sys; from pathlib import Path; from router7.captured import ssh; "
    "ssh.load_or_create_host_key(Path(sys.argv[1]))"
)


def generate_host_key(path: Path) -> None:
    """Generate the host key as the first start always did, in a child process."""
    proc = subprocess.run(
        [sys.executable, "-c", _GENERATE, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if proc.returncode != 0 or not path.exists():
        raise OSError(f"generating {path} failed: {proc.stderr.strip()[-300:]}")
    log.info("generated SSH host key %s", path)


class OnDemandSSHFactory(protocol.ServerFactory):
    """Builds router7.captured.ssh's factory at the first connection, then delegates."""

    def __init__(self, capture, reactor, perm: Path):
        self._args = (capture, reactor, perm)
        self._factory = None
        self._checker = None

    @property
    def rejected(self) -> int:
        """Rejected key offers, for /metrics (the checker's count once it exists)."""
        return self._checker.rejected if self._checker is not None else 0

    def buildProtocol(self, addr):
        if self._factory is None:
            from router7.captured import ssh

            try:
                self._factory, self._checker = ssh.ssh_factory(*self._args)
            except (OSError, ValueError, ssh.keys.BadKeyError, ssh.keys.EncryptedKeyError) as e:
                log.error("SSH connection refused: cannot load the host key: %s", e)
                return None  # Twisted closes the connection
            self._factory.doStart()
        return self._factory.buildProtocol(addr)

    def stopFactory(self):
        if self._factory is not None:
            self._factory.doStop()
