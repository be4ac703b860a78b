"""The uplink's DHCPv6 client socket: UDP port 546 on one interface.

The socket is bound to ``[::]:546`` with SO_BINDTODEVICE instead of to the link-local
address: binding a link-local address fails while it is still tentative (DAD) or when
the link was just renamed, whereas a device-bound wildcard socket works from the first
moment and still only sees the uplink's traffic. Replies come back unicast from the
server's (fiber7: the BNG's) link-local address to ours, port 546.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from ipaddress import IPv6Address

from twisted.internet.protocol import DatagramProtocol

from router7.dhcp6 import metrics

log = logging.getLogger(__name__)

CLIENT_PORT, SERVER_PORT = 546, 547
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = "ff02::1:2"


class UplinkTransport(DatagramProtocol):
    def __init__(self, reactor, ifname: str, on_datagram: Callable[[bytes, str], None]):
        self.reactor = reactor
        self.ifname = ifname
        self.on_datagram = on_datagram
        self.ifindex = 0
        self.port = None

    def open(self, port: int = CLIENT_PORT) -> None:
        self.ifindex = socket.if_nametoindex(self.ifname)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # Multicast to ff02::1:2 needs an outgoing interface; link scope, one hop.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.bind(("::", port))
            sock.setblocking(False)
            self.port = self.reactor.adoptDatagramPort(sock.fileno(), socket.AF_INET6, self)
        finally:
            sock.close()  # the reactor holds its own duplicate of the descriptor
        log.info("listening on [::]:%d, device %s", port, self.ifname)

    def datagramReceived(self, data: bytes, addr) -> None:
        self.on_datagram(data, addr[0])

    def send(self, data: bytes, dest: IPv6Address | None) -> bool:
        """Send to ``dest`` (unicast) or, for None, to All_DHCP_Relay_Agents_and_Servers."""
        if dest is None:
            addr = (ALL_DHCP_RELAY_AGENTS_AND_SERVERS, SERVER_PORT, 0, self.ifindex)
        else:
            addr = (str(dest), SERVER_PORT, 0, self.ifindex if dest.is_link_local else 0)
        try:
            self.port.write(data, addr)
        except OSError as e:
            # e.g. EADDRNOTAVAIL while our link-local address is tentative, or no route
            # for a unicast destination: the retransmission timer tries again.
            metrics.send_errors.inc()
            log.warning("send to %s failed: %s", addr[0], e)
            return False
        return True

    def close(self):
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None
