"""WireGuard links and peers from wireguard.json (reference §3.5), via pyroute2.

Links are created before addresses are applied (router7 created them after, so
a wg interface only got its addresses on the second run, reference §17.2).
A kernel without WireGuard is not an error: the interfaces are skipped with one
logged reason, and the rest of the router works.
"""

from __future__ import annotations

import base64
import logging
import socket

from router7.netconfigd.config import WireguardInterface
from router7.netconfigd.plan import endpoint_host

log = logging.getLogger(__name__)


class WireguardApplier:
    def __init__(self, ipr, genl_factory=None):
        self.ipr = ipr
        self._genl_factory = genl_factory
        self.unsupported: str | None = None

    def create_links(self, interfaces: tuple[WireguardInterface, ...]) -> list[str]:
        errors = []
        for wg in interfaces:
            if self.unsupported or self.ipr.link_lookup(ifname=wg.name):
                continue
            try:
                self.ipr.link("add", ifname=wg.name, kind="wireguard")
                # Links were brought up before this step: a new one would stay down
                # until the next run.
                self.ipr.link("set", index=self.ipr.link_lookup(ifname=wg.name)[0], state="up")
                log.info("created wireguard link %s", wg.name)
            except Exception as e:  # noqa: BLE001
                code = getattr(e, "code", None)
                if code in (
                    95,
                    22,
                    19,
                ):  # EOPNOTSUPP / EINVAL / ENODEV: no wireguard in this kernel
                    self.unsupported = f"this kernel has no WireGuard ({e})"
                    log.warning("skipping wireguard.json: %s", self.unsupported)
                else:
                    errors.append(f"wireguard link {wg.name}: {e}")
        return errors

    def configure(self, interfaces: tuple[WireguardInterface, ...]) -> list[str]:
        if not interfaces or self.unsupported:
            return []
        try:
            genl = self._genl_factory() if self._genl_factory else _wireguard_socket()
        except Exception as e:  # noqa: BLE001
            self.unsupported = f"no WireGuard generic netlink family ({e})"
            log.warning("skipping wireguard.json: %s", self.unsupported)
            return []
        errors = []
        try:
            for wg in interfaces:
                try:
                    self._configure(genl, wg)
                except Exception as e:  # noqa: BLE001
                    errors.append(f"wireguard {wg.name}: {e}")
        finally:
            genl.close()
        return errors

    def _configure(self, genl, wg: WireguardInterface) -> None:
        genl.set(wg.name, private_key=wg.private_key, listen_port=wg.port or None)
        wanted = {p.public_key for p in wg.peers}
        for existing in _peer_keys(genl, wg.name):
            if existing not in wanted:  # "replace peers": drop the ones no longer configured
                genl.set(wg.name, peer={"public_key": existing, "remove": True})
        for p in wg.peers:
            peer = {"public_key": p.public_key, "allowed_ips": [str(n) for n in p.allowed_ips]}
            if p.endpoint:
                host = endpoint_host(p.endpoint)
                port = int(p.endpoint.rsplit(":", 1)[1])
                addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
                peer.update(endpoint_addr=addr, endpoint_port=port)
            genl.set(wg.name, peer=peer)
        log.info("wireguard %s: port %d, %d peers", wg.name, wg.port, len(wg.peers))


def _wireguard_socket():
    from pyroute2 import WireGuard

    return WireGuard()


def _peer_keys(genl, ifname: str) -> list[str]:
    keys = []
    for msg in genl.info(ifname):
        for peer in msg.get_attr("WGDEVICE_A_PEERS") or []:
            key = peer.get_attr("WGPEER_A_PUBLIC_KEY")
            if isinstance(key, bytes):
                key = base64.b64encode(key).decode()
            if key:
                keys.append(key)
    return keys
