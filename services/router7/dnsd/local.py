"""Names the router answers itself: its own name, DHCP clients, localhost, private reverse zones.

Pure: built from the router's name and addresses plus the dhcp4d leases, with
``now`` passed in. ``LocalNames.answer`` returns a packed reply, or None when
the query belongs to the internet and must be forwarded.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dnslib import AAAA, PTR, QTYPE, RR, SOA, A, DNSHeader, DNSLabel, DNSQuestion, DNSRecord

from router7.dhcp4d import store as dhcp4d_store
from router7.dnsd.wire import RCODE_NXDOMAIN, Query, opt_record
from router7.runtime.statefile import StateFileError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CLASS_IN, CLASS_ANY = 1, 255
_LABEL = re.compile(rb"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

# Reverse zones that only make sense inside this network (RFC 6303, RFC 7793):
# answered here, never forwarded, so private addresses do not leak to the ISP.
PRIVATE_REVERSE = [
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "127.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
        "fe80::/10",
        "::1/128",
    )
]


@dataclass(frozen=True)
class Lease:
    """What dnsd needs of one of dhcp4d's leases (router7.dhcp4d.leases.Lease)."""

    hostname: str  # the override if the owner set one
    addr: ipaddress.IPv4Address
    expiry: datetime | None  # None: static, never expires


def read_leases(path: Path) -> list[Lease]:
    """dhcp4d's leases.json through its owner's reader (router7's format or ours); bad
    entries are skipped, a missing or bad file means no leases (both logged)."""
    try:
        leases, errors = dhcp4d_store.read(path)
    except StateFileError as e:
        if e.reason != "does not exist":
            log.warning("ignoring leases: %s", e)
        return []
    for e in errors:
        log.warning("skipping lease: %s", e)
    return [
        Lease(
            lease.hostname_override or lease.hostname,
            lease.addr,
            None if lease.expiry is None else datetime.fromtimestamp(lease.expiry, UTC),
        )
        for lease in leases
    ]


def label_of(name: str) -> bytes | None:
    """A host name as one lower-case DNS label, or None if it is not a usable one."""
    try:
        label = name.strip().lower().removesuffix(".").encode("ascii")
    except UnicodeEncodeError:
        return None
    return label if _LABEL.match(label) else None


@dataclass
class Host:
    name: bytes
    v4: list[ipaddress.IPv4Address] = field(default_factory=list)
    v6: list[ipaddress.IPv6Address] = field(default_factory=list)


def reverse_labels(ip: IPAddress) -> tuple[bytes, ...]:
    return tuple(label.encode() for label in ip.reverse_pointer.split("."))


# 127.0.0.1 (any name under 127.in-addr.arpa with four octets) and ::1 are localhost.
_LOOPBACK_PTR = (
    reverse_labels(ipaddress.ip_address("127.0.0.1")),
    reverse_labels(ipaddress.ip_address("::1")),
)


