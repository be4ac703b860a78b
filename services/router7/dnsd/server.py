"""Answering clients: the query path, and UDP/TCP listeners on the LAN addresses only.

``DnsServer.handle`` is the whole decision for one query (refuse, local answer,
cache, forward) with no sockets of its own; ``dns_endpoints`` are what the
runtime's listener pool binds to every address of the LAN side (never to an
uplink). Because Linux accepts packets
for any local address on any interface (the weak host model), binding alone does
not keep the internet out: each query's source must also lie in a network the
router is connected to on the LAN side, else it is REFUSED.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable

from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.protocols.basic import Int16StringReceiver
from twisted.protocols.policies import TimeoutMixin

from router7.dnsd.cache import Cache, Entry
from router7.dnsd.forwarder import Forwarder, NoAnswer
from router7.dnsd.local import LocalNames
from router7.dnsd.metrics import Metrics
from router7.dnsd.wire import (
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    Malformed,
    Query,
    error_reply,
    parse_query,
    patch_reply,
    truncated_reply,
)
from router7.runtime.listeners import Endpoint
from router7.runtime.netlink import Address
from router7.runtime.uplink import is_uplink

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_LOOPBACK = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
_LINK_LOCAL = ipaddress.ip_network("fe80::/10")
TCP_IDLE_TIMEOUT = 10


def lan_networks(addrs: Iterable[Address], uplink: str, extra: Iterable[str] = ()) -> list[Network]:
    """Source networks allowed to query: loopback plus every network on a non-uplink interface.

    Link-local networks are left out: they are allowed per socket (see SourcePolicy)."""
    nets = set(_LOOPBACK)
    for a in addrs:
        if is_uplink(a.ifname, uplink) or a.interface.ip.is_link_local:
            continue
        nets.add(a.interface.network)
    for text in extra:
        nets.add(ipaddress.ip_network(text, strict=False))
    return sorted(nets, key=lambda n: (n.version, n))


class SourcePolicy:
    """Whether a query's source address may use us (no open resolver)."""

    def __init__(self, networks: list[Network]):
        self.networks = networks
        self._memo: dict[str, bool] = {}

    def allows(self, source: str, link_local_ok: bool = False) -> bool:
        verdict = self._memo.get(source)
        if verdict is None:
            verdict = self._classify(source)
            if len(self._memo) > 4096:  # spoofed sources must not grow memory without bound
                self._memo.clear()
            self._memo[source] = verdict
        # "ll": a link-local source, fine only on a socket bound to a link-local address,
        # which the kernel ties to its interface.
        return verdict is True or (verdict == "ll" and link_local_ok)

    def _classify(self, source: str) -> bool | str:
        try:
            ip = ipaddress.ip_address(source.partition("%")[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        if any(ip in n for n in self.networks):
            return True
        return "ll" if ip in _LINK_LOCAL else False


class DnsServer:
    # Repeated identical UDP queries (the same bytes after the ID) skip decoding:
    # a bounded memo maps them to their cache entry. Only cache hits go in, so a
    # new local name (which must win over the cache) clears it.
    HOT_MAX = 4096

    def __init__(
        self,
        clock,
        local: LocalNames,
        cache: Cache,
        forwarder: Forwarder,
        metrics: Metrics,
        sources: SourcePolicy,
    ):
        self.clock = clock
        self._local = local
        self.cache = cache
        self.forwarder = forwarder
        self.metrics = metrics
        self.sources = sources
        self._hot: dict[bytes, list] = {}

    @property
    def local(self) -> LocalNames:
        return self._local

    @local.setter
    def local(self, names: LocalNames) -> None:
        self._local = names
        self._hot.clear()

    def handle(self, data: bytes, source: str, tcp: bool = False, link_local_ok: bool = False):
        """The reply to one message: bytes, None (drop), or a Deferred of either."""
        if not tcp:
            hot = self._hot.get(data[2:])
            if hot is not None and self.sources.allows(source, link_local_ok):
                reply = self._hot_reply(hot)
                if reply is not None:
                    self.metrics.udp.inc()
                    self.metrics.cache_hits.inc()
                    return data[:2] + reply[2:]
                del self._hot[data[2:]]
        (self.metrics.tcp if tcp else self.metrics.udp).inc()
        try:
            q = parse_query(data)
        except Malformed as e:
            self.metrics.malformed.inc()
            log.debug("malformed query from %s: %s", source, e)
            if e.msg_id is None or not self.sources.allows(source, link_local_ok):
                return None
            return error_reply(e.msg_id, int.from_bytes(data[2:4], "big"), e.rcode)
        if not self.sources.allows(source, link_local_ok):
            self.metrics.refused.inc()
            return error_reply(q.id, q.flags, RCODE_REFUSED, q.question)
        limit = 65535 if tcp else q.payload
        reply = self.local.answer(q)
        if reply is not None:
            self.metrics.local.inc()
            return self._fit(reply, q, limit)
        entry = self.cache.get(q.key)
        if entry is not None:
            self.metrics.cache_hits.inc()
            if tcp:
                return self._render(entry, q, limit)
            if len(self._hot) >= self.HOT_MAX:
                self._hot.clear()
            hot = self._hot[data[2:]] = [entry, q, limit, -1, b""]
            return self._hot_reply(hot)
        self.metrics.cache_misses.inc()
        d = self.forwarder.resolve(q)
        d.addCallbacks(self._forwarded, self._no_answer, callbackArgs=(q, limit), errbackArgs=(q,))
        return d

    def _hot_reply(self, hot: list) -> bytes | None:
        """The memoised reply (re-rendered when its age in seconds changes); None once expired."""
        entry, q, limit, age, reply = hot
        now = self.clock.seconds()
        if now >= entry.expires:
            return None
        current = int(now - entry.stored)
        if current != age:
            hot[3], hot[4] = current, self._render(entry, q, limit)
        return hot[4]

    def _forwarded(self, entry: Entry, q: Query, limit: int) -> bytes:
        if self.cache.put(q.key, entry):
            self.metrics.cache_entries.set(len(self.cache))
        return self._render(entry, q, limit)

    def _no_answer(self, failure, q: Query) -> bytes:
        failure.trap(NoAnswer)
        self.metrics.servfail.inc()
        return error_reply(q.id, q.flags, RCODE_SERVFAIL, q.question)

    def _render(self, entry: Entry, q: Query, limit: int) -> bytes:
        return self._fit(patch_reply(entry.render(self.clock.seconds()), q, q.edns), q, limit)

    def _fit(self, reply: bytes, q: Query, limit: int) -> bytes:
        if len(reply) <= limit:
            return reply
        self.metrics.truncated.inc()
        return truncated_reply(reply, q)


# --- listeners ------------------------------------------------------------------


class UdpListener:
    """One UDP socket bound to one address, read by the reactor directly.

    The cache-hit path is a few microseconds of Python; Twisted's UDP port adds
    as much again per datagram (address checks, log contexts), so this minimal
    IReadDescriptor reads and answers in one tight loop instead.
    """

    BURST = 256  # datagrams per wakeup, so TCP and timers still get their turn

    def __init__(self, reactor, server: DnsServer, address: str, port: int):
        self.reactor = reactor
        self.server = server
        self.link_local = _is_link_local(address)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = socket.getaddrinfo(address, port, family, socket.SOCK_DGRAM)[0][4]  # %zone
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            # Bursts of queries (a page load, dnsperf) must queue, not drop.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sock.bind(sockaddr)
        except OSError:
            self.sock.close()
            raise
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return "dnsd-udp"

    def doRead(self):
        sock, handle, link_local = self.sock, self.server.handle, self.link_local
        for _ in range(self.BURST):
            try:
                # 4 KiB: queries are small; a bigger buffer costs an allocation per datagram
                data, addr = sock.recvfrom(4096)
            except BlockingIOError:
                return
            except OSError as e:  # e.g. a queued ICMP error: nothing to do for a server
                log.debug("udp receive: %s", e)
                return
            try:
                reply = handle(data, addr[0], False, link_local)
            except Exception:
                log.exception("query from %s", addr[0])
                continue
            if reply is None:
                continue
            if isinstance(reply, defer.Deferred):
                reply.addCallback(self._send, addr).addErrback(
                    lambda f, a=addr: log.error("query from %s: %s", a[0], f.getErrorMessage())
                )
                continue
            try:
                sock.sendto(reply, addr)
            except OSError as e:  # full buffer or gone client: UDP may drop, the client retries
                log.debug("reply to %s: %s", addr[0], e)

    def _send(self, reply: bytes | None, addr) -> None:
        if reply is not None and self.sock is not None:
            try:
                self.sock.sendto(reply, addr)
            except OSError as e:  # full buffer or gone client: UDP may drop, the client retries
                log.debug("reply to %s: %s", addr[0], e)

    def connectionLost(self, reason=None):
        self.stopListening()

    def stopListening(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None


class _TcpDns(Int16StringReceiver, TimeoutMixin):
    def __init__(self, server: DnsServer, link_local: bool):
        self.server = server
        self.link_local = link_local

    def connectionMade(self):
        self.setTimeout(TCP_IDLE_TIMEOUT)

    def stringReceived(self, data):
        self.resetTimeout()
        source = self.transport.getPeer().host
        try:
            reply = self.server.handle(data, source, True, self.link_local)
        except Exception:
            log.exception("tcp query from %s", source)
            return
        if isinstance(reply, defer.Deferred):
            reply.addCallback(self._send).addErrback(
                lambda f: log.error("tcp: %s", f.getErrorMessage())
            )
        elif reply is not None:
            self._send(reply)
        else:
            self.transport.loseConnection()  # garbage on a stream: nothing sensible follows

    def _send(self, reply: bytes | None) -> None:
        if reply is not None and self.transport is not None and self.transport.connected:
            self.sendString(reply)

    def timeoutConnection(self):
        self.transport.loseConnection()


def _is_link_local(address: str) -> bool:
    return ipaddress.ip_address(address.partition("%")[0]).is_link_local


def dns_endpoints(reactor, server: DnsServer, port: int, lan: str) -> tuple[Endpoint, Endpoint]:
    """UDP and TCP on ``port``, for the runtime's listener pool: on the LAN-side addresses
    and every address of ``lan`` (its clients may use the router's global IPv6 address)."""

    def tcp(address: str):
        link_local = _is_link_local(address)
        factory = Factory.forProtocol(lambda: _TcpDns(server, link_local))
        return reactor.listenTCP(port, factory, interface=address)

    return (
        Endpoint(
            f"dns udp :{port}", lambda address: UdpListener(reactor, server, address, port), lan
        ),
        Endpoint(f"dns tcp :{port}", tcp, lan),
    )
