"""router7-dhcp4d: the LAN's DHCPv4 server, wired to the reactor.

Files (under --perm): dhcp4d/config.json (read), dhcp4d/leases.json and
dhcp4d/declined.json (written on every change, read on start), dhcp4d/oui/oui.csv
(read if present). lan0's address comes from the runtime's netlink view: a change
reconfigures the pool. SIGUSR1 re-reads the config; after each lease change
dnsd gets a SIGUSR1.
"""

from __future__ import annotations

import logging
from collections import Counter

from router7.dhcp4d import config as configmod
from router7.dhcp4d import store, wire
from router7.dhcp4d.leases import Lease, LeaseTable
from router7.dhcp4d.oui import VendorDB
from router7.dhcp4d.pool import Pool, PoolError
from router7.dhcp4d.server import Dhcp4Server, Stats, triage
from router7.dhcp4d.transport import Dhcp4Transport
from router7.runtime.service import Service
from router7.runtime.statefile import StateFileError

log = logging.getLogger(__name__)

WRITE_INTERVAL = 1.0  # seconds between two writes of leases.json
DISCOVER_BUDGET = 32  # DISCOVERs answered per wakeup when the socket has a backlog


class Dhcp4dService(Service):
    name = "dhcp4d"
    description = "DHCPv4 server for the LAN (lan0) with a status page on :8067."

    def start(self):
        self.clock = self.reactor
        self.dir = self.perm / "dhcp4d"
        self.vendors = VendorDB.load(self.dir / "oui" / "oui.csv")
        self.config = configmod.Config()
        self.table: LeaseTable | None = None
        self.server: Dhcp4Server | None = None
        self._stats = Stats(Counter(), Counter(), Counter(), Counter())
        self._dirty = False
        self._address = None
        self._last_write = float("-inf")
        self._flush_call = None
        self._configure()
        self.transport = Dhcp4Transport(self.reactor, self.args.lan, self._batch)
        self.transport.start()

    def http_site(self):
        # POST /sethostname needs the admin credential and a same-origin form (issue 16).
        # Imported here: the site (and twisted.web) is built at the first connection.
        from router7.dhcp4d.http import StatusPage, registry_for
        from router7.runtime.mgmt import management_site

        return management_site(StatusPage(self), registry_for(self, self.registry), perm=self.perm)

    def reload(self):
        """SIGUSR1 (the owner edited config.json)."""
        self.vendors = VendorDB.load(self.dir / "oui" / "oui.csv")
        self._configure()

    def net_changed(self, changes):
        if self.net.ipv4(self.args.lan) != self._address:
            self._configure()

    def stop(self):
        self._flush(force=True)
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self.transport.stop()

    # --- configuration ---------------------------------------------------------

    def _configure(self) -> None:
        try:
            self.config = configmod.load(self.dir / "config.json")
        except StateFileError as e:
            log.error("%s; keeping the previous configuration", e)
        iface = self._address = self.net.ipv4(self.args.lan)
        if iface is None:
            log.warning("%s has no IPv4 address: not serving until it has one", self.args.lan)
            self.server = None
            return
        try:
            pool = Pool.for_interface(iface, self.config.pool_start, self.config.pool_end)
        except PoolError as e:
            log.error("%s; using the whole subnet", e)
            pool = Pool.for_interface(iface)
        cfg = self.config
        if self.table is None:
            self.table = LeaseTable(
                pool, cfg.static_leases, cfg.hostname_overrides, decline_hold=cfg.decline_time
            )
            dropped = self.table.load(store.load(self.dir / "leases.json"))
            self.table.declined = store.load_declined(self.dir / "declined.json")
            log.info("loaded %d leases", len(self.table.leases))
        else:
            self.table.decline_hold = cfg.decline_time
            dropped = self.table.reconfigure(pool, cfg.static_leases, cfg.hostname_overrides)
        for lease in dropped:
            log.warning(
                "dropping lease %s of %s: outside the pool %s-%s, or superseded",
                lease.addr,
                lease.hardware_addr,
                pool.start,
                pool.end,
            )
        self.server = Dhcp4Server(self.clock, self.table, cfg, on_change=self._changed)
        self.server.stats = self._stats
        log.info(
            "%s %s: pool %s-%s (%d addresses)",
            self.args.lan,
            iface,
            pool.start,
            pool.end,
            pool.size,
        )
        self._changed()
        self._flush(force=True)

    # --- packets ----------------------------------------------------------------

    def _batch(self, batch: list[bytes]) -> None:
        batch, shed = triage(batch, DISCOVER_BUDGET)
        if shed:
            self._stats.dropped["overload"] += shed
        for data in batch:
            self._datagram(data)
        self._flush()

    def _datagram(self, data: bytes) -> None:
        if self.server is None:
            self._stats.dropped["no_address"] += 1
            return
        try:
            result = self.server.handle_bytes(data)
            if result is not None:
                reply, dest = result
                server_ip = self.server.server_ip
                self.transport.send(wire.encode(reply, server_ip), dest, server_ip)
        except Exception:  # a bug must cost one packet, not the LAN's DHCP
            self._stats.dropped["internal_error"] += 1
            log.exception("handling a request failed")

    def _changed(self) -> None:
        self._dirty = True

    def _flush(self, force: bool = False) -> None:
        """Persist and tell dnsd: at most once per WRITE_INTERVAL, not once per ACK.

        Under a burst (a switch rebooting, a benchmark) rewriting the whole file for
        every ACK costs O(leases) each; a lease ACKed just before a crash is not lost
        for good either, the client's next REQUEST re-creates it.
        """
        if not self._dirty or self.table is None:
            return
        wait = self._last_write + WRITE_INTERVAL - self.reactor.seconds()
        if wait > 0 and not force:
            if self._flush_call is None or not self._flush_call.active():
                self._flush_call = self.reactor.callLater(wait, self._flush)
            return
        self._dirty = False
        self._last_write = self.reactor.seconds()
        try:
            store.save(self.dir / "leases.json", self.table.all(), self.table.pool.start)
            store.save_declined(self.dir / "declined.json", self.table.declined)
        except OSError as e:
            log.error("writing leases failed: %s", e)
        self.notify("dnsd")

    # --- what the HTTP handlers use -----------------------------------------------

    def leases(self) -> list[Lease]:
        return self.table.all() if self.table is not None else []

    def stats(self) -> Stats:
        return self._stats

    def lease_time(self) -> int:
        return self.config.lease_time

    def set_hostname(self, mac: str, hostname: str) -> bool:
        if self.table is None:
            return False
        try:
            mac = configmod.mac_key(mac)
        except ValueError:
            return False
        lease = self.table.set_hostname(mac, hostname, self.clock.seconds())
        if lease is None:
            return False
        log.info("hostname of %s set to %r", mac, lease.hostname)
        self._changed()
        self._flush(force=True)
        return True


main = Dhcp4dService.main
