"""A small read-only TFTP server: RFC 1350 with options (RFC 2347 OACK,
2348 blksize, 2349 timeout and tsize), for PXE ROMs and iPXE.

No maintained TFTP library fits Twisted (python-tx-tftp is unmaintained and not
on PyPI for Python 3; the asyncio ones would need a second loop), so: a codec
(pure, fuzzed in tests/unit/test_recover_tftp.py), a transfer state machine
(pure: packets in, packets out) and a thin Twisted layer that gives each
transfer its own port, as RFC 1350 asks, and retransmits on timeout.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet import protocol, reactor

log = logging.getLogger(__name__)

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
ERR_UNDEFINED, ERR_NOT_FOUND, ERR_ACCESS, ERR_ILLEGAL, ERR_UNKNOWN_TID, ERR_OPTION = (
    0,
    1,
    2,
    4,
    5,
    8,
)
DEFAULT_BLKSIZE = 512
MIN_BLKSIZE, MAX_BLKSIZE = 8, 65464
# Above the Ethernet MTU a block fragments; 1468 is what PXE ROMs ask for.
CAP_BLKSIZE = 1468
DEFAULT_TIMEOUT, MAX_RETRIES = 2.0, 5


class Malformed(ValueError):
    pass


@dataclass(frozen=True)
class ReadRequest:
    filename: str
    mode: str
    options: dict[str, str] = field(default_factory=dict)


def parse_request(data: bytes) -> ReadRequest:
    """An RRQ; WRQ and everything else is Malformed (this server only reads)."""
    if len(data) < 2:
        raise Malformed("short packet")
    (opcode,) = struct.unpack("!H", data[:2])
    if opcode == WRQ:
        raise Malformed("write request: this server is read-only")
    if opcode != RRQ:
        raise Malformed(f"opcode {opcode} is no request")
    parts = data[2:].split(b"\0")
    if len(parts) < 3 or parts[-1] != b"":
        raise Malformed("request fields are not NUL-terminated")
    fields = parts[:-1]
    if len(fields) % 2:
        raise Malformed("option without a value")
    try:
        filename, mode, *opts = (f.decode("ascii") for f in fields)
    except UnicodeDecodeError as e:
        raise Malformed("non-ASCII request") from e
    if not filename:
        raise Malformed("empty file name")
    mode = mode.lower()
    if mode not in ("octet", "netascii"):
        raise Malformed(f"mode {mode!r} not supported")
    options: dict[str, str] = {}
    for name, value in zip(opts[::2], opts[1::2], strict=True):
        options.setdefault(name.lower(), value)
    return ReadRequest(filename, mode, options)


def parse_ack(data: bytes) -> int:
    if len(data) != 4:
        raise Malformed("ACK is 4 bytes")
    opcode, block = struct.unpack("!HH", data)
    if opcode != ACK:
        raise Malformed(f"opcode {opcode} is no ACK")
    return block


def data_packet(block: int, payload: bytes) -> bytes:
    return struct.pack("!HH", DATA, block & 0xFFFF) + payload


def error_packet(code: int, message: str) -> bytes:
    return struct.pack("!HH", ERROR, code) + message.encode("ascii", "replace") + b"\0"


def oack_packet(options: dict[str, str]) -> bytes:
    return struct.pack("!H", OACK) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in options.items()
    )


def negotiate(requested: dict[str, str], size: int) -> tuple[dict[str, str], int, float]:
    """(options to acknowledge, block size, timeout): unknown or bad options are
    left out of the OACK, which RFC 2347 allows."""
    accepted: dict[str, str] = {}
    blksize, timeout = DEFAULT_BLKSIZE, DEFAULT_TIMEOUT
    if (v := requested.get("blksize", "")).isdigit() and int(v) >= MIN_BLKSIZE:
        blksize = min(int(v), MAX_BLKSIZE, CAP_BLKSIZE)
        accepted["blksize"] = str(blksize)
    if requested.get("tsize") == "0":
        accepted["tsize"] = str(size)
    if (v := requested.get("timeout", "")).isdigit() and 1 <= int(v) <= 255:
        timeout = float(v)
        accepted["timeout"] = v
    return accepted, blksize, timeout


class Source:
    """A file to serve: bytes in memory or a path on disk (read block by block)."""

    def __init__(self, content: bytes | Path):
        self._bytes = content if isinstance(content, bytes) else None
        self._path = None if isinstance(content, bytes) else Path(content)
        self.size = len(self._bytes) if self._bytes is not None else self._path.stat().st_size
        self._fh = None

    def read(self, offset: int, n: int) -> bytes:
        if self._bytes is not None:
            return self._bytes[offset : offset + n]
        if self._fh is None:
            self._fh = self._path.open("rb")
        self._fh.seek(offset)
        return self._fh.read(n)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class Transfer:
    """One read transfer, as a state machine: `first()` gives the first packet,
    `on_packet(data)` the next one to send (None: nothing; `done` says finished).
    Block numbers roll over past 65535 (as tftp-hpa and iPXE do), so files larger
    than 32 MiB at 512-byte blocks still go through."""

    def __init__(self, source: Source, requested: dict[str, str]):
        self.source = source
        self.oack, self.blksize, self.timeout = negotiate(requested, source.size)
        self.block = 0  # the last block sent (absolute, not wrapped)
        self.done = False
        self.sent = 0

    def first(self) -> bytes:
        if self.oack:
            return oack_packet(self.oack)  # block 0 is "the OACK"; its ACK is block 0
        return self._send(1)

    def _send(self, block: int) -> bytes:
        self.block = block
        payload = self.source.read((block - 1) * self.blksize, self.blksize)
        self.sent = (block - 1) * self.blksize + len(payload)
        return data_packet(block, payload)

    def current(self) -> bytes:
        """The packet to retransmit."""
        if self.block == 0:
            return self.first()
        return self._send(self.block)

    def on_packet(self, data: bytes) -> bytes | None:
        if len(data) >= 2 and struct.unpack("!H", data[:2])[0] == ERROR:
            self.done = True  # the client gave up (iPXE does after reading tsize)
            return None
        acked = parse_ack(data)
        if acked != self.block & 0xFFFF:
            return None  # a duplicate ACK: never answer it (Sorcerer's Apprentice)
        last_len = self.sent - (self.block - 1) * self.blksize if self.block else self.blksize
        if self.block and last_len < self.blksize:
            self.done = True
            return None
        return self._send(self.block + 1)


Lookup = Callable[[str], "bytes | Path | None"]


class TransferProtocol(protocol.DatagramProtocol):
    """One transfer on its own port, talking to one client (TID) only."""

    def __init__(self, transfer: Transfer, peer: tuple[str, int], on_done=None, clock=None):
        self.transfer = transfer
        self.peer = peer
        self.on_done = on_done
        self.clock = clock or reactor
        self.retries = 0
        self._timer = None
        self.finished = False

    def startProtocol(self) -> None:
        self._send(self.transfer.first())

    def _send(self, packet: bytes) -> None:
        self.transport.write(packet, self.peer)
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = self.clock.callLater(self.transfer.timeout, self._timeout)

    def _timeout(self) -> None:
        self.retries += 1
        if self.retries > MAX_RETRIES:
            log.warning("tftp: %s:%d stopped answering", *self.peer)
            self._finish(ok=False)
            return
        self._send(self.transfer.current())

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.finished:
            return
        if addr != self.peer:
            self.transport.write(error_packet(ERR_UNKNOWN_TID, "unknown transfer ID"), addr)
            return
        try:
            reply = self.transfer.on_packet(data)
        except Malformed as e:
            self.transport.write(error_packet(ERR_ILLEGAL, str(e)), addr)
            self._finish(ok=False)
            return
        if reply is not None:
            self.retries = 0
            self._send(reply)
        elif self.transfer.done:
            self._finish(ok=True)

    def _finish(self, ok: bool) -> None:
        self.finished = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self.transfer.source.close()
        if self.on_done:
            self.on_done(self, ok)
        self.transport.stopListening()


class TftpServer(protocol.DatagramProtocol):
    """Port 69: each read request starts a TransferProtocol on a fresh port."""

    def __init__(self, lookup: Lookup, interface: str = "", on_transfer=None, clock=None):
        self.lookup = lookup
        self.interface = interface
        self.on_transfer = on_transfer  # callback(filename, peer, ok)
        self.clock = clock or reactor
        self.active: list[TransferProtocol] = []

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            req = parse_request(data)
        except Malformed as e:
            log.info("tftp: %s:%d: %s", *addr, e)
            self.transport.write(error_packet(ERR_ILLEGAL, str(e)), addr)
            return
        content = self.lookup(req.filename.lstrip("/"))
        if content is None:
            log.info("tftp: %s:%d asked for %r: not served", *addr, req.filename)
            self.transport.write(error_packet(ERR_NOT_FOUND, "file not found"), addr)
            return
        log.info("tftp: %s:%d reads %s", *addr, req.filename)
        transfer = Transfer(Source(content), req.options)

        def done(proto: TransferProtocol, ok: bool) -> None:
            self.active.remove(proto)
            if self.on_transfer:
                self.on_transfer(req.filename, addr, ok)

        proto = TransferProtocol(transfer, addr, done, self.clock)
        self.active.append(proto)
        reactor.listenUDP(0, proto, interface=self.interface)
