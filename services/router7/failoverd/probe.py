"""Probe rounds through one uplink: ICMP echo to its gateway and the targets.

Every ``interval`` a round sends one echo to each destination from a socket bound
to the uplink (SO_BINDTODEVICE plus the uplink's source address, so the kernel's
policy rules route it out of that uplink and nowhere else). A round is good if a
target answered before the next round starts; the gateway alone counts only when
no targets are configured (a gateway that answers while the ISP forwards nothing
is exactly the silent loss we must see). The socket is the I/O edge; ``Prober``
is driven by any reactor clock, so tests use task.Clock and a fake socket.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Sequence

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from router7.diagd.icmp import decode_reply, encode_request, open_socket

log = logging.getLogger(__name__)

SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


class Prober:
    """Runs probe rounds for one uplink and reports each round's outcome.

    ``send(dest, seq)`` transmits one echo (raises OSError when it cannot);
    ``replied(src, seq)`` is what the socket calls for each reply;
    ``destinations()`` returns (gateway, targets) for the next round (they follow
    the lease); ``on_round(ok, detail)`` hears each finished round.
    """

    def __init__(
        self,
        clock,
        interval: float,
        send: Callable[[str, int], None],
        destinations: Callable[[], tuple[str | None, Sequence[str]]],
        on_round: Callable[[bool, str], None],
    ):
        self.clock = clock
        self.interval = interval
        self.send = send
        self.destinations = destinations
        self.on_round = on_round
        self.seq = 0
        self._sent: dict[str, bool] = {}  # destination -> answered, for the open round
        self._gateway: str | None = None
        self._targets: tuple[str, ...] = ()
        self._call = None

    def start(self) -> None:
        self._tick()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def replied(self, src: str, seq: int) -> None:
        if seq == self.seq and src in self._sent:
            self._sent[src] = True

    def _tick(self) -> None:
        if self.seq:
            self._finish()
        self.seq = self.seq % 0xFFFF + 1
        self._gateway, targets = self.destinations()
        self._targets = tuple(targets)
        self._sent = {}
        for dest in dict.fromkeys([d for d in (self._gateway, *self._targets) if d]):
            self._sent[dest] = False  # before sending: a reply may come at once
            try:
                self.send(dest, self.seq)
            except OSError as e:
                del self._sent[dest]
                log.debug("probe to %s: %s", dest, e)
        self._call = self.clock.callLater(self.interval, self._tick)

    def _finish(self) -> None:
        if not self._sent:
            self.on_round(False, "no address or gateway to probe")
            return
        answered = [d for d, ok in self._sent.items() if ok]
        judged = [t for t in self._targets if t in self._sent] or (
            [self._gateway] if self._gateway in self._sent else []
        )
        ok = any(self._sent.get(d) for d in judged)
        if ok:
            self.on_round(True, "")
        elif answered:
            self.on_round(False, "only the gateway answers")
        else:
            self.on_round(False, "no answers")


@implementer(IReadDescriptor)
class EchoSocket:
    """An ICMP(v4) echo socket bound to one uplink; delivers (src, seq) of replies."""

    def __init__(self, reactor, ifname: str, on_reply: Callable[[str, int], None]):
        self.reactor = reactor
        self.ifname = ifname
        self.on_reply = on_reply
        self.ident = int.from_bytes(os.urandom(2), "big")
        self.sock, self.raw = open_socket(4)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
        self.source: str | None = None
        reactor.addReader(self)

    def bind_source(self, address: str | None) -> None:
        """Send from the uplink's address (policy rules route by source); reopen on change."""
        if address == self.source:
            return
        if self.source is not None:  # a bound socket cannot be rebound
            self.close()
            self.sock, self.raw = open_socket(4)
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.ifname.encode())
            self.reactor.addReader(self)
        if address is not None:
            self.sock.bind((address, 0))
        self.source = address

    def send(self, dest: str, seq: int) -> None:
        ipaddress.IPv4Address(dest)
        self.sock.sendto(encode_request(4, self.ident, seq), (dest, 0))

    def close(self) -> None:
        self.reactor.removeReader(self)
        if self.sock.fileno() != -1:
            self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:
        return f"failoverd-probe-{self.ifname}"

    def connectionLost(self, reason) -> None:
        pass

    def doRead(self) -> None:
        while True:
            try:
                data, src = self.sock.recvfrom(2048)
            except OSError:
                return
            reply = decode_reply(4, data, self.raw)
            if reply is None:
                continue
            ident, seq = reply
            if self.raw and ident != self.ident:
                continue
            self.on_reply(src[0], seq)
