"""Asking the upstream resolvers: UDP with failover, TCP for truncated answers.

Each attempt uses a fresh UDP socket (a random source port from the kernel) and
a random message ID, and accepts only a reply from that server (the socket is
connected) with the same ID and question: the classic defences against
off-path spoofing. A connected socket also turns an ICMP port unreachable from
a dead server into an immediate failover instead of a timeout. Identical
queries in flight share one upstream exchange.

A hostile or busy LAN (issue 16) must not exhaust descriptors or memory: at most
``max_inflight`` distinct questions wait for upstreams at once (dnsmasq's
dns-forward-max, 150 too), each with at most one socket per upstream and round;
a question beyond that fails at once (Overloaded: the server answers SERVFAIL),
so cached and local names keep being answered. A REFUSED is an answer about the
zone, not a slow server: it costs the server no SRTT penalty, that server is not
asked again for this question, and when every server refused the client gets the
REFUSED.
"""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import struct

from twisted.internet import defer
from twisted.internet.protocol import ClientFactory
from twisted.protocols.basic import Int16StringReceiver

from router7.dnsd.cache import Entry, make_entry
from router7.dnsd.metrics import Metrics
from router7.dnsd.upstreams import Upstream, UpstreamPolicy
from router7.dnsd.wire import (
    RCODE_NXDOMAIN,
    RCODE_REFUSED,
    Answer,
    Malformed,
    Query,
    opt_record,
    parse_answer,
)

log = logging.getLogger(__name__)

TCP_TIMEOUT = 3.0
MAX_INFLIGHT = 150  # distinct questions waiting for upstreams (dnsmasq: dns-forward-max)
_GOOD_RCODES = (0, RCODE_NXDOMAIN)  # anything else: ask the next server


class NoAnswer(Exception):
    """No upstream gave a usable answer."""


class Overloaded(NoAnswer):
    """Too many questions in flight: shed this one at once."""


def upstream_query(q: Query, msg_id: int) -> bytes:
    """The query we send upstream: the client's question, RD, and our EDNS0 with its DO bit.

    Assembled from the validated question bytes (dnslib's pack would cost ~60 µs)."""
    header = struct.pack("!HHHHHH", msg_id, 0x0100, 1, 0, 0, 1)
    return header + q.question + opt_record(q.do)


def matching_answer(data: bytes, msg_id: int, q: Query) -> Answer | None:
    """The upstream reply if it answers our query (ID, QR and question match), else None."""
    try:
        answer = parse_answer(data, msg_id)
    except Malformed:  # garbage, or another query's reply: untrusted input either way
        return None
    if answer.labels != q.labels or answer.qtype != q.qtype or answer.qclass != q.qclass:
        return None
    return answer


class UdpSocket:
    """A connected UDP socket for one attempt, read by the reactor directly.

    Twisted's listenUDP logs four lines per port and re-validates the address on
    every write; at one socket per upstream query that was a third of the cost of
    a cache miss. This is the minimal IReadDescriptor instead.
    """

    def __init__(self, reactor, host: str, port: int, on_datagram, on_error):
        self.reactor = reactor
        self.on_datagram = on_datagram
        self.on_error = on_error
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
        )
        try:
            self.sock.setblocking(False)
            self.sock.connect((host, port))  # binds a random ephemeral source port
        except OSError:
            self.sock.close()
            raise
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno() if self.sock is not None else -1

    def logPrefix(self) -> str:
        return "dnsd-upstream"

    def write(self, data: bytes) -> None:
        self.sock.send(data)

    def doRead(self):
        while self.sock is not None:
            try:
                data = self.sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as e:  # an ICMP error queued on the socket
                self.on_error("unreachable" if e.errno == errno.ECONNREFUSED else e.strerror)
                return
            self.on_datagram(data)

    def connectionLost(self, reason=None):
        # the epoll reactor reports a pending ICMP error (EPOLLERR) this way
        if self.sock is not None:
            self.close()
            self.on_error("unreachable")

    def close(self) -> None:
        if self.sock is not None:
            self.reactor.removeReader(self)
            self.sock.close()
            self.sock = None


class _Tcp(Int16StringReceiver):
    def __init__(self, attempt: _Attempt, payload: bytes):
        self.attempt = attempt
        self.payload = payload

    def connectionMade(self):
        self.sendString(self.payload)

    def stringReceived(self, data):
        self.attempt.tcp_reply(data)

    def connectionLost(self, reason=None):
        self.attempt.failed("tcp closed")


class _TcpFactory(ClientFactory):
    def __init__(self, attempt: _Attempt, payload: bytes):
        self.attempt = attempt
        self.payload = payload

    def buildProtocol(self, addr):
        return _Tcp(self.attempt, self.payload)

    def clientConnectionFailed(self, connector, reason):
        self.attempt.failed("tcp connect failed")


