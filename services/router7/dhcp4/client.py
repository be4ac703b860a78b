"""The DHCPv4 client state machine (RFC 2131 §4.4), without sockets.

Inputs: ``start(stored_lease)``, ``receive(message)``, ``release()`` and the
timers it sets on an injected clock (``IReactorTime``; ``task.Clock`` in tests).
Outputs go to a ``Listener``: ``send(Transmit)`` (a BOOTP payload plus where it
goes: broadcast, or unicast to the server's IP and MAC), ``lease_changed(lease,
raw_ack)``, ``lease_expired(lease)``, ``state_changed(state)`` and
``dropped(reason)``.

States::

    start(None) ──► INIT ─► SELECTING ──OFFER──► REQUESTING ──ACK──► BOUND
    start(lease) ─► REBOOTING ──ACK──► BOUND        (no answer: ─► SELECTING)
    BOUND ──T1──► RENEWING ──T2──► REBINDING ──expiry──► SELECTING
    RENEWING/REBINDING ──ACK──► BOUND;  NAK ──► INIT (forget the lease)

Forged replies (anyone on the segment sees the xid) must not take a working
lease away ("connectivity above all", docs/hostile.md):

- an ACK that lacks what the unexpired held lease has (a router; a subnet mask
  wider than /32) is dropped as "degraded" and the exchange goes on;
- in RENEWING/REBINDING, a NAK whose server id is not the lease's server is
  dropped as "foreign_nak" (INIT-REBOOT still takes any NAK: the router may
  have moved to another network).

The last lease is never forgotten on expiry or silence (only on NAK or
release): it is the hint (requested IP) of later DISCOVERs, and its files stay
on disk so the router keeps its last configuration.
"""

from __future__ import annotations

import enum
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address

from router7.dhcp4 import wire
from router7.dhcp4.lease import Lease

log = logging.getLogger(__name__)


FORGED = ("degraded", "foreign_nak")  # drop reasons that point to a forged reply


