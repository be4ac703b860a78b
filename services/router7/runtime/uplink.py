"""What an uplink is, defined once.

Every interface named ``uplink*`` faces the internet (``uplink0`` today, a second
one for failover later), and so does the interface the owner passed as
``--uplink`` if it is named otherwise. The management listeners stay off these
interfaces and netconfigd's firewall filters input arriving on them.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from router7.runtime import ports

UPLINK_PATTERN = "uplink*"  # nftables and fnmatch wildcards agree for a trailing '*'


def uplink_patterns(configured: str = "uplink0") -> tuple[str, ...]:
    """Interface name patterns of the uplinks, as nftables' ``iifname`` takes them."""
    if fnmatchcase(configured, UPLINK_PATTERN):
        return (UPLINK_PATTERN,)
    return (UPLINK_PATTERN, configured)


def is_uplink(ifname: str, configured: str = "uplink0") -> bool:
    """Whether ``ifname`` faces the internet."""
    return any(fnmatchcase(ifname, p) for p in uplink_patterns(configured))


def is_backup_uplink(ifname: str) -> bool:
    """``uplink1``, ``uplink2``, ...: a further uplink for failover (not the primary)."""
    return ifname.startswith("uplink") and ifname[6:].isdigit() and int(ifname[6:]) > 0


def state_dir_name(ifname: str) -> str:
    """A DHCP client's directory under ``<perm>/dhcp4/`` or ``dhcp6/``: router7's ``wire``
    for the primary uplink (whatever its name), the interface's name for a backup uplink."""
    return ifname if is_backup_uplink(ifname) else "wire"


def instance_name(service: str, ifname: str) -> str:
    """Pid-file name of a per-uplink service: ``dhcp4`` for the primary, ``dhcp4-uplink1``."""
    return f"{service}-{ifname}" if is_backup_uplink(ifname) else service


def http_port_for(port: int, ifname: str) -> int:
    """A per-uplink service's management port: its default for the primary, +100 per
    backup uplink (dhcp4 on uplink1: 8169), so two instances never collide."""
    return port + 100 * int(ifname[6:]) if port and is_backup_uplink(ifname) else port


class PerUplink:
    """Mixin for a Service that runs once per uplink (the DHCP clients): a backup
    uplink's instance runs beside the primary's with its own pid file, state directory
    and management port. Put it before Service in the bases."""

    def __init__(self, args, reactor, **kw):
        if getattr(args, "http_port", 0) == ports.HTTP[self.name]:
            args.http_port = http_port_for(args.http_port, args.uplink)
        super().__init__(args, reactor, **kw)

    @property
    def instance(self) -> str:
        return instance_name(self.name, self.args.uplink)