class _Attempt:
    """One question to one upstream: UDP, then TCP if the UDP answer was truncated."""

    def __init__(self, resolution: _Resolution, upstream: Upstream, timeout: float):
        self.resolution = resolution
        self.forwarder = resolution.forwarder
        self.upstream = upstream
        self.msg_id = secrets.randbelow(65536)
        self.payload = upstream_query(resolution.q, self.msg_id)
        self.done = False
        self.timed_out = False
        self.port = None
        self.connector = None
        reactor = self.forwarder.reactor
        self.started = reactor.seconds()
        self.timer = reactor.callLater(timeout, self._timeout)
        try:
            self.port = self.forwarder.open_udp(
                upstream.host, upstream.port, self.udp_reply, self.failed
            )
            self.port.write(self.payload)
        except OSError as e:  # no route, no address family: this server is unusable now
            reactor.callLater(0, self.failed, f"send: {e.strerror}")

    def udp_reply(self, data: bytes) -> None:
        if self.done:
            return
        record = matching_answer(data, self.msg_id, self.resolution.q)
        if record is None:
            return  # not ours (late or forged): keep waiting
        if record.tc:
            self._close_udp()
            self.forwarder.metrics.upstream_tcp.inc()
            if self.timer.active():
                self.timer.reset(TCP_TIMEOUT)
            else:  # a late answer after our timeout: TCP gets its own
                self.timer = self.forwarder.reactor.callLater(TCP_TIMEOUT, self._timeout)
            self.connector = self.forwarder.reactor.connectTCP(
                self.upstream.host,
                self.upstream.port,
                _TcpFactory(self, self.payload),
                timeout=TCP_TIMEOUT,
            )
            return
        self._answered(record)

    def tcp_reply(self, data: bytes) -> None:
        if self.done:
            return
        record = matching_answer(data, self.msg_id, self.resolution.q)
        if record is None:
            self.failed("bad tcp answer")
        else:
            self._answered(record)

    def _answered(self, record: Answer) -> None:
        if record.rcode == RCODE_REFUSED:
            self._finish()
            f = self.forwarder
            f.metrics.upstream_refused.inc()
            f.policy.success(self.upstream, f.reactor.seconds() - self.started)
            f.upstream_metrics(self.upstream)[1].set(f.policy.srtt(self.upstream))
            self.resolution.refused(self, record)
            return
        if record.rcode not in _GOOD_RCODES:
            self.failed(f"rcode {record.rcode}")
            return
        self._finish()
        f = self.forwarder
        f.policy.success(self.upstream, f.reactor.seconds() - self.started)
        answers, srtt = f.upstream_metrics(self.upstream)
        answers.inc()
        srtt.set(f.policy.srtt(self.upstream))
        self.resolution.answered(record)

    def _timeout(self) -> None:
        if self.connector is not None:  # TCP gets no second chance
            self.failed("timeout")
            return
        # Ask the next server, but keep listening: a slow answer from this one still wins.
        self.timed_out = True
        self._count_failure("timeout")
        self.resolution.advance(self)

    def failed(self, reason: str) -> None:
        if self.done:
            return
        self._finish()
        if not self.timed_out:  # a timed-out attempt was counted and superseded already
            self._count_failure(reason)
            self.resolution.advance(self)

    def _count_failure(self, reason: str) -> None:
        f = self.forwarder
        f.policy.failure(self.upstream)
        f.metrics.upstream_failures.labels(str(self.upstream), reason.split(":")[0]).inc()
        f.log_failure(self.upstream, reason)

    def _finish(self) -> None:
        self.done = True
        if self.timer.active():
            self.timer.cancel()
        self._close_udp()
        if self.connector is not None:
            self.connector.disconnect()
            self.connector = None

    def _close_udp(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            port.close()

    def cancel(self) -> None:
        if not self.done:
            self._finish()


class _Resolution:
    """One client question, tried against the upstreams in policy order.

    Two rounds over the list, the second with doubled timeouts, within a budget
    that ends before typical client timeouts (5 s). An attempt that timed out
    stays open until the budget is spent, so a slow answer (an ISP resolver
    recursing for a name it has not cached) is still taken if it comes first.
    """

    BUDGET = 4.0

    def __init__(self, forwarder: Forwarder, q: Query):
        self.forwarder = forwarder
        self.q = q
        self.waiters: list[defer.Deferred] = []
        order = forwarder.policy.order()
        self.queue = [(u, 1) for u in order] + [(u, 2) for u in order]
        self.deadline = forwarder.reactor.seconds() + self.BUDGET
        self.attempts: list[_Attempt] = []
        self.give_up_timer = None
        self.finished = False
        self.refusal: Answer | None = None  # the last REFUSED, for when all servers refuse

    def refused(self, attempt: _Attempt, record: Answer) -> None:
        """``attempt``'s server refused the question: never ask it again for this one."""
        self.refusal = record
        self.queue = [(u, f) for u, f in self.queue if u != attempt.upstream]
        if not self.queue and not any(not a.done for a in self.attempts):
            self.answered(record)  # everyone refused: that is the answer
        else:
            self.advance(attempt)

    def advance(self, attempt: _Attempt) -> None:
        """``attempt`` gave up; move on unless a later attempt is already running."""
        if self.attempts and attempt is self.attempts[-1]:
            self.next_attempt()

    def next_attempt(self) -> None:
        reactor = self.forwarder.reactor
        left = self.deadline - reactor.seconds()
        if self.queue and left >= 0.05:
            upstream, factor = self.queue.pop(0)
            timeout = min(self.forwarder.policy.timeout(upstream) * factor, left)
            self.attempts.append(_Attempt(self, upstream, timeout))
        elif left > 0 and any(not a.done for a in self.attempts):
            # Nobody left to ask, but a slow server may still answer: wait out the budget.
            self.give_up_timer = reactor.callLater(left, self._give_up)
        elif self.refusal is not None:
            self.answered(self.refusal)
        else:
            self._give_up()

    def _give_up(self) -> None:
        if self.finished:
            return
        if self.refusal is not None:
            return self.answered(self.refusal)
        self._end()
        for d in self.waiters:
            d.errback(NoAnswer(str(self.q)))

    def answered(self, record: Answer) -> None:
        if self.finished:
            return
        self._end()
        entry = make_entry(record, self.forwarder.reactor.seconds())
        for d in self.waiters:
            d.callback(entry)

    def _end(self) -> None:
        self.finished = True
        if self.forwarder.inflight.get(self.q.key) is self:
            del self.forwarder.inflight[self.q.key]
            self.forwarder.metrics.inflight.set(len(self.forwarder.inflight))
        if self.give_up_timer is not None and self.give_up_timer.active():
            self.give_up_timer.cancel()
        self.cancel()

    def cancel(self) -> None:
        for attempt in self.attempts:
            attempt.cancel()


class Forwarder:
    def __init__(
        self,
        reactor,
        policy: UpstreamPolicy,
        metrics: Metrics,
        open_udp=None,
        max_inflight: int = MAX_INFLIGHT,
    ):
        self.reactor = reactor
        # (host, port, on_datagram, on_error) -> a socket with write() and close()
        self.open_udp = open_udp or (lambda *args: UdpSocket(reactor, *args))
        self.policy = policy
        self.metrics = metrics
        self.inflight: dict[tuple, _Resolution] = {}
        self.max_inflight = max_inflight
        self._last_log: dict[Upstream | None, float] = {}
        self._children: dict[Upstream, tuple] = {}

    def resolve(self, q: Query) -> defer.Deferred[Entry]:
        """An Entry for ``q`` from the first upstream that answers; errback NoAnswer."""
        d: defer.Deferred[Entry] = defer.Deferred()
        resolution = self.inflight.get(q.key)
        if resolution is not None:
            self.metrics.deduplicated.inc()
            resolution.waiters.append(d)
            return d
        if len(self.inflight) >= self.max_inflight:
            self.metrics.shed.inc()
            self._log_shed()
            d.errback(Overloaded(str(q)))
            return d
        resolution = _Resolution(self, q)
        resolution.waiters.append(d)
        self.inflight[q.key] = resolution
        self.metrics.inflight.set(len(self.inflight))
        resolution.next_attempt()
        return d

    def upstream_metrics(self, upstream: Upstream):
        """(answers counter, SRTT gauge) of ``upstream``: label lookups cost ~7 µs each."""
        children = self._children.get(upstream)
        if children is None:
            name = str(upstream)
            children = self._children[upstream] = (
                self.metrics.upstream_answers.labels(name),
                self.metrics.upstream_srtt.labels(name),
            )
        return children

    def _log_shed(self) -> None:
        now = self.reactor.seconds()
        if now - self._last_log.get(None, -1e9) >= 10:
            self._last_log[None] = now
            log.warning(
                "%d questions in flight: answering new ones SERVFAIL until upstreams catch up",
                len(self.inflight),
            )

    def log_failure(self, upstream: Upstream, reason: str) -> None:
        # A dead upstream fails every query: say so at most every 10 s per server.
        now = self.reactor.seconds()
        if now - self._last_log.get(upstream, -1e9) >= 10:
            self._last_log[upstream] = now
            log.warning("upstream %s failed: %s", upstream, reason)

    def stop(self) -> None:
        for resolution in list(self.inflight.values()):
            resolution.cancel()
        self.inflight.clear()
