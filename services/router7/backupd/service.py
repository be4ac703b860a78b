"""router7-backupd: serves ``/backup.tar.gz`` of --perm on the LAN (:8077).

Nothing is written. The runtime keeps the HTTP listeners on the LAN addresses.
"""

from __future__ import annotations

from router7.runtime.service import Service


class BackupdService(Service):
    name = "backupd"
    description = "Backups of /perm as a streamed tar.gz on the LAN (:8077)."
    uses_lan = False

    def http_root(self):
        # Imported here: the site (and twisted.web) is built at the first connection.
        from router7.backupd.http import Metrics, Root

        return Root(self.perm, Metrics(self.registry))


main = BackupdService.main

if __name__ == "__main__":
    main()
