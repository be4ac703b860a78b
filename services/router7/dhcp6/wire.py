"""DHCPv6 messages on the wire (RFC 8415): decode server messages, encode client messages.

A small codec of its own: the client reads a dozen option types and writes six, all
fixed layouts. It used scapy's DHCP6 layers until bench/memory.py showed what they
cost: importing scapy took 32 MiB of router7-dhcp6's memory and 0.15 s of its start
(start-up time is outage time after every update). The tests still build and parse
messages with scapy to check this codec against it. A client that acts on a
half-parsed Reply could configure a wrong prefix, so ``decode`` first checks the TLV
framing (see _check_framing) and turns every oddity into a DecodeError with a short
reason that becomes a metric label.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

# Message types (RFC 8415 section 7.3).
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY, RELEASE = 1, 2, 3, 4, 5, 6, 7, 8
DECLINE, RECONFIGURE, INFORMATION_REQUEST = 9, 10, 11
MESSAGE_NAMES = {
    SOLICIT: "solicit",
    ADVERTISE: "advertise",
    REQUEST: "request",
    CONFIRM: "confirm",
    RENEW: "renew",
    REBIND: "rebind",
    REPLY: "reply",
    RELEASE: "release",
    DECLINE: "decline",
    RECONFIGURE: "reconfigure",
    INFORMATION_REQUEST: "information-request",
    12: "relay-forward",
    13: "relay-reply",
}

# Option codes we act on.
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR, OPT_ORO, OPT_ELAPSED_TIME = 1, 2, 3, 5, 6, 8
OPT_PREFERENCE, OPT_STATUS_CODE, OPT_UNICAST, OPT_RAPID_COMMIT = 7, 13, 12, 14
OPT_DNS_SERVERS, OPT_DOMAIN_LIST, OPT_IA_PD, OPT_IAPREFIX = 23, 24, 25, 26
OPT_SOL_MAX_RT = 82

# Status codes (RFC 8415 section 21.13).
SUCCESS, UNSPEC_FAIL, NO_ADDRS_AVAIL, NO_BINDING, NOT_ON_LINK, USE_MULTICAST = 0, 1, 2, 3, 4, 5
NO_PREFIX_AVAIL = 6
STATUS_NAMES = {
    SUCCESS: "Success",
    UNSPEC_FAIL: "UnspecFail",
    NO_ADDRS_AVAIL: "NoAddrsAvail",
    NO_BINDING: "NoBinding",
    NOT_ON_LINK: "NotOnLink",
    USE_MULTICAST: "UseMulticast",
    NO_PREFIX_AVAIL: "NoPrefixAvail",
}

INFINITY = 0xFFFFFFFF

# Fixed bytes before the sub-options of the options that nest others.
_NESTED_HEADER = {OPT_IA_NA: 12, OPT_IA_PD: 12, OPT_IAADDR: 24, OPT_IAPREFIX: 25}
_MIN_LENGTH = {
    OPT_CLIENTID: 1,
    OPT_SERVERID: 1,
    OPT_PREFERENCE: 1,
    OPT_UNICAST: 16,
    OPT_STATUS_CODE: 2,
    OPT_SOL_MAX_RT: 4,
    **_NESTED_HEADER,
}
# Options whose length is fixed: anything else is refused, not half-read.
_EXACT_LENGTH = {OPT_PREFERENCE: 1, OPT_UNICAST: 16, OPT_RAPID_COMMIT: 0}


class DecodeError(ValueError):
    """A datagram that is not a usable DHCPv6 message; ``reason`` is a metric label."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Status:
    code: int
    message: str = ""

    @property
    def name(self) -> str:
        return STATUS_NAMES.get(self.code, str(self.code))


@dataclass(frozen=True)
class Binding:
    """An IA Address (network is a /128) or an IA Prefix, with its lifetimes in seconds."""

    network: IPv6Network
    preferred: int
    valid: int
    status: Status | None = None


@dataclass(frozen=True)
class IA:
    """An IA_NA or IA_PD option."""

    iaid: int
    t1: int = 0
    t2: int = 0
    bindings: tuple[Binding, ...] = ()
    status: Status | None = None


