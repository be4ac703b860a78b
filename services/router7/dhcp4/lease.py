"""The lease: what an ACK means, and its two files under <perm>/dhcp4/wire/.

``lease.json`` is the contract with netconfigd (and diagd): the address to put
on the uplink, the gateway, the DNS servers, and the lease's times. ``ack`` is
the raw BOOTP payload of the last ACK, as router7 stores it; it lets a restarted
client (or a migrated router7 install) ask for the same address again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from router7.dhcp4 import wire
from router7.runtime.statefile import (
    Optional,
    StateFileError,
    ip_address,
    ip_interface,
    iso_time,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
)

log = logging.getLogger(__name__)

DEFAULT_LEASE_TIME = 600  # router7's default when the ACK has no option 51
INFINITE = 0xFFFFFFFF


@dataclass(frozen=True)
class Lease:
    address: IPv4Interface
    server: IPv4Address
    lease_time: int  # seconds
    obtained_at: datetime
    renew_at: datetime  # T1
    rebind_at: datetime  # T2
    expires_at: datetime
    router: IPv4Address | None = None
    dns: tuple[IPv4Address, ...] = ()
    domain: str | None = None
    broadcast: IPv4Address | None = None
    mtu: int | None = None
    server_mac: bytes | None = None  # where unicast RENEW/RELEASE frames go

    @classmethod
    def from_ack(cls, ack: wire.Message, obtained_at: datetime) -> Lease:
        """Interpret an ACK received for a REQUEST sent at ``obtained_at`` (RFC 2131 §4.4.1)."""
        lease_time = ack.lease_time if ack.lease_time is not None else DEFAULT_LEASE_TIME
        if lease_time == INFINITE:
            lease_time = 100 * 365 * 86400  # keep datetimes and timers finite
        # T1/T2 default to 50 % and 87.5 % (§4.4.5); ignore values that are out of order.
        t1, t2 = lease_time * 0.5, lease_time * 0.875
        if ack.rebinding_time is not None and 0 < ack.rebinding_time < lease_time:
            t2 = ack.rebinding_time
        if ack.renewal_time is not None and 0 < ack.renewal_time <= t2:
            t1 = ack.renewal_time
        if t1 > t2:
            t1 = t2 * 0.5 / 0.875
        prefixlen = 32
        if ack.subnet_mask is not None:
            with contextlib.suppress(ValueError):
                prefixlen = wire.mask_prefixlen(ack.subnet_mask)
        return cls(
            address=IPv4Interface(f"{ack.yiaddr}/{prefixlen}"),
            server=ack.server_id or ack.src_ip or wire.UNSPECIFIED,
            lease_time=lease_time,
            obtained_at=obtained_at,
            renew_at=obtained_at + timedelta(seconds=t1),
            rebind_at=obtained_at + timedelta(seconds=t2),
            expires_at=obtained_at + timedelta(seconds=lease_time),
            router=ack.routers[0] if ack.routers else None,
            dns=ack.dns,
            domain=ack.domain,
            broadcast=ack.broadcast,
            mtu=ack.mtu,
            server_mac=ack.src_mac,
        )

    def to_json(self) -> dict:
        return {
            "address": self.address,
            "client_ip": self.address.ip,  # router7's field names, for compatibility
            "subnet_mask": self.address.netmask,
            "router": self.router,
            "dns": list(self.dns),
            "domain": self.domain,
            "broadcast": self.broadcast,
            "mtu": self.mtu,
            "server": self.server,
            "server_mac": wire.format_mac(self.server_mac) if self.server_mac else None,
            "lease_time": self.lease_time,
            "obtained_at": self.obtained_at,
            "renew_at": self.renew_at,
            "rebind_at": self.rebind_at,
            "expires_at": self.expires_at,
            "valid_until": self.renew_at,  # router7: valid_until is the renew time (T1)
        }

    @classmethod
    def from_json(cls, obj: dict) -> Lease:
        """From an already validated (``SCHEMA``) lease.json object."""
        mac = obj["server_mac"]
        return cls(
            address=obj["address"],
            server=obj["server"],
            lease_time=obj["lease_time"],
            obtained_at=obj["obtained_at"],
            renew_at=obj["renew_at"],
            rebind_at=obj["rebind_at"],
            expires_at=obj["expires_at"],
            router=obj["router"],
            dns=tuple(obj["dns"]),
            domain=obj["domain"],
            broadcast=obj["broadcast"],
            mtu=obj["mtu"],
            server_mac=wire.parse_mac(mac) if mac else None,
        )


SCHEMA = {
    "address": ip_interface,
    "router": Optional(ip_address),
    "dns": [ip_address],
    "domain": Optional(str),
    "broadcast": Optional(ip_address),
    "mtu": Optional(int),
    "server": ip_address,
    "server_mac": Optional(str),
    "lease_time": int,
    "obtained_at": iso_time,
    "renew_at": iso_time,
    "rebind_at": iso_time,
    "expires_at": iso_time,
}


class LeaseStore:
    """The files of one client: ``<perm>/dhcp4/wire/{lease.json,ack}``."""

    def __init__(self, perm: Path):
        self.dir = Path(perm) / "dhcp4" / "wire"
        self.lease_path = self.dir / "lease.json"
        self.ack_path = self.dir / "ack"

    def save(self, lease: Lease, ack: bytes) -> None:
        # The ACK first: lease.json is what consumers watch, so it is written last.
        write_bytes_atomic(self.ack_path, ack)
        write_json_atomic(self.lease_path, lease.to_json())

    def load(self) -> Lease | None:
        """The stored lease, from the ACK (router7's source of truth) or lease.json."""
        stored = None
        try:
            stored = Lease.from_json(read_json(self.lease_path, SCHEMA))
        except StateFileError as e:
            if self.lease_path.exists():
                log.warning("ignoring %s", e)
        try:
            raw = self.ack_path.read_bytes()
        except FileNotFoundError:
            return stored
        except OSError as e:
            log.warning("cannot read %s: %s", self.ack_path, e)
            return stored
        try:
            ack = wire.decode(raw)
        except wire.MalformedPacket as e:
            log.warning("ignoring %s: %s", self.ack_path, e)
            return stored
        if ack.msg_type != wire.ACK or ack.yiaddr == wire.UNSPECIFIED:
            log.warning("ignoring %s: not a DHCPACK with an address", self.ack_path)
            return stored
        if stored is not None and stored.address.ip == ack.yiaddr:
            return stored  # lease.json has the times and the server's MAC
        # No (matching) lease.json, e.g. a router7 install: time it from the file's mtime.
        obtained = datetime.fromtimestamp(self.ack_path.stat().st_mtime, UTC)
        lease = Lease.from_ack(ack, obtained)
        return replace(lease, server_mac=stored.server_mac) if stored else lease

    def remove(self) -> None:
        for path in (self.ack_path, self.lease_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