class LocalNames:
    def __init__(
        self,
        router_name: str,
        router_addrs: list[IPAddress],
        leases: list[Lease],
        now: datetime,
        domain: str = "lan",
        ttl: int = 60,
    ):
        self.domain = domain.lower().encode()
        self.ttl = ttl
        self.hosts: dict[bytes, Host] = {}
        self.ptr: dict[tuple[bytes, ...], bytes] = {}
        own = self.router = label_of(router_name)
        if own:
            host = Host(own)
            for a in router_addrs:
                (host.v4 if a.version == 4 else host.v6).append(a)
            self._add(host)
        # Newest lease first, static leases before all; the first holder of a name keeps
        # it, so the router's own name can never be claimed by a client (router7 #11).
        live = [lease for lease in leases if lease.expiry is None or lease.expiry > now]
        never = datetime.max.replace(tzinfo=UTC)
        live.sort(key=lambda lease: lease.expiry or never, reverse=True)
        for lease in live:
            label = label_of(lease.hostname)
            if label is None or label in self.hosts or label in (b"localhost", self.domain):
                continue
            self._add(Host(label, v4=[lease.addr]))

    def _add(self, host: Host) -> None:
        self.hosts[host.name] = host
        for a in host.v4 + host.v6:
            self.ptr.setdefault(reverse_labels(a), host.name)

    # --- answering ----------------------------------------------------------

    def answer(self, q: Query) -> bytes | None:
        """A packed reply if ``q`` is ours to answer, else None (forward it)."""
        if q.qclass not in (CLASS_IN, CLASS_ANY) or not q.labels:
            return None
        labels = q.labels
        if labels[-1] == b"localhost":
            return self._localhost(q)
        if labels[-1] == self.domain:
            apex = (self.domain,)
            if len(labels) == 2 and labels[0] in self.hosts:
                return self._host(q, self.hosts[labels[0]], apex)
            return self._reply(q, [], apex, rcode=0 if len(labels) == 1 else RCODE_NXDOMAIN)
        if len(labels) == 1 and labels[0] in self.hosts:
            return self._host(q, self.hosts[labels[0]], (self.domain,))
        apex = private_reverse_apex(labels)
        if apex is not None:
            return self._reverse(q, apex)
        return None

    def _localhost(self, q: Query) -> bytes:
        # RFC 6761 6.3: localhost and every name under it are the loopback addresses.
        rrs = []
        if q.qtype in (QTYPE.A, QTYPE.ANY):
            rrs.append(A("127.0.0.1"))
        if q.qtype in (QTYPE.AAAA, QTYPE.ANY):
            rrs.append(AAAA("::1"))
        return self._reply(q, rrs, (b"localhost",))

    def _host(self, q: Query, host: Host, apex: tuple[bytes, ...]) -> bytes:
        rrs = []
        if q.qtype in (QTYPE.A, QTYPE.ANY):
            rrs += [A(str(a)) for a in host.v4]
        if q.qtype in (QTYPE.AAAA, QTYPE.ANY):
            rrs += [AAAA(str(a)) for a in host.v6]
        return self._reply(q, rrs, apex)  # other types: empty NOERROR

    def _reverse(self, q: Query, apex: tuple[bytes, ...]) -> bytes:
        labels = q.labels
        if labels in self.ptr:
            target = (self.ptr[labels], self.domain)
        elif labels in _LOOPBACK_PTR or (len(labels) == 6 and labels[3:] == _LOOPBACK_PTR[0][3:]):
            target = (b"localhost",)
        else:
            # The zone's apex exists (empty); anything else unknown does not.
            return self._reply(q, [], apex, rcode=0 if labels == apex else RCODE_NXDOMAIN)
        rrs = [PTR(DNSLabel(list(target)))] if q.qtype in (QTYPE.PTR, QTYPE.ANY) else []
        return self._reply(q, rrs, apex)

    def _reply(self, q: Query, rdatas: list, apex: tuple[bytes, ...], rcode: int = 0) -> bytes:
        header = DNSHeader(id=q.id, qr=1, aa=1, ra=1, rd=int(q.rd), rcode=rcode)
        qname = DNSLabel(list(q.labels))
        reply = DNSRecord(header, q=DNSQuestion(qname, q.qtype, q.qclass))
        for rdata in rdatas:
            rtype = getattr(QTYPE, type(rdata).__name__)
            reply.add_answer(RR(qname, rtype, rdata=rdata, ttl=self.ttl))
        if not rdatas:
            # The SOA lets resolvers cache the negative answer (RFC 2308).
            zone = DNSLabel(list(apex))
            mname = DNSLabel([self.router, self.domain]) if self.router else zone
            soa = SOA(
                mname, DNSLabel([b"hostmaster", self.domain]), (1, 3600, 600, 86400, self.ttl)
            )
            reply.add_auth(RR(zone, QTYPE.SOA, rdata=soa, ttl=self.ttl))
        packed = bytes(reply.pack())
        n = len(q.question)
        if packed[12 : 12 + n].lower() == q.question.lower():
            packed = packed[:12] + q.question + packed[12 + n :]  # the client's spelling (0x20)
        return _with_opt(packed, opt_record(q.do)) if q.edns else packed


def _with_opt(packed: bytes, opt: bytes) -> bytes:
    arcount = int.from_bytes(packed[10:12], "big") + 1
    return packed[:10] + arcount.to_bytes(2, "big") + packed[12:] + opt


def private_reverse_apex(labels: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
    """The locally served reverse zone ``labels`` lies in, or None for public space."""
    if labels[-2:] == (b"in-addr", b"arpa"):
        octets = labels[:-2][::-1]
        for net in PRIVATE_REVERSE:
            if net.version != 4:
                continue
            # A zone is cut at an octet boundary; /10 and /12 span several such zones.
            whole = (net.prefixlen + 7) // 8
            if len(octets) < whole:
                continue
            try:
                values = [int(o) for o in octets[:whole]]
            except ValueError:
                return None
            if any(
                not 0 <= v <= 255 or str(v).encode() != o
                for v, o in zip(values, octets, strict=False)
            ):
                return None
            base = ipaddress.IPv4Address(bytes(values + [0] * (4 - whole)))
            if base in net:
                return tuple(str(v).encode() for v in values[::-1]) + (b"in-addr", b"arpa")
        return None
    if labels[-2:] == (b"ip6", b"arpa"):
        nibbles = labels[:-2][::-1]
        for net in PRIVATE_REVERSE:
            if net.version != 6:
                continue
            whole = (net.prefixlen + 3) // 4
            if len(nibbles) < whole or any(
                len(n) != 1 or n not in b"0123456789abcdef" for n in nibbles[:whole]
            ):
                continue
            value = int(b"".join(nibbles[:whole]), 16) << (4 * (32 - whole))
            if ipaddress.IPv6Address(value) in net:
                return tuple(nibbles[:whole][::-1]) + (b"ip6", b"arpa")
        return None
    return None
