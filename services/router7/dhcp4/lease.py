"""The lease: what an ACK means, and its two files under <perm>/dhcp4/wire/.

``lease.json`` is the contract with netconfigd, diagd, dnsd and statusd: the address
to put on the uplink, the gateway, the DNS servers, and the lease's times. This
module owns it: ``read`` is the one reader every consumer calls, and it accepts the
Go router7's file (``client_ip``, ``subnet_mask``, ``valid_until``) as well as ours. ``ack`` is
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
    validate,
    write_bytes_atomic,
    write_json_atomic,
)
from router7.runtime.uplink import state_dir_name

log = logging.getLogger(__name__)

DEFAULT_LEASE_TIME = 600  # router7's default when the ACK has no option 51
INFINITE = 0xFFFFFFFF


@dataclass(frozen=True)
class Lease:
    address: IPv4Interface
    # None only in a lease read from a file that does not record them (the Go
    # router7's has only valid_until, its T1, which then stands in for all times).
    server: IPv4Address | None
    lease_time: int | None  # seconds
    obtained_at: datetime | None
    renew_at: datetime | None  # T1
    rebind_at: datetime | None  # T2
    expires_at: datetime | None
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
    def from_json(cls, obj: object, path: str | Path = "<memory>") -> Lease:
        """From a parsed lease.json: ours, or the Go router7's (see ``read``)."""
        v = validate(obj, SCHEMA, path)
        address = v["address"]
        if address is None:
            if v["client_ip"] is None:
                raise StateFileError(path, "address", "missing (neither address nor client_ip)")
            if v["subnet_mask"] is None:
                raise StateFileError(path, "subnet_mask", "missing (router7 writes it too)")
            try:
                address = IPv4Interface(f"{v['client_ip']}/{v['subnet_mask']}")
            except ValueError as e:
                raise StateFileError(path, "subnet_mask", str(e)) from None
        for name, value in (("address", address), ("router", v["router"])):
            if value is not None and value.version != 4:
                raise StateFileError(path, name, "not an IPv4 address")
        # router7's only time is valid_until, which is its renew time (T1): the
        # lease lasts at least that long, so it stands in for every missing time.
        fallback = v["valid_until"]
        times = {k: v[k] or fallback for k in ("renew_at", "rebind_at", "expires_at")}
        mac = v["server_mac"]
        try:
            server_mac = wire.parse_mac(mac) if mac else None
        except ValueError as e:
            raise StateFileError(path, "server_mac", str(e)) from None
        return cls(
            address=address,
            server=v["server"],
            lease_time=v["lease_time"],
            obtained_at=v["obtained_at"],
            router=v["router"],
            dns=tuple(v["dns"]),
            domain=v["domain"],
            broadcast=v["broadcast"],
            mtu=v["mtu"],
            server_mac=server_mac,
            **times,
        )


def _omitempty(convert):
    """Go's omitempty and our nulls: "" and null both mean 'not set'."""
    return Optional(lambda value: None if value == "" else convert(value))


# Both formats: ours (address, server, the four times) and the Go router7's
# (client_ip, subnet_mask, valid_until = T1). Unknown fields are ignored.
SCHEMA = {
    "address": _omitempty(ip_interface),
    "client_ip": _omitempty(ip_address),
    "subnet_mask": _omitempty(ip_address),
    "router": _omitempty(ip_address),
    "dns": Optional([ip_address], []),
    "domain": Optional(str),
    "broadcast": _omitempty(ip_address),
    "mtu": Optional(int),
    "server": _omitempty(ip_address),
    "server_mac": Optional(str),
    "lease_time": Optional(int),
    "obtained_at": _omitempty(iso_time),
    "renew_at": _omitempty(iso_time),
    "rebind_at": _omitempty(iso_time),
    "expires_at": _omitempty(iso_time),
    "valid_until": _omitempty(iso_time),
}


def lease_path(perm: str | Path, uplink: str = "uplink0") -> Path:
    """``<perm>/dhcp4/wire/lease.json``; a backup uplink's is ``dhcp4/uplink1/lease.json``."""
    return Path(perm) / "dhcp4" / state_dir_name(uplink) / "lease.json"


def read(path: str | Path) -> Lease:
    """The one reader of lease.json, for every service: raises StateFileError naming
    the file and field when it is missing or wrong."""
    return Lease.from_json(read_json(path), path)


class LeaseStore:
    """The files of one client: ``<perm>/dhcp4/wire/{lease.json,ack}``."""

    def __init__(self, perm: Path, uplink: str = "uplink0"):
        self.dir = Path(perm) / "dhcp4" / state_dir_name(uplink)
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
            stored = read(self.lease_path)
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
        if stored is not None and stored.address.ip == ack.yiaddr and stored.obtained_at:
            return stored  # our lease.json has the times and the server's MAC
        # No (matching) lease.json, e.g. a router7 install: time it from the file's mtime.
        obtained = datetime.fromtimestamp(self.ack_path.stat().st_mtime, UTC)
        lease = Lease.from_ack(ack, obtained)
        return replace(lease, server_mac=stored.server_mac) if stored else lease

    def remove(self) -> None:
        for path in (self.ack_path, self.lease_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
