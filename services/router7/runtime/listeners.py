"""One pool of listeners kept on the router's LAN-side addresses (router7's multilisten).

A router's management pages, metrics and DNS must never be reachable from the
internet. Rather than binding 0.0.0.0 and filtering, each endpoint (a port and
what serves it) is bound to each private address of each non-uplink interface,
as gokrazy's PrivateInterfaceAddrs does: the management rule. An endpoint may
also ask for every address of the LAN interface (dnsd: LAN clients may use the
router's global IPv6 address). ``refresh`` follows address changes; the
runtime's Service calls it on netlink address events and on SIGUSR1.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.error import CannotListenError

from router7.runtime.netlink import Address
from router7.runtime.private import EXCLUDED_NETS, is_private
from router7.runtime.uplink import is_uplink

log = logging.getLogger(__name__)


def bind_addresses(addresses: Iterable[Address], uplink: str, lan: str | None = None) -> list[str]:
    """Where a LAN-only listener binds: private addresses off the uplinks, and every
    address of ``lan`` when given. Tentative addresses are left for their next event.

    IPv6 link-local addresses get a ``%ifname`` zone, which bind() needs.
    """
    out = set()
    for a in addresses:
        ip = a.ip
        if is_uplink(a.ifname, uplink) or not a.usable:
            continue
        if a.ifname != lan and (not is_private(ip) or any(ip in n for n in EXCLUDED_NETS)):
            continue
        out.add(f"{ip}%{a.ifname}" if ip.version == 6 and ip.is_link_local else str(ip))
    return sorted(out)


@dataclass(frozen=True)
class Endpoint:
    name: str  # for the log: "http :8053", "dns udp :53"
    listen: Callable[[str], object]  # address -> a listener with stopListening()
    lan: str | None = None  # also every address of this interface


class ListenerPool:
    """Listeners of every endpoint on every wanted address.

    A listener that cannot open (the port still held by a predecessor, an address
    the kernel is not done with) is tried again ``retry`` seconds later, until it
    opens or its address goes away: no event may come for it.
    """

    def __init__(
        self,
        reactor,
        addresses: Callable[[], Iterable[Address]],
        uplink: str,
        retry: float = 5.0,
    ):
        self.reactor = reactor
        self._addresses = addresses
        self.uplink = uplink
        self.retry = retry
        self.endpoints: list[Endpoint] = []
        self.listeners: dict[tuple[Endpoint, str], object] = {}
        self._retry_call = None

    def tcp(self, port: int, factory, lan: str | None = None, name: str = "http") -> Endpoint:
        """Serve ``factory`` on TCP ``port`` (an HTTP site, an SSH or DNS factory)."""
        return self.add(
            Endpoint(
                f"{name} :{port}",
                lambda address: self.reactor.listenTCP(port, factory, interface=address),
                lan,
            )
        )

    def add(self, endpoint: Endpoint) -> Endpoint:
        """Any other listener, e.g. dnsd's own UDP sockets: ``listen(address)`` opens one
        (raising OSError or CannotListenError if it cannot)."""
        self.endpoints.append(endpoint)
        return endpoint

    def wanted(self) -> set[tuple[Endpoint, str]]:
        addresses = list(self._addresses())
        return {
            (endpoint, address)
            for endpoint in self.endpoints
            for address in bind_addresses(addresses, self.uplink, endpoint.lan)
        }

    def refresh(self) -> None:
        """Close listeners of vanished addresses, open listeners on new ones."""
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        wanted = self.wanted()
        for key in sorted(set(self.listeners) - wanted, key=_order):
            self.listeners.pop(key).stopListening()
            log.info("%s no longer on %s", key[0].name, key[1])
        failed = False
        for key in sorted(wanted - set(self.listeners), key=_order):
            endpoint, address = key
            try:
                self.listeners[key] = endpoint.listen(address)
            except (OSError, CannotListenError) as e:
                log.warning("%s cannot listen on %s: %s", endpoint.name, address, e)
                failed = True
                continue
            log.info("%s listening on %s", endpoint.name, address)
        if failed and self.retry:
            self._retry_call = self.reactor.callLater(self.retry, self.refresh)

    def addresses(self, endpoint: Endpoint) -> list[str]:
        """The addresses ``endpoint`` listens on now."""
        return sorted(address for e, address in self.listeners if e == endpoint)

    def stop(self) -> defer.Deferred:
        if self._retry_call is not None and self._retry_call.active():
            self._retry_call.cancel()
        self._retry_call = None
        ds = [defer.maybeDeferred(listener.stopListening) for listener in self.listeners.values()]
        self.listeners.clear()
        return defer.gatherResults(ds)


def _order(key: tuple[Endpoint, str]) -> tuple[str, str]:
    return key[0].name, key[1]