@dataclass
class Message:
    """The parts of a server message a client needs."""

    msg_type: int
    tid: int
    client_id: bytes | None = None
    server_id: bytes | None = None
    preference: int = 0
    server_unicast: IPv6Address | None = None
    status: Status | None = None
    ia_na: list[IA] = field(default_factory=list)
    ia_pd: list[IA] = field(default_factory=list)
    dns: list[IPv6Address] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    rapid_commit: bool = False
    sol_max_rt: int | None = None

    @property
    def type_name(self) -> str:
        return MESSAGE_NAMES.get(self.msg_type, f"type-{self.msg_type}")


# --- decoding ----------------------------------------------------------------


def _walk(data: bytes):
    """(code, body) of each option in ``data`` (framing checked beforehand)."""
    i = 0
    while i < len(data):
        code, length = struct.unpack_from("!HH", data, i)
        yield code, data[i + 4 : i + 4 + length]
        i += 4 + length


def _check_framing(data: bytes, depth: int = 0) -> None:
    """Walk the option TLVs: every length must fit its container exactly."""
    if depth > 3:
        raise DecodeError("malformed_option", "nesting too deep")
    i = 0
    while i < len(data):
        if len(data) - i < 4:
            raise DecodeError("malformed_option", "truncated option header")
        code, length = struct.unpack_from("!HH", data, i)
        body = data[i + 4 : i + 4 + length]
        if len(body) != length:
            raise DecodeError("malformed_option", f"option {code} runs past its container")
        if length < _MIN_LENGTH.get(code, 0):
            raise DecodeError("malformed_option", f"option {code} too short ({length})")
        if _EXACT_LENGTH.get(code, length) != length:
            raise DecodeError("malformed_option", f"option {code} has length {length}")
        if code in _NESTED_HEADER:
            _check_framing(body[_NESTED_HEADER[code] :], depth + 1)
        i += 4 + length


def _status(body: bytes) -> Status:
    # fiber7's server NUL-terminates its status messages; the NUL is not part of the text.
    text = body[2:].rstrip(b"\0").decode("utf-8", errors="replace")
    return Status(struct.unpack_from("!H", body)[0], text)


def _first_status(options: bytes) -> Status | None:
    for code, body in _walk(options):
        if code == OPT_STATUS_CODE:
            return _status(body)
    return None


def _ia(body: bytes, binding_code: int, binding_of) -> IA:
    iaid, t1, t2 = struct.unpack_from("!III", body)
    subs = body[12:]
    return IA(
        iaid=iaid,
        t1=t1,
        t2=t2,
        bindings=tuple(binding_of(b) for code, b in _walk(subs) if code == binding_code),
        status=_first_status(subs),
    )


def _address(body: bytes) -> Binding:
    preferred, valid = struct.unpack_from("!II", body, 16)
    net = IPv6Network((IPv6Address(body[:16]), 128))
    return Binding(net, preferred, valid, _first_status(body[24:]))


def _prefix(body: bytes) -> Binding:
    preferred, valid, plen = struct.unpack_from("!IIB", body)
    if plen > 128:
        raise DecodeError("malformed_option", f"prefix length {plen}")
    # strict=False: a server may send host bits; the prefix is what counts.
    net = IPv6Network((IPv6Address(body[9:25]), plen), strict=False)
    return Binding(net, preferred, valid, _first_status(body[25:]))


def _domains(body: bytes) -> list[str]:
    """RFC 1035 names, uncompressed (RFC 8415 section 10), one after the other."""
    names, labels, i = [], [], 0
    while i < len(body):
        n = body[i]
        if n == 0:
            names.append(".".join(labels))
            labels, i = [], i + 1
            continue
        if n > 63 or i + 1 + n > len(body):
            raise DecodeError("malformed_option", "bad domain name label")
        labels.append(body[i + 1 : i + 1 + n].decode("ascii", errors="replace"))
        i += 1 + n
    if labels:
        raise DecodeError("malformed_option", "unterminated domain name")
    return names


def _addresses(body: bytes) -> list[IPv6Address]:
    if len(body) % 16:
        raise DecodeError("malformed_option", f"DNS servers: {len(body)} bytes")
    return [IPv6Address(body[i : i + 16]) for i in range(0, len(body), 16)]


# Message types a server may send a client; relay messages are refused on their own.
_SERVER_TYPES = frozenset(range(SOLICIT, INFORMATION_REQUEST + 1))


