"""Every TCP/UDP port router7's services listen on, in one place.

The services take their default from here and statusd builds its links from
here, so a page's link cannot point at a port the service does not use. The
owner can still move a service with its ``--http-port`` flag (statusd then
needs ``--metrics SERVICE=PORT`` for the link).
"""

from __future__ import annotations

# The management HTTP port of each service: /metrics, and its own pages if any.
HTTP = {
    "statusd": 80,
    "diagd": 7733,
    "dnsd": 8053,
    "netconfigd": 8066,
    "dhcp4d": 8067,
    "radvd": 8068,
    "dhcp4": 8069,
    "dhcp6": 8070,
    "failoverd": 8071,
    "backupd": 8077,
    "updated": 8078,
    "captured": 5080,
}
DNS = 53  # dnsd, UDP and TCP
CAPTURED_SSH = 5022  # captured's pcapng stream over SSH
