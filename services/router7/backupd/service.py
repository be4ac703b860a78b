"""router7-backupd: serves ``/backup.tar.gz`` of --perm on the LAN (:8077).

Nothing is written; SIGUSR1 (netconfigd changed addresses) refreshes the listeners.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from router7.backupd.http import Metrics, Root
from router7.runtime.mgmt import ManagementListener, management_site
from router7.runtime.service import Service


class BackupdService(Service):
    name = "backupd"
    description = "Backups of /perm as a streamed tar.gz on the LAN (:8077)."
    uses_lan = False

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--port", type=int, default=8077, help="LAN-only HTTP port")

    def start(self):
        registry = CollectorRegistry()
        site = management_site(Root(self.perm, Metrics(registry)), registry)
        self.http = ManagementListener(self.reactor, site, self.args.port, uplink=self.args.uplink)
        self.http.refresh()

    def reload(self):
        self.http.refresh()

    def stop(self):
        self.http.stop()


main = BackupdService.main

if __name__ == "__main__":
    main()