def decode(data: bytes) -> Message:
    """Parse a server-to-client message; raise DecodeError for anything unusable."""
    if len(data) < 4:
        raise DecodeError("too_short", f"{len(data)} bytes")
    msg_type = data[0]
    if msg_type in (12, 13):
        raise DecodeError("relay_message")  # only relay agents handle these
    if msg_type not in _SERVER_TYPES:
        raise DecodeError("unknown_type", str(msg_type))
    _check_framing(data[4:])
    msg = Message(msg_type=msg_type, tid=int.from_bytes(data[1:4], "big"))
    for code, body in _walk(data[4:]):
        if code == OPT_SERVERID:
            msg.server_id = body
        elif code == OPT_CLIENTID:
            msg.client_id = body
        elif code == OPT_IA_NA:
            msg.ia_na.append(_ia(body, OPT_IAADDR, _address))
        elif code == OPT_IA_PD:
            msg.ia_pd.append(_ia(body, OPT_IAPREFIX, _prefix))
        elif code == OPT_PREFERENCE:
            msg.preference = body[0]
        elif code == OPT_UNICAST:
            msg.server_unicast = IPv6Address(body)
        elif code == OPT_STATUS_CODE:
            msg.status = _status(body)
        elif code == OPT_RAPID_COMMIT:
            msg.rapid_commit = True
        elif code == OPT_DNS_SERVERS:
            msg.dns.extend(_addresses(body))
        elif code == OPT_DOMAIN_LIST:
            msg.domains.extend(_domains(body))
        elif code == OPT_SOL_MAX_RT:
            msg.sol_max_rt = struct.unpack_from("!I", body)[0]
        # Everything else (Authentication, Vendor options, ...) is ignored on purpose.
    return msg


# --- encoding ----------------------------------------------------------------

_CLIENT_TYPES = frozenset({SOLICIT, REQUEST, RENEW, REBIND, RELEASE})


def _opt(code: int, body: bytes = b"") -> bytes:
    return struct.pack("!HH", code, len(body)) + body


def encode(
    msg_type: int,
    tid: int,
    client_duid: bytes,
    *,
    server_duid: bytes | None = None,
    elapsed_cs: int = 0,
    ia_na: list[IA] = (),
    ia_pd: list[IA] = (),
    oro: tuple[int, ...] = (OPT_DNS_SERVERS, OPT_DOMAIN_LIST),
    rapid_commit: bool = False,
) -> bytes:
    """Build a client message. DUIDs are sent byte for byte (fiber7 uses type 0x000a)."""
    if msg_type not in _CLIENT_TYPES:
        raise KeyError(msg_type)
    out = [bytes([msg_type]) + (tid & 0xFFFFFF).to_bytes(3, "big"), _opt(OPT_CLIENTID, client_duid)]
    if server_duid is not None:
        out.append(_opt(OPT_SERVERID, server_duid))
    # Elapsed time is in hundredths of a second and saturates at 0xffff (RFC 8415 21.9).
    out.append(_opt(OPT_ELAPSED_TIME, struct.pack("!H", max(0, min(int(elapsed_cs), 0xFFFF)))))
    if oro and msg_type != RELEASE:
        out.append(_opt(OPT_ORO, struct.pack(f"!{len(oro)}H", *oro)))
    if rapid_commit and msg_type == SOLICIT:
        out.append(_opt(OPT_RAPID_COMMIT))
    for ia in ia_na:
        subs = b"".join(
            _opt(OPT_IAADDR, b.network.network_address.packed + bytes(8)) for b in ia.bindings
        )
        out.append(_opt(OPT_IA_NA, struct.pack("!III", ia.iaid, 0, 0) + subs))
    for ia in ia_pd:
        # Lifetimes and T1/T2 from a client are hints the server ignores; RFC 8415
        # says to send 0 (sections 21.4, 21.21, 21.22).
        subs = b"".join(
            _opt(
                OPT_IAPREFIX,
                struct.pack("!IIB", 0, 0, b.network.prefixlen) + b.network.network_address.packed,
            )
            for b in ia.bindings
        )
        out.append(_opt(OPT_IA_PD, struct.pack("!III", ia.iaid, 0, 0) + subs))
    return b"".join(out)
