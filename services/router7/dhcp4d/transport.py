"""Sockets at the edge: receive on UDP :67 of lan0 only, reply by UDP or packet socket.

Twisted's listenUDP cannot set SO_BINDTODEVICE before bind(), so the sockets are
made here and handed to the reactor as plain readers. SO_BINDTODEVICE is what
makes requests arriving on any other interface invisible to us. Clients without
an address cannot answer ARP, so unicast replies to them are written as whole
IP packets to an AF_PACKET socket addressed to their MAC (RFC 2131 4.1).
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from ipaddress import IPv4Address

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

from router7.dhcp4d import wire
from router7.dhcp4d.server import Destination

log = logging.getLogger(__name__)

ETH_P_IP = 0x0800
# Datagrams drained per wakeup: a backlog is seen whole, so the service can put
# exchanges under way before new ones (server.triage).
_BATCH = 256


@implementer(IReadDescriptor)
class Dhcp4Transport:
    def __init__(
        self,
        reactor,
        ifname: str,
        on_batch: Callable[[list[bytes]], None],
    ):
        self.reactor = reactor
        self.ifname = ifname
        self.on_batch = on_batch
        self.udp: socket.socket | None = None
        self.raw: socket.socket | None = None
        self.send_errors = 0

    def start(self) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
        udp.bind(("0.0.0.0", wire.SERVER_PORT))
        udp.setblocking(False)
        # protocol 0: this socket only sends; it receives nothing
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        self.udp, self.raw = udp, raw
        self.reactor.addReader(self)
        log.info("serving DHCPv4 on %s, udp :67", self.ifname)

    def stop(self) -> None:
        if self.udp is not None:
            self.reactor.removeReader(self)
            self.udp.close()
            self.raw.close()
            self.udp = self.raw = None

    def send(self, payload: bytes, dest: Destination, server: IPv4Address) -> None:
        try:
            if dest.mac is None:
                self.udp.sendto(payload, (str(dest.ip), dest.port))
            else:
                packet = wire.ip_packet(payload, server, dest.ip)
                self.raw.sendto(packet, (self.ifname, ETH_P_IP, 0, 0, dest.mac))
        except OSError as e:
            self.send_errors += 1
            log.warning("sending to %s failed: %s", dest.ip, e)

    # --- IReadDescriptor ---------------------------------------------------------

    def fileno(self) -> int:
        return self.udp.fileno() if self.udp is not None else -1

    def logPrefix(self) -> str:
        return "dhcp4d"

    def doRead(self) -> None:
        batch = []
        for _ in range(_BATCH):
            try:
                batch.append(self.udp.recv(4096))
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    log.warning("receive failed: %s", e)
                break
        self.on_batch(batch)

    def connectionLost(self, reason) -> None:
        log.debug("reader removed: %s", reason)
