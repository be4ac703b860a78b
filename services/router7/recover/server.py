"""The laptop's three servers on one interface: DHCP (PXE clients only), TFTP, HTTP."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from twisted.internet import protocol, reactor
from twisted.web import server as webserver

from router7.recover import dhcp, tftp
from router7.recover.progress import Report
from router7.recover.served import Served
from router7.recover.web import Root

log = logging.getLogger(__name__)
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
HTTP_PORT = 8077


class SetupError(RuntimeError):
    pass


def interface_address(ifname: str) -> IPv4Interface:
    """The first IPv4 address on `ifname` (the laptop's, set by its owner)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            raise SetupError(f"--interface {ifname}: no such network interface")
        for a in ipr.get_addr(family=socket.AF_INET, index=idx[0]):
            return IPv4Interface(f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
    raise SetupError(
        f"--interface {ifname} has no IPv4 address: give it one, e.g. "
        f"ip addr add 192.168.42.250/24 dev {ifname}"
    )


def client_address(server: IPv4Interface) -> IPv4Address:
    """The address offered to the router: the next one after the laptop's."""
    hosts = list(server.network.hosts()) if server.network.prefixlen >= 16 else []
    for candidate in (server.ip + 1, server.ip - 1):
        if candidate in hosts or (not hosts and candidate in server.network):
            return candidate
    raise SetupError(f"{server}: no free address next to the laptop's in that network")


class DhcpServer(protocol.DatagramProtocol):
    def __init__(self, offer: dhcp.Offer, client_port: int = dhcp.CLIENT_PORT, on_offer=None):
        self.offer = offer
        self.client_port = client_port
        self.on_offer = on_offer  # callback(mac, msg_type)
        self.ignored = 0

    def datagramReceived(self, data: bytes, addr) -> None:
        try:
            req = dhcp.decode(data)
        except dhcp.Malformed as e:
            log.debug("dhcp: %s: %s", addr, e)
            return
        reply = dhcp.answer(req, self.offer)
        if reply is None:
            self.ignored += 1
            log.info("dhcp: ignoring %s (not a PXE client, or not for us)", req.mac)
            return
        log.info("dhcp: %s netboots: offering %s", req.mac, self.offer.client)
        self.transport.write(reply, ("255.255.255.255", self.client_port))
        if self.on_offer:
            self.on_offer(req.mac, req.msg_type)


def dhcp_socket(ifname: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
    s.bind(("", port))
    s.setblocking(False)
    return s


@dataclass
class Ports:
    dhcp_server: int = dhcp.SERVER_PORT
    dhcp_client: int = dhcp.CLIENT_PORT
    tftp: int = 69
    http: int = HTTP_PORT


class Servers:
    """Start the three servers; `stop()` closes them."""

    def __init__(
        self,
        ifname: str,
        address: IPv4Interface,
        served: Served,
        on_report: Callable[[Report], None],
        ports: Ports | None = None,
        client: IPv4Address | None = None,
    ):
        self.ports = ports or Ports()
        self.address = address
        self.served = served
        offer = dhcp.Offer(
            server=address.ip,
            client=client or client_address(address),
            netmask=address.netmask,
            ipxe_bootfile="boot.ipxe",
            pxe_bootfile="lpxelinux.0",
        )
        self.dhcp = DhcpServer(offer, self.ports.dhcp_client)
        self.tftp = tftp.TftpServer(served.tftp_lookup, interface=str(address.ip))
        self._sock = dhcp_socket(ifname, self.ports.dhcp_server)
        self._listeners = [
            reactor.adoptDatagramPort(self._sock.fileno(), socket.AF_INET, self.dhcp),
            reactor.listenUDP(self.ports.tftp, self.tftp, interface=str(address.ip)),
            reactor.listenTCP(
                self.ports.http,
                webserver.Site(Root(served, on_report)),
                interface=str(address.ip),
            ),
        ]
        self._sock.close()  # the reactor holds its own copy of the descriptor

    def stop(self):
        from twisted.internet import defer

        return defer.gatherResults(
            [defer.maybeDeferred(listener.stopListening) for listener in self._listeners]
        )
