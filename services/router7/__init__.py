"""router7: a home internet router's services, each a Twisted daemon."""

__version__ = "0.1.0"

# The daemons of a router7, in the order they start: netconfigd names and
# addresses the links the others use. One systemd unit each (pkgs/systemd/).
SERVICES = (
    "netconfigd",
    "dhcp4",
    "dhcp6",
    "failoverd",
    "dhcp4d",
    "radvd",
    "dnsd",
    "captured",
    "diagd",
    "backupd",
    "updated",
    "statusd",
)
