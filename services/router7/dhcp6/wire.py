"""DHCPv6 messages on the wire (RFC 8415): decode server messages, encode client messages.

Encoding and field parsing use scapy's DHCP6 layers. Scapy is lenient by design: a
truncated or inconsistent option silently becomes a Raw layer, or a negative length
slices the wrong bytes. A client that acts on a half-parsed Reply could configure a
wrong prefix, so ``decode`` first checks the TLV framing by hand (see _check_framing)
and turns every remaining oddity into a DecodeError with a short reason that becomes
a metric label.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network

from scapy.config import conf
from scapy.layers import dhcp6 as s
from scapy.packet import NoPayload, Packet, Raw

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
OPT_CLIENTID, OPT_SERVERID, OPT_IA_NA, OPT_IAADDR = 1, 2, 3, 5
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


def _check_framing(data: bytes, depth: int = 0) -> None:
    """Walk the option TLVs: every length must fit its container exactly.

    Hand-written because scapy never reports a bad length; it only yields a
    different parse.
    """
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
        if code in _NESTED_HEADER:
            _check_framing(body[_NESTED_HEADER[code] :], depth + 1)
        i += 4 + length


def _status(opt) -> Status:
    # fiber7's server NUL-terminates its status messages; the NUL is not part of the text.
    text = bytes(opt.statusmsg).rstrip(b"\0").decode("utf-8", errors="replace")
    return Status(int(opt.statuscode), text)


def _first_status(options) -> Status | None:
    for opt in options:
        if isinstance(opt, s.DHCP6OptStatusCode):
            return _status(opt)
    return None


def _ia(opt, sub_options, binding_of) -> IA:
    bindings = []
    for sub in sub_options:
        b = binding_of(sub)
        if b is not None:
            bindings.append(b)
    return IA(
        iaid=int(opt.iaid),
        t1=int(opt.T1),
        t2=int(opt.T2),
        bindings=tuple(bindings),
        status=_first_status(sub_options),
    )


def _address(sub) -> Binding | None:
    if not isinstance(sub, s.DHCP6OptIAAddress):
        return None
    return Binding(
        IPv6Network(f"{sub.addr}/128"),
        int(sub.preflft),
        int(sub.validlft),
        _first_status(sub.iaaddropts),
    )


def _prefix(sub) -> Binding | None:
    if not isinstance(sub, s.DHCP6OptIAPrefix):
        return None
    if sub.plen > 128:
        raise DecodeError("malformed_option", f"prefix length {sub.plen}")
    # strict=False: a server may send host bits; the prefix is what counts.
    net = IPv6Network(f"{sub.prefix}/{sub.plen}", strict=False)
    return Binding(net, int(sub.preflft), int(sub.validlft), _first_status(sub.iaprefopts))


def _options(pkt: Packet):
    """The top-level options, which scapy chains as payloads."""
    opt = pkt.payload
    while not isinstance(opt, NoPayload):
        yield opt
        opt = opt.payload


def decode(data: bytes) -> Message:
    """Parse a server-to-client message; raise DecodeError for anything unusable."""
    if len(data) < 4:
        raise DecodeError("too_short", f"{len(data)} bytes")
    msg_type = data[0]
    if msg_type in (12, 13):
        raise DecodeError("relay_message")  # only relay agents handle these
    cls = s.get_cls(s.dhcp6_cls_by_type.get(msg_type, ""), None)
    if cls is None:
        raise DecodeError("unknown_type", str(msg_type))
    _check_framing(data[4:])
    try:
        return _extract(cls(data), msg_type)
    except DecodeError:
        raise
    except Exception as e:  # scapy or ipaddress on bytes the framing check let through
        raise DecodeError("malformed_option", f"{type(e).__name__}: {e}") from None


def _extract(pkt: Packet, msg_type: int) -> Message:
    msg = Message(msg_type=msg_type, tid=int(pkt.trid))
    for opt in _options(pkt):
        if isinstance(opt, Raw | conf.padding_layer):
            raise DecodeError("malformed_option", "unparsed bytes")
        if isinstance(opt, s.DHCP6OptServerId):  # before ClientId: it subclasses it
            msg.server_id = bytes(opt.duid)
        elif isinstance(opt, s.DHCP6OptClientId):
            msg.client_id = bytes(opt.duid)
        elif isinstance(opt, s.DHCP6OptIA_NA):
            msg.ia_na.append(_ia(opt, opt.ianaopts, _address))
        elif isinstance(opt, s.DHCP6OptIA_PD):
            msg.ia_pd.append(_ia(opt, opt.iapdopt, _prefix))
        elif isinstance(opt, s.DHCP6OptPref):
            msg.preference = int(opt.prefval)
        elif isinstance(opt, s.DHCP6OptServerUnicast):
            msg.server_unicast = IPv6Address(opt.srvaddr)
        elif isinstance(opt, s.DHCP6OptStatusCode):
            msg.status = _status(opt)
        elif isinstance(opt, s.DHCP6OptRapidCommit):
            msg.rapid_commit = True
        elif isinstance(opt, s.DHCP6OptDNSServers):
            msg.dns.extend(ipaddress.IPv6Address(a) for a in opt.dnsservers)
        elif isinstance(opt, s.DHCP6OptDNSDomains):
            msg.domains.extend(_domain(d) for d in opt.dnsdomains)
        elif getattr(opt, "optcode", None) == OPT_SOL_MAX_RT:
            msg.sol_max_rt = struct.unpack("!I", bytes(opt.data)[:4])[0]
        # Everything else (Authentication, Vendor options, ...) is ignored on purpose.
    return msg


def _domain(name) -> str:
    text = name.decode("ascii", errors="replace") if isinstance(name, bytes) else str(name)
    return text.rstrip(".")


# --- encoding ----------------------------------------------------------------

_CLIENT_CLASSES = {
    SOLICIT: s.DHCP6_Solicit,
    REQUEST: s.DHCP6_Request,
    RENEW: s.DHCP6_Renew,
    REBIND: s.DHCP6_Rebind,
    RELEASE: s.DHCP6_Release,
}


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
    pkt = _CLIENT_CLASSES[msg_type](trid=tid & 0xFFFFFF)
    pkt /= s.DHCP6OptClientId(duid=Raw(client_duid))
    if server_duid is not None:
        pkt /= s.DHCP6OptServerId(duid=Raw(server_duid))
    # Elapsed time is in hundredths of a second and saturates at 0xffff (RFC 8415 21.9).
    pkt /= s.DHCP6OptElapsedTime(elapsedtime=max(0, min(int(elapsed_cs), 0xFFFF)))
    if oro and msg_type != RELEASE:
        pkt /= s.DHCP6OptOptReq(reqopts=list(oro))
    if rapid_commit and msg_type == SOLICIT:
        pkt /= s.DHCP6OptRapidCommit()
    for ia in ia_na:
        subs = [
            s.DHCP6OptIAAddress(addr=str(b.network.network_address), preflft=0, validlft=0)
            for b in ia.bindings
        ]
        pkt /= s.DHCP6OptIA_NA(iaid=ia.iaid, T1=0, T2=0, ianaopts=subs)
    for ia in ia_pd:
        # Lifetimes and T1/T2 from a client are hints the server ignores; RFC 8415
        # says to send 0 (sections 21.4, 21.21, 21.22).
        subs = [
            s.DHCP6OptIAPrefix(
                preflft=0,
                validlft=0,
                plen=b.network.prefixlen,
                prefix=str(b.network.network_address),
            )
            for b in ia.bindings
        ]
        pkt /= s.DHCP6OptIA_PD(iaid=ia.iaid, T1=0, T2=0, iapdopt=subs)
    return bytes(pkt)
