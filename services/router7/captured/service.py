"""router7-captured: a ring buffer of the router's control traffic, for Wireshark.

Captures DHCPv4, DHCPv6, ICMPv6 ND/RA and ARP on the uplink and the LAN
interface, keeps the last --ring-size packets, and streams them as pcapng
(then live packets) over SSH (--ssh-port, 5022) and HTTP (--http-port, 5080),
both bound only to private addresses of non-uplink interfaces.

Files (under --perm): captured/ssh_host_ed25519_key (created if absent),
breakglass.host_key (read if present), captured/authorized_keys (read at each
SSH login). Signals: SIGUSR1 re-binds the listeners to the current addresses
and re-checks the capture interfaces.
"""

from __future__ import annotations

import argparse
import logging

from router7.captured import http, ssh
from router7.captured.sniffer import Sniffers
from router7.captured.stream import Capture
from router7.runtime.mgmt import ManagementListener, kernel_addresses, management_site
from router7.runtime.service import Service

log = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


class CapturedService(Service):
    name = "captured"
    description = (
        "Keeps the last packets of DHCPv4/DHCPv6/ND/RA/ARP on the uplink and LAN and streams "
        "them as pcapng over SSH (:5022) and HTTP (:5080), LAN-only."
    )

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--ring-size", type=_positive, default=50_000, help="packets kept")
        parser.add_argument(
            "--snaplen", type=_positive, default=1600, help="bytes kept of each packet"
        )
        parser.add_argument("--ssh-port", type=int, default=5022, help="SSH port; 0: no SSH")
        parser.add_argument("--http-port", type=int, default=5080, help="HTTP port; 0: no HTTP")

    def start(self):
        interfaces = list(dict.fromkeys([self.args.uplink, self.args.lan]))
        self.capture = Capture(interfaces, self.args.ring_size, self.args.snaplen)
        self.sniffers = Sniffers(self.reactor, interfaces, self.capture.add)
        self.sniffers.start()
        self.listeners: list[ManagementListener] = []
        checker = None
        if self.args.ssh_port:
            try:
                factory, checker = ssh.ssh_factory(self.capture, self.reactor, self.perm)
                self.listeners.append(self._listener(factory, self.args.ssh_port))
            except (OSError, ValueError, ssh.keys.BadKeyError, ssh.keys.EncryptedKeyError) as e:
                # A broken host key must not cost the capture and its HTTP side.
                log.error("SSH disabled: cannot load the host key: %s", e)
        if self.args.http_port:
            registry = http.registry_for(self.capture, self.sniffers.sniffers, checker)
            site = management_site(http.root(self.capture), registry)
            self.listeners.append(self._listener(site, self.args.http_port))
        for listener in self.listeners:
            listener.refresh()

    def _listener(self, factory, port: int) -> ManagementListener:
        # ManagementListener only calls reactor.listenTCP(port, factory, interface=...),
        # so the SSH factory gets the same LAN-only binding as the HTTP site.
        return ManagementListener(
            self.reactor, factory, port, uplink=self.args.uplink, addresses=self._addresses
        )

    @staticmethod
    def _addresses():
        return kernel_addresses()  # looked up at call time, so tests can substitute it

    def reload(self):
        for listener in self.listeners:
            listener.refresh()
        self.sniffers.ensure()

    def stop(self):
        for listener in self.listeners:
            listener.stop()
        self.sniffers.stop()


main = CapturedService.main

if __name__ == "__main__":
    main()
