"""The address pool: which addresses of lan0's subnet may be handed out.

router7 hard-codes a /24 and 230 addresses after the server's own. Here the
subnet comes from lan0's real address and prefix, and the owner may narrow the
range in the config. The network address, the broadcast address and the
router's own address are never part of the pool, whatever the range says.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface


class PoolError(ValueError):
    """The configured range does not fit lan0's subnet."""


@dataclass(frozen=True)
class Pool:
    interface: IPv4Interface  # the router's own address with the LAN prefix
    start: IPv4Address
    end: IPv4Address

    @classmethod
    def for_interface(
        cls,
        interface: IPv4Interface | str,
        start: IPv4Address | str | None = None,
        end: IPv4Address | str | None = None,
    ) -> Pool:
        """The pool of ``interface``'s subnet, optionally narrowed to start..end."""
        interface = ipaddress.IPv4Interface(interface)
        net = interface.network
        if net.prefixlen > 30:
            raise PoolError(f"{interface}: a /{net.prefixlen} has no room for clients")
        first, last = net.network_address + 1, net.broadcast_address - 1
        lo = ipaddress.IPv4Address(start) if start is not None else first
        hi = ipaddress.IPv4Address(end) if end is not None else last
        for a in (lo, hi):
            if a not in net:
                raise PoolError(f"pool address {a} is outside lan0's subnet {net}")
        if lo > hi:
            raise PoolError(f"pool start {lo} is after pool end {hi}")
        lo, hi = max(lo, first), min(hi, last)
        # the router's own address at either end of the range: shrink instead
        lo = lo + 1 if lo == interface.ip and lo < hi else lo
        hi = hi - 1 if hi == interface.ip and lo < hi else hi
        if lo == hi == interface.ip:
            raise PoolError(f"the pool {lo}-{hi} holds only the router's own address")
        return cls(interface, lo, hi)

    @property
    def server(self) -> IPv4Address:
        return self.interface.ip

    @property
    def network(self):
        return self.interface.network

    @property
    def netmask(self) -> IPv4Address:
        return self.interface.network.netmask

    @property
    def broadcast(self) -> IPv4Address:
        return self.interface.network.broadcast_address

    def __contains__(self, addr: object) -> bool:
        return (
            isinstance(addr, IPv4Address) and self.start <= addr <= self.end and addr != self.server
        )

    def usable(self, addr: IPv4Address) -> bool:
        """A host address of the subnet other than the router's: static leases may use it."""
        net = self.network
        return (
            addr in net
            and addr not in (net.network_address, net.broadcast_address)
            and addr != self.server
        )

    @property
    def size(self) -> int:
        n = int(self.end) - int(self.start) + 1
        return n - (1 if self.start <= self.server <= self.end else 0)

    def scan_from(self, mac: str) -> Iterator[IPv4Address]:
        """Every pool address once, starting at a slot derived from the MAC.

        A hash instead of router7's random slot: a client whose lease was
        forgotten still tends to land on the same address, and tests are
        deterministic.
        """
        span = int(self.end) - int(self.start) + 1
        offset = zlib.crc32(mac.encode()) % span
        for i in range(span):
            addr = IPv4Address(int(self.start) + (offset + i) % span)
            if addr != self.server:
                yield addr
