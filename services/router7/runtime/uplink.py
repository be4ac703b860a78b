"""What an uplink is, defined once.

Every interface named ``uplink*`` faces the internet (``uplink0`` today, a second
one for failover later), and so does the interface the owner passed as
``--uplink`` if it is named otherwise. The management listeners stay off these
interfaces and netconfigd's firewall filters input arriving on them.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

UPLINK_PATTERN = "uplink*"  # nftables and fnmatch wildcards agree for a trailing '*'


def uplink_patterns(configured: str = "uplink0") -> tuple[str, ...]:
    """Interface name patterns of the uplinks, as nftables' ``iifname`` takes them."""
    if fnmatchcase(configured, UPLINK_PATTERN):
        return (UPLINK_PATTERN,)
    return (UPLINK_PATTERN, configured)


def is_uplink(ifname: str, configured: str = "uplink0") -> bool:
    """Whether ``ifname`` faces the internet."""
    return any(fnmatchcase(ifname, p) for p in uplink_patterns(configured))
