"""router7-captured: a ring buffer of the router's control traffic, for Wireshark.

Captures DHCPv4, DHCPv6, ICMPv6 ND/RA and ARP on the uplink and the LAN
interface, keeps the last --ring-size packets, and streams them as pcapng
(then live packets) over SSH (--ssh-port, 5022) and HTTP (--http-port, 5080),
both in the runtime's listener pool: private addresses of non-uplink interfaces.

Files (under --perm): captured/ssh_host_ed25519_key (created if absent),
breakglass.host_key (read if present), captured/authorized_keys (read at each
SSH login). Signals: SIGUSR1 re-checks the capture interfaces (so does a link event).
"""

from __future__ import annotations

import argparse
import logging

from router7.captured import http
from router7.captured.sniffer import Sniffers
from router7.captured.ssh_on_demand import OnDemandSSHFactory, check_host_key
from router7.captured.stream import RING_BYTES, Capture
from router7.runtime import ports
from router7.runtime.mgmt import management_site
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
            "--ring-bytes",
            type=_positive,
            default=RING_BYTES,
            help="bytes of packet data kept (the oldest packets go first past either bound)",
        )
        parser.add_argument(
            "--snaplen", type=_positive, default=1600, help="bytes kept of each packet"
        )
        parser.add_argument(
            "--ssh-port", type=int, default=ports.CAPTURED_SSH, help="SSH port; 0: no SSH"
        )

    def start(self):
        interfaces = list(dict.fromkeys([self.args.uplink, self.args.lan]))
        self.capture = Capture(
            interfaces, self.args.ring_size, self.args.snaplen, self.args.ring_bytes
        )
        self.sniffers = Sniffers(self.reactor, interfaces, self.capture.add)
        self.sniffers.start()
        self.checker = None
        if self.args.ssh_port:
            try:
                check_host_key(self.perm)
                self.checker = OnDemandSSHFactory(self.capture, self.reactor, self.perm)
                # The same LAN-only binding as the HTTP site.
                self.listeners.tcp(self.args.ssh_port, self.checker, name="ssh")
            except (OSError, ValueError) as e:
                # A broken host key must not cost the capture and its HTTP side.
                log.error("SSH disabled: cannot load the host key: %s", e)

    def http_site(self):
        http.registry_for(self.capture, self.sniffers.sniffers, self.checker, self.registry)
        return management_site(http.root(self.capture), self.registry)

    def reload(self):
        self.sniffers.ensure()

    def net_changed(self, changes):
        if any(c.kind == "link" for c in changes):
            self.sniffers.ensure()  # a capture interface may have (re)appeared

    def stop(self):
        self.sniffers.stop()


main = CapturedService.main

if __name__ == "__main__":
    main()
