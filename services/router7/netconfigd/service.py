"""router7-netconfigd: turns /perm's config and leases into kernel state.

Applies at start and on every SIGUSR1 (dhcp4 and dhcp6 send one after writing
a lease), then tells the services that listen on addresses to look again.
``--once`` applies and exits (exit code 1 if anything failed), like router7's
``-linger=false``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket

from router7.failoverd import state as failover_state
from router7.netconfigd import firstboot
from router7.netconfigd import plan as planmod
from router7.netconfigd.apply import Applier
from router7.netconfigd.config import ConfigStore, read_backup_leases
from router7.netconfigd.metrics import Metrics
from router7.netconfigd.nft import own_counters
from router7.runtime.service import Service

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0
# After an apply, these re-read addresses and leases (reference §0.3; dhcp4d refreshes
# its listeners, the others re-bind to the new addresses).
NOTIFY = (
    "dnsd",
    "dhcp4d",
    "radvd",
    "diagd",
    "captured",
    "backupd",
    "updated",
    "statusd",
    "dhcp4",
    "dhcp6",
    "failoverd",
)


def resolve(host: str) -> list:
    """Endpoint names of WireGuard peers (for the host routes via the DHCP gateway)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as e:
        log.warning("cannot resolve %s: %s", host, e)
        return []
    return list(dict.fromkeys(ipaddress.ip_address(i[4][0]) for i in infos))


class Netconfigd(Service):
    name = "netconfigd"
    description = "Applies interfaces, leases, routes and the nftables firewall."
    _retry = None

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--once", action="store_true", help="apply once and exit (1 on errors)")

    def start(self):
        self._admin_credential()
        self.store = ConfigStore(self.perm, self.run_dir / "netconfigd-last-good")
        self.applier = Applier(state_file=self.run_dir / "netconfigd-firewall.json")
        logging.getLogger("pyroute2").setLevel(max(logging.INFO, log.getEffectiveLevel()))
        self.metrics = Metrics(lambda: own_counters(self.applier.nft), self.registry)
        self._retry = None
        ok = self.apply_now()
        if self.args.once:
            self.shutdown(0 if ok else 1)

    def _admin_credential(self) -> None:
        """netconfigd starts first: it creates the router's admin credential (issue 16).
        Shown once in the journal at warning level (which the image forwards to the
        console) and once on the status page (statusd)."""
        # Imported here: auth's HTTP guard pulls in twisted.web, which netconfigd
        # otherwise loads only at its management port's first connection.
        from router7.runtime import auth

        try:
            token, created = auth.load_or_create(self.perm)
        except OSError as e:
            log.error("cannot create the admin credential in %s: %s", auth.token_path(self.perm), e)
            return
        if created:
            log.warning(
                "admin credential (user admin, for changes and backups): %s "
                "(kept in %s; the owner may replace it)",
                token,
                auth.token_path(self.perm),
            )

    def reload(self):
        self.apply_now()

    def stop(self):
        if self._retry is not None and self._retry.active():
            self._retry.cancel()

    def apply_now(self, notify: bool = True) -> bool:
        """Load, plan, apply; True if everything applied cleanly."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        try:
            firstboot.ensure_interfaces(self.perm)
        except OSError as e:
            log.error("first boot: cannot write interfaces.json: %s", e)
        inputs, config_errors = self.store.load()
        # Failover: backup uplinks' leases and the uplink failoverd made active.
        backups, backup_errors = read_backup_leases(self.perm, inputs.interfaces, self.args.uplink)
        backups6, backup6_errors = read_backup_leases(
            self.perm, inputs.interfaces, self.args.uplink, family=6
        )
        config_errors += backup_errors + backup6_errors
        inputs = dataclasses.replace(
            inputs,
            backup_dhcp4=backups,
            backup_dhcp6=backups6,
            active_uplink=failover_state.active_uplink(self.perm, self.args.uplink),
        )
        self.metrics.config_errors.inc(len(config_errors))
        plan = planmod.build(inputs, uplink=self.args.uplink, lan=self.args.lan, resolve=resolve)
        self.metrics.applies.inc()
        result = self.applier.apply(plan)
        for err in result.errors:
            self.metrics.apply_errors.inc()
            log.error("apply: %s", err)
        log.info(
            "applied: %d addresses, %d routes, firewall %s, %d errors",
            len(plan.addresses),
            len(plan.routes),
            result.firewall,
            len(result.errors) + len(config_errors),
        )
        if self.args.once:
            return not (result.errors or config_errors)
        self.listeners.refresh()  # our own addresses may be new
        if notify:
            for service in NOTIFY:
                self.notify(service)
        if result.errors:
            # e.g. lan0 not there yet at boot: try again, without waking everyone up.
            self._retry = self.reactor.callLater(RETRY_SECONDS, self.apply_now, False)
        return not (result.errors or config_errors)


main = Netconfigd.main

if __name__ == "__main__":
    main()