class State(enum.Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    REBOOTING = "rebooting"  # INIT-REBOOT: REQUEST for the stored address, no DISCOVER
    BOUND = "bound"
    RENEWING = "renewing"
    REBINDING = "rebinding"
    RELEASED = "released"


@dataclass(frozen=True)
class Transmit:
    """One message to send. ``dst_mac`` is the Ethernet destination."""

    msg_type: int
    payload: bytes  # BOOTP, without IP/UDP
    src: IPv4Address
    dst: IPv4Address
    dst_mac: bytes

    @property
    def broadcast(self) -> bool:
        return self.dst == wire.BROADCAST


@dataclass(frozen=True)
class Timing:
    backoff_initial: float = 4.0  # RFC 2131 §4.1: 4, 8, 16, ... 64 s, ±1 s
    backoff_max: float = 64.0
    jitter: float = 1.0
    request_attempts: int = 5  # REQUESTING transmissions before starting over
    reboot_attempts: int = 5  # INIT-REBOOT transmissions before falling back to DISCOVER
    min_retransmit: float = 60.0  # RENEWING/REBINDING floor, RFC 2131 §4.4.5


class Listener:
    """What the core tells the outside world. The defaults do nothing."""

    def send(self, tx: Transmit) -> None: ...

    def lease_changed(self, lease: Lease, ack: bytes) -> None: ...

    def lease_expired(self, lease: Lease) -> None: ...

    def state_changed(self, state: State) -> None: ...

    def dropped(self, reason: str, msg: wire.Message) -> None: ...


class Dhcp4Core:
    def __init__(
        self,
        ident: wire.Identity,
        clock,
        listener: Listener,
        timing: Timing = Timing(),
        rng: random.Random | None = None,
    ):
        self.ident = ident
        self.clock = clock
        self.listener = listener
        self.timing = timing
        self.rng = rng or random.SystemRandom()
        self.state = State.INIT
        self.lease: Lease | None = None  # bound, or the last one (kept as a hint)
        self.xid = 0
        self._offer: wire.Message | None = None
        self._attempt = 0
        self._exchange_started = 0.0  # when the first message of this exchange went out
        self._request_sent_at = 0.0  # the lease of the ACK runs from here
        self._naks = 0  # consecutive NAKs: back off when a server keeps refusing
        self._retransmit = None  # IDelayedCall of the pending retransmission or restart
        self._lease_timers: list = []

    # --- inputs ----------------------------------------------------------------

    def start(self, stored: Lease | None = None) -> None:
        if stored is not None:
            self.lease = stored
            self._reboot()
        else:
            self._discover()

    def receive(self, msg: wire.Message) -> None:
        """A decoded server message (already counted by type by the caller)."""
        if msg.chaddr != self.ident.mac:
            return self._drop("chaddr", msg)
        if msg.xid != self.xid:
            return self._drop("xid", msg)
        if self.state is State.SELECTING and msg.msg_type == wire.OFFER:
            if msg.yiaddr == wire.UNSPECIFIED:
                return self._drop("invalid", msg)
            return self._request(msg)
        if self.state in (State.REQUESTING, State.REBOOTING, State.RENEWING, State.REBINDING):
            if msg.msg_type == wire.ACK:
                if msg.yiaddr == wire.UNSPECIFIED:
                    return self._drop("invalid", msg)
                if self._degrades(msg):
                    return self._drop("degraded", msg)
                # Any server's ACK counts: fiber7 OFFERs from one server and ACKs from another.
                return self._bind(msg)
            if msg.msg_type == wire.NAK:
                if self._foreign_nak(msg):
                    return self._drop("foreign_nak", msg)
                return self._nak(msg)
        return self._drop("unexpected", msg)

    def release(self) -> Transmit | None:
        """Stop, and give the lease back (RFC 2131 §4.4.6). Returns the RELEASE sent, if any."""
        self._cancel_all()
        self._set_state(State.RELEASED)
        lease, self.lease = self.lease, None
        if lease is None or lease.server in (None, wire.UNSPECIFIED):
            return None
        self.xid = self._new_xid()
        payload = wire.encode(
            wire.RELEASE, self.xid, self.ident, ciaddr=lease.address.ip, server_id=lease.server
        )
        return self._send(wire.RELEASE, payload, lease.address.ip, lease.server, lease.server_mac)

    def stop(self) -> None:
        self._cancel_all()

    def link_up(self) -> None:
        """The uplink's carrier is back: the router may have moved (RFC 2131 §3.7), and the
        next retransmission may be a minute away. Confirm a running lease with INIT-REBOOT
        now, or look for a server now."""
        if self.state in (State.INIT, State.RELEASED):
            return
        self._cancel_all()
        expires = self.lease.expires_at if self.lease is not None else None
        if self.lease is not None and (expires is None or self.now() < expires):
            self._reboot()
            if expires is not None:  # should nobody answer, the lease still ends when it ends
                self._lease_timers = [
                    self.clock.callLater(self._delay_until(expires), self._expire)
                ]
        else:
            self._discover()

    # --- forged replies -----------------------------------------------------------

    def _degrades(self, ack: wire.Message) -> bool:
        """Would this ACK replace the held lease with one that works less (no router,
        a /32 or no mask where the held lease has a subnet)? Without a held lease, or
        once it has expired, there is nothing to lose: any ACK beats none (and an ISP
        that really changed its leases is followed after one lease time)."""
        held = self.lease
        if held is None:
            return False
        if held.expires_at is not None and self.now() >= held.expires_at:
            return False  # an expired lease is no longer worth keeping out a new one
        if held.router is not None and not ack.routers:
            return True
        if held.address.network.prefixlen < 32:
            try:
                prefixlen = wire.mask_prefixlen(ack.subnet_mask) if ack.subnet_mask else 32
            except ValueError:
                return True
            if prefixlen >= 32:
                return True
        return False

    def _foreign_nak(self, nak: wire.Message) -> bool:
        """A NAK while renewing or rebinding from anyone but the lease's server."""
        if self.state not in (State.RENEWING, State.REBINDING) or self.lease is None:
            return False
        server = self.lease.server
        if server in (None, wire.UNSPECIFIED):
            return False  # a stored lease without a server id: nobody to compare with
        return nak.server_id != server

    # --- helpers ----------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), UTC)

    def _delay_until(self, t: datetime) -> float:
        return max(0.0, t.timestamp() - self.clock.seconds())

    def _new_xid(self) -> int:
        return self.rng.getrandbits(32)

    def backoff(self, attempt: int) -> float:
        # Cap the exponent: SELECTING retries forever, and 2.0**1024 overflows a float.
        base = min(self.timing.backoff_initial * 2 ** min(attempt, 30), self.timing.backoff_max)
        return max(1.0, base + self.rng.uniform(-self.timing.jitter, self.timing.jitter))

    def _set_state(self, state: State) -> None:
        if state is not self.state:
            log.debug("%s -> %s", self.state.value, state.value)
            self.state = state
            self.listener.state_changed(state)

    def _cancel_retransmit(self) -> None:
        if self._retransmit is not None and self._retransmit.active():
            self._retransmit.cancel()
        self._retransmit = None

    def _cancel_all(self) -> None:
        self._cancel_retransmit()
        for call in self._lease_timers:
            if call.active():
                call.cancel()
        self._lease_timers = []

    def _later(self, delay: float, fn, *args) -> None:
        self._cancel_retransmit()
        self._retransmit = self.clock.callLater(delay, fn, *args)

    def _drop(self, reason: str, msg: wire.Message) -> None:
        # A forged reply is worth a warning: the owner should know someone tries.
        level = logging.WARNING if reason in FORGED else logging.DEBUG
        log.log(
            level,
            "dropped %s (%s) in %s from %s",
            msg.type_name,
            reason,
            self.state.value,
            msg.server_id or msg.src_ip,
        )
        self.listener.dropped(reason, msg)

    def _send(self, msg_type, payload, src, dst, dst_mac=None) -> Transmit:
        if dst == wire.BROADCAST or dst_mac is None:
            # Without a learned MAC, a broadcast frame still reaches an on-link server.
            dst_mac = wire.BROADCAST_MAC
        tx = Transmit(msg_type, payload, src, dst, dst_mac)
        self.listener.send(tx)
        return tx

    def _secs(self) -> int:
        return int(self.clock.seconds() - self._exchange_started)

    def _begin_exchange(self, state: State) -> None:
        self._cancel_retransmit()
        self._set_state(state)
        self.xid = self._new_xid()
        self._attempt = 0
        self._exchange_started = self.clock.seconds()

    # --- INIT / SELECTING ----------------------------------------------------

    def _discover(self) -> None:
        self._offer = None
        self._begin_exchange(State.SELECTING)
        self._send_discover()

    def _send_discover(self) -> None:
        hint = self.lease.address.ip if self.lease else None  # ask for the last address again
        payload = wire.encode(
            wire.DISCOVER, self.xid, self.ident, secs=self._secs(), requested_ip=hint
        )
        self._send(wire.DISCOVER, payload, wire.UNSPECIFIED, wire.BROADCAST)
        # SELECTING never gives up: after expiry it is how the client gets back online.
        delay = self.backoff(self._attempt)
        self._attempt += 1
        self._later(delay, self._send_discover)

    # --- REQUESTING ------------------------------------------------------------

    def _request(self, offer: wire.Message) -> None:
        log.info("offer of %s from %s", offer.yiaddr, offer.server_id)
        self._offer = offer
        self._set_state(State.REQUESTING)  # same xid as the DISCOVER (RFC 2131 §4.4.1)
        self._attempt = 0
        self._request_sent_at = self.clock.seconds()
        self._send_request_selecting()

    def _send_request_selecting(self) -> None:
        if self._attempt >= self.timing.request_attempts:
            log.info("no ACK for %s, starting over", self._offer.yiaddr)
            return self._discover()
        payload = wire.encode(
            wire.REQUEST,
            self.xid,
            self.ident,
            secs=self._secs(),
            requested_ip=self._offer.yiaddr,
            server_id=self._offer.server_id,
        )
        self._send(wire.REQUEST, payload, wire.UNSPECIFIED, wire.BROADCAST)
        self._later(self.backoff(self._attempt), self._send_request_selecting)
        self._attempt += 1

    # --- INIT-REBOOT -----------------------------------------------------------

    def _reboot(self) -> None:
        log.info("asking again for %s (INIT-REBOOT)", self.lease.address.ip)
        self._begin_exchange(State.REBOOTING)
        self._request_sent_at = self.clock.seconds()
        self._send_request_reboot()

    def _send_request_reboot(self) -> None:
        if self._attempt >= self.timing.reboot_attempts:
            log.info("no answer to INIT-REBOOT, falling back to DISCOVER")
            return self._discover()
        payload = wire.encode(
            wire.REQUEST,
            self.xid,
            self.ident,
            secs=self._secs(),
            requested_ip=self.lease.address.ip,  # and no server id (RFC 2131 §4.3.2)
        )
        self._send(wire.REQUEST, payload, wire.UNSPECIFIED, wire.BROADCAST)
        self._later(self.backoff(self._attempt), self._send_request_reboot)
        self._attempt += 1

    # --- BOUND -------------------------------------------------------------------

    def _bind(self, ack: wire.Message) -> None:
        self._cancel_all()
        # The lease runs from when the REQUEST went out (RFC 2131 §4.4.1), not from the ACK.
        obtained = datetime.fromtimestamp(self._request_sent_at, UTC)
        lease = Lease.from_ack(ack, obtained)
        renewal = self.state in (State.RENEWING, State.REBINDING)
        self.lease = lease
        self._naks = 0
        self._set_state(State.BOUND)
        log.info(
            "%s %s from %s (router %s, lease %d s, renew in %d s)",
            "renewed" if renewal else "bound to",
            lease.address,
            lease.server,
            lease.router,
            lease.lease_time,
            lease.renew_at.timestamp() - self.clock.seconds(),
        )
        self._lease_timers = [
            self.clock.callLater(self._delay_until(lease.renew_at), self._renew),
            self.clock.callLater(self._delay_until(lease.rebind_at), self._rebind),
            self.clock.callLater(self._delay_until(lease.expires_at), self._expire),
        ]
        self.listener.lease_changed(lease, ack.raw)

    # --- RENEWING / REBINDING ------------------------------------------------

    def _renew(self) -> None:
        self._begin_exchange(State.RENEWING)
        self._request_sent_at = self.clock.seconds()
        self._send_renew()

    def _send_renew(self) -> None:
        lease = self.lease
        payload = wire.encode(
            wire.REQUEST, self.xid, self.ident, secs=self._secs(), ciaddr=lease.address.ip
        )
        # Unicast to the server through the router that sent the ACK (fiber7's relay).
        # An ACK without a server id (a stored one) leaves nobody to unicast to.
        dst = wire.BROADCAST if lease.server in (None, wire.UNSPECIFIED) else lease.server
        self._send(wire.REQUEST, payload, lease.address.ip, dst, lease.server_mac)
        self._later(self._retransmit_delay(lease.rebind_at), self._send_renew)

    def _rebind(self) -> None:
        self._begin_exchange(State.REBINDING)
        self._request_sent_at = self.clock.seconds()
        self._send_rebind()

    def _send_rebind(self) -> None:
        lease = self.lease
        payload = wire.encode(
            wire.REQUEST, self.xid, self.ident, secs=self._secs(), ciaddr=lease.address.ip
        )
        self._send(wire.REQUEST, payload, lease.address.ip, wire.BROADCAST)
        self._later(self._retransmit_delay(lease.expires_at), self._send_rebind)

    def _retransmit_delay(self, deadline: datetime) -> float:
        # RFC 2131 §4.4.5: half the time left, but at least a minute. The next
        # state's timer (T2, expiry) cancels a retransmission scheduled past it.
        return max(self._delay_until(deadline) / 2, self.timing.min_retransmit)

    def _expire(self) -> None:
        lease = self.lease
        log.warning("lease of %s expired; keeping its files, looking for a server", lease.address)
        self._cancel_all()
        self.listener.lease_expired(lease)
        self._discover()

    # --- NAK -----------------------------------------------------------------------

    def _nak(self, msg: wire.Message) -> None:
        log.warning(
            "NAK from %s in %s%s",
            msg.server_id,
            self.state.value,
            f": {msg.message}" if msg.message else "",
        )
        self._cancel_all()
        self.lease = None  # the address is no longer ours; the files stay until a new ACK
        self._set_state(State.INIT)
        self._naks += 1
        if self._naks == 1:
            self._discover()
        else:  # a server that keeps refusing must not make us loop at wire speed
            self._later(self.backoff(self._naks - 2), self._discover)
