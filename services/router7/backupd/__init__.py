"""router7-backupd: a streamed tar.gz of <perm> on the LAN (:8077), and router7-restore."""
