"""Management HTTP listeners that exist only on the LAN side.

A router's status pages and metrics must never be reachable from the internet.
Rather than binding 0.0.0.0 and filtering, we bind each private address of each
non-uplink interface (as gokrazy's PrivateInterfaceAddrs does), and recompute
the set whenever the service is told addresses changed (SIGUSR1).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.twisted import MetricsResource
from twisted.internet.error import CannotListenError
from twisted.web import resource, server

log = logging.getLogger(__name__)

_PRIVATE_NETS = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT range, used by tailnets
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    )
]
# gokrazy's gdns ULA, which is reachable from elsewhere by design.
_EXCLUDED_NETS = [ipaddress.ip_network("fdf5:3606:2a21::/48")]


@dataclass(frozen=True)
class InterfaceAddress:
    ifname: str
    address: ipaddress.IPv4Address | ipaddress.IPv6Address


def is_uplink(ifname: str, uplink: str) -> bool:
    """uplink0, uplink1, ... and the configured uplink are all on the internet side."""
    return ifname == uplink or ifname.startswith("uplink")


def private_bind_addresses(
    addresses: Iterable[InterfaceAddress], uplink: str = "uplink0"
) -> list[str]:
    """The addresses a management listener may bind: private ones off the uplink.

    IPv6 link-local addresses get a ``%ifname`` zone, which bind() needs.
    """
    out = []
    for a in addresses:
        if is_uplink(a.ifname, uplink):
            continue
        if not any(a.address in n for n in _PRIVATE_NETS):
            continue
        if any(a.address in n for n in _EXCLUDED_NETS):
            continue
        text = str(a.address)
        if a.address.version == 6 and a.address.is_link_local:
            text = f"{text}%{a.ifname}"
        out.append(text)
    return sorted(set(out))


def kernel_addresses() -> list[InterfaceAddress]:
    """Every address of every interface in this network namespace, via netlink."""
    from pyroute2 import IPRoute  # imported lazily: unit tests need no netlink

    with IPRoute() as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
        return [
            InterfaceAddress(
                names.get(msg["index"], "?"), ipaddress.ip_address(msg.get_attr("IFA_ADDRESS"))
            )
            for msg in ipr.get_addr()
            if msg.get_attr("IFA_ADDRESS")
        ]


class ManagementListener:
    """Keeps one TCP listener per private address for ``site``; call refresh() on changes."""

    def __init__(
        self,
        reactor,
        site: server.Site,
        port: int,
        uplink: str = "uplink0",
        addresses: Callable[[], Iterable[InterfaceAddress]] = kernel_addresses,
        extra_addresses: Callable[[], Iterable[str]] = lambda: (),
    ):
        self.reactor = reactor
        self.site = site
        self.port = port
        self.uplink = uplink
        self._addresses = addresses
        self._extra = extra_addresses
        self.listeners: dict[str, object] = {}

    def wanted(self) -> set[str]:
        return set(private_bind_addresses(self._addresses(), self.uplink)) | set(self._extra())

    def refresh(self) -> None:
        """Close listeners of vanished addresses, open listeners on new ones."""
        wanted = self.wanted()
        for address in sorted(set(self.listeners) - wanted):
            self.listeners.pop(address).stopListening()
            log.info("management :%d no longer on %s", self.port, address)
        for address in sorted(wanted - set(self.listeners)):
            try:
                self.listeners[address] = self.reactor.listenTCP(
                    self.port, self.site, interface=address
                )
            except CannotListenError as e:
                # e.g. an IPv6 address still tentative; the next refresh tries again
                log.warning(
                    "management :%d cannot listen on %s: %s", self.port, address, e.socketError
                )
                continue
            log.info("management :%d listening on %s", self.port, address)

    def stop(self) -> None:
        for listener in self.listeners.values():
            listener.stopListening()
        self.listeners.clear()


def is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return any(address in n for n in _PRIVATE_NETS)


def private_client(request) -> bool:
    """Whether an HTTP request comes from a private (LAN, loopback) address.

    A loopback client with X-Forwarded-For is a local reverse proxy: judge the
    client it names (as router7 does).
    """
    try:
        ip = ipaddress.ip_address(request.getClientAddress().host.split("%")[0])
        forwarded = request.getHeader(b"x-forwarded-for")
        if ip.is_loopback and forwarded:
            ip = ipaddress.ip_address(forwarded.split(b",")[0].strip().decode())
    except (ValueError, AttributeError, UnicodeDecodeError):
        return False
    return is_private(ip)


class _Forbidden(resource.Resource):
    isLeaf = True

    def render(self, request):
        request.setResponseCode(403)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"forbidden: not a private address\n"


class _PrivateOnly(resource.Resource):
    """Refuses non-private clients before any child of ``inner`` is looked up.

    Defence in depth on top of binding LAN addresses only: traffic that reaches a
    LAN address through the uplink (Linux accepts it on any interface) is refused.
    Every request passes through here, because a path always has one segment.
    """

    def __init__(self, inner: resource.Resource):
        super().__init__()
        self.inner = inner

    def getChildWithDefault(self, path, request):
        if not private_client(request):
            return _Forbidden()
        return self.inner.getChildWithDefault(path, request)


def management_site(
    root: resource.Resource | None = None, registry: CollectorRegistry = REGISTRY
) -> server.Site:
    """A Site serving ``root`` to private clients only, with Prometheus metrics under /metrics."""
    root = root if root is not None else _Index()
    root.putChild(b"metrics", MetricsResource(registry=registry))
    site = server.Site(_PrivateOnly(root))
    site.displayTracebacks = False
    return site


class _Index(resource.Resource):
    def getChild(self, path, request):
        return self if path == b"" else super().getChild(path, request)

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"router7 management: see /metrics\n"
