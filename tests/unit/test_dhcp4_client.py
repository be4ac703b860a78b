"""The DHCPv4 client state machine, driven by task.Clock and fiber7's recorded replies."""

from __future__ import annotations

import functools
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv4Interface

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from twisted.internet import task

from router7.dhcp4 import wire
from router7.dhcp4.client import Dhcp4Core, Listener, State, Timing
from router7.dhcp4.lease import Lease, LeaseStore
from tests.helpers import captures

MAC = bytes.fromhex("d858d7004edf")  # the Turris Omnia of the capture
ROUTER_MAC = bytes.fromhex("002414ef72ff")  # the Cisco that relays fiber7's replies
T0 = 1_526_680_000.0  # 2018-05-18, around the capture


def fiber7():
    """The capture's OFFER and ACK as Ethernet frames (scapy packets)."""
    return _read_capture()


@functools.cache
def _read_capture():
    offer, ack = captures.frames(captures.DHCP4)
    return offer, ack


def reply(frame, xid: int, mac: bytes = MAC, **options) -> wire.Message:
    """A recorded reply rewritten for our client: xid, chaddr, and optionally options."""
    frame = frame.copy()
    frame[BOOTP].xid = xid
    frame[BOOTP].chaddr = mac + b"\x00" * 10
    if options:
        opts = [o for o in frame[DHCP].options if o not in ("end", "pad")]
        opts = [o for o in opts if o[0] not in options]
        frame[DHCP].options = opts + [(k, v) for k, v in options.items() if v is not None] + ["end"]
    del frame[IP].len, frame[IP].chksum, frame[IP].payload.len, frame[IP].payload.chksum
    frame = Ether(bytes(frame))
    return wire.decode_ipv4(bytes(frame[IP]), bytes.fromhex(frame.src.replace(":", "")))


class Recorder(Listener):
    def __init__(self, clock):
        self.clock = clock
        self.sent = []  # (time, Transmit, decoded scapy BOOTP)
        self.leases = []
        self.expired = []
        self.states = []
        self.drops = []

    def send(self, tx):
        self.sent.append((self.clock.seconds(), tx, BOOTP(tx.payload)))

    def lease_changed(self, lease, ack):
        self.leases.append((lease, ack))

    def lease_expired(self, lease):
        self.expired.append(lease)

    def state_changed(self, state):
        self.states.append(state)

    def dropped(self, reason, msg):
        self.drops.append(reason)

    def last(self):
        return self.sent[-1]

    def types(self):
        return [opts(b)["message-type"] for _, _, b in self.sent]


def opts(bootp) -> dict:
    return {o[0]: o[1] for o in bootp[DHCP].options if isinstance(o, tuple)}


def make(seed: int = 1, **timing):
    clock = task.Clock()
    clock.advance(T0)
    rec = Recorder(clock)
    core = Dhcp4Core(
        wire.Identity(MAC, "router7"), clock, rec, Timing(**timing), random.Random(seed)
    )
    return core, clock, rec


def bind(core, clock, rec):
    """DISCOVER → fiber7 OFFER → REQUEST → fiber7 ACK."""
    offer, ack = fiber7()
    core.start()
    core.receive(reply(offer, core.xid))
    core.receive(reply(ack, core.xid))
    assert core.state is State.BOUND
    return rec.leases[-1][0]


def run_for(clock, seconds: float) -> None:
    """Advance exactly to each timer in turn, so send times are exact."""
    end = clock.seconds() + seconds
    while True:
        due = [c.getTime() for c in clock.getDelayedCalls() if c.getTime() <= end]
        if not due:
            break
        clock.advance(max(0.0, min(due) - clock.seconds()))
    clock.advance(end - clock.seconds())


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


# --- the fiber7 exchange (reference §12.3) ------------------------------------


def test_discover_is_broadcast_with_client_id_hostname_and_prl():
    core, clock, rec = make()
    core.start()
    _, tx, bootp = rec.last()
    o = opts(bootp)
    assert tx.broadcast and tx.dst_mac == wire.BROADCAST_MAC and tx.src == wire.UNSPECIFIED
    assert o["message-type"] == wire.DISCOVER
    assert o["client_id"] == b"\x01" + MAC
    assert o["hostname"] == b"router7"
    assert o["param_req_list"] == [1, 3, 6, 15, 26, 28, 51, 54, 58, 59]
    assert "requested_addr" not in o  # nothing to ask for yet
    assert bootp.xid == core.xid and bootp.chaddr[:6] == MAC and bootp.flags == 0
    assert len(tx.payload) >= 300
    assert core.state is State.SELECTING


def test_fiber7_offer_and_ack_from_another_server_give_the_recorded_lease():
    offer, ack = fiber7()
    core, clock, rec = make()
    core.start()
    core.receive(reply(offer, core.xid))
    _, tx, req = rec.last()
    o = opts(req)
    assert o["message-type"] == wire.REQUEST and tx.broadcast
    assert o["server_id"] == "77.109.140.123"  # the OFFER's server
    assert o["requested_addr"] == "85.195.207.62"
    assert req.ciaddr == "0.0.0.0" and req.xid == core.xid
    assert core.state is State.REQUESTING

    core.receive(reply(ack, core.xid))  # ... answered by 213.144.129.5
    assert core.state is State.BOUND
    [(lease, raw)] = rec.leases
    assert lease.address == IPv4Interface("85.195.207.62/25")
    assert lease.router == IPv4Address("85.195.207.1")
    assert lease.dns == (IPv4Address("77.109.128.2"), IPv4Address("213.144.129.20"))
    assert lease.server == IPv4Address("213.144.129.5")
    assert lease.lease_time == 1608
    assert lease.obtained_at == at(0)
    assert lease.renew_at == at(0) + timedelta(minutes=13, seconds=24)  # 804 s
    assert lease.rebind_at == at(1407)  # 87.5 %
    assert lease.expires_at == at(1608)
    assert lease.server_mac == ROUTER_MAC
    assert wire.decode(raw).server_id == IPv4Address("213.144.129.5")
    assert rec.drops == []


def test_replies_for_someone_else_are_dropped():
    offer, ack = fiber7()
    core, clock, rec = make()
    core.start()
    core.receive(reply(offer, core.xid ^ 1))
    core.receive(reply(offer, core.xid, mac=b"\x02" * 6))
    core.receive(reply(ack, core.xid))  # an ACK while SELECTING
    assert rec.drops == ["xid", "chaddr", "unexpected"]
    assert core.state is State.SELECTING and rec.leases == []


# --- timers -----------------------------------------------------------------


def test_renew_at_t1_is_unicast_to_the_server_through_the_router_mac():
    offer, ack = fiber7()
    core, clock, rec = make()
    bind(core, clock, rec)
    sent = len(rec.sent)
    clock.advance(803)
    assert core.state is State.BOUND and len(rec.sent) == sent
    clock.advance(1)
    assert core.state is State.RENEWING
    _, tx, req = rec.last()
    o = opts(req)
    assert o["message-type"] == wire.REQUEST
    assert tx.dst == IPv4Address("213.144.129.5") and tx.dst_mac == ROUTER_MAC
    assert tx.src == IPv4Address("85.195.207.62") and req.ciaddr == "85.195.207.62"
    assert "server_id" not in o and "requested_addr" not in o  # RFC 2131 table 5

    core.receive(reply(ack, core.xid))
    assert core.state is State.BOUND and len(rec.leases) == 2
    assert rec.leases[-1][0].renew_at == at(804 + 804)


def test_t1_and_t2_options_win_over_the_defaults():
    offer, ack = fiber7()
    core, clock, rec = make()
    core.start()
    core.receive(reply(offer, core.xid))
    core.receive(reply(ack, core.xid, renewal_time=300, rebinding_time=1000))
    lease = rec.leases[-1][0]
    assert (lease.renew_at, lease.rebind_at, lease.expires_at) == (at(300), at(1000), at(1608))
    clock.advance(300)
    assert core.state is State.RENEWING
    clock.advance(700)
    assert core.state is State.REBINDING


def test_renewing_retransmits_half_the_remaining_time_then_rebinds_then_expires():
    core, clock, rec = make()
    lease = bind(core, clock, rec)
    first = len(rec.sent)
    run_for(clock, 1608)  # a silent server for the whole lease
    renews = [(t - T0, tx) for t, tx, _ in rec.sent[first:] if tx.dst == lease.server]
    times = [t for t, _ in renews]
    # T1 = 804, T2 = 1407: waits of half the remaining time (301.5, 150.75, 75.375),
    # then the 60 s floor; T2 cuts the last wait short.
    assert times == [804, 1105.5, 1256.25, 1331.625, 1391.625]
    rebinds = [(t - T0, b) for t, tx, b in rec.sent[first:] if tx.broadcast]
    # T2 = 1407, expiry = 1608: 100.5 s, then the 60 s floor; expiry cuts the next wait.
    assert [t for t, _ in rebinds][:3] == [1407, 1507.5, 1567.5]
    assert opts(rebinds[3][1])["message-type"] == wire.DISCOVER  # at 1608
    for _, b in rebinds[:3]:
        assert b.ciaddr == "85.195.207.62" and opts(b)["message-type"] == wire.REQUEST
    assert State.REBINDING in rec.states
    # At expiry: back to DISCOVER, asking for the old address; the lease is not forgotten.
    assert core.state is State.SELECTING
    assert rec.expired == [lease]
    assert core.lease == lease
    _, tx, b = rec.last()
    assert opts(b)["message-type"] == wire.DISCOVER
    assert opts(b)["requested_addr"] == "85.195.207.62"


def test_after_expiry_discover_keeps_going_and_recovers():
    offer, ack = fiber7()
    core, clock, rec = make()
    bind(core, clock, rec)
    run_for(clock, 1608 + 3600)  # an hour past expiry
    discovers = [t for t, _, b in rec.sent if opts(b)["message-type"] == wire.DISCOVER]
    assert len(discovers) > 3600 / 65  # still trying, at most ~64 s apart
    core.receive(reply(offer, core.xid))
    core.receive(reply(ack, core.xid))
    assert core.state is State.BOUND and len(rec.leases) == 2


@pytest.mark.parametrize("seed", range(5))
def test_selecting_backoff_doubles_from_4_to_64_seconds_with_jitter(seed):
    core, clock, rec = make(seed)
    core.start()
    run_for(clock, 600)
    times = [t for t, _, _ in rec.sent]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for gap, base in zip(gaps, [4, 8, 16, 32, 64, 64, 64], strict=False):
        assert base - 1 <= gap <= base + 1  # ±1 s jitter
    assert all(gap <= 65 for gap in gaps) and len(gaps) >= 10
    assert len(set(gaps)) == len(gaps)  # jittered, not lock-step
    assert len({b.xid for _, _, b in rec.sent}) == 1  # retransmissions keep the xid
    assert all(opts(b)["message-type"] == wire.DISCOVER for _, _, b in rec.sent)


def test_backoff_stays_bounded_after_days_of_silence():
    core, clock, rec = make()
    assert all(63 <= core.backoff(n) <= 65 for n in (5, 1023, 1024, 10**6))


def test_requesting_without_ack_starts_over():
    offer, _ = fiber7()
    core, clock, rec = make(request_attempts=3)
    core.start()
    xid = core.xid
    core.receive(reply(offer, xid))
    run_for(clock, 60)
    assert rec.types()[:5] == [
        wire.DISCOVER,
        wire.REQUEST,
        wire.REQUEST,
        wire.REQUEST,
        wire.DISCOVER,
    ]
    assert core.state is State.SELECTING and core.xid != xid


# --- NAK ----------------------------------------------------------------------


def nak(xid: int) -> wire.Message:
    offer, _ = fiber7()
    frame = offer.copy()
    frame[DHCP].options = [("message-type", "nak"), ("server_id", "213.144.129.5"), "end"]
    frame[BOOTP].yiaddr = "0.0.0.0"
    return reply(frame, xid)


def test_nak_while_requesting_restarts_with_discover():
    offer, _ = fiber7()
    core, clock, rec = make()
    core.start()
    core.receive(reply(offer, core.xid))
    core.receive(nak(core.xid))
    assert core.state is State.SELECTING and core.lease is None
    assert rec.types() == [wire.DISCOVER, wire.REQUEST, wire.DISCOVER]
    assert "requested_addr" not in opts(rec.last()[2])  # the NAKed address is forgotten


def test_nak_while_renewing_forgets_the_lease():
    core, clock, rec = make()
    bind(core, clock, rec)
    clock.advance(804)
    core.receive(nak(core.xid))
    assert core.state is State.SELECTING and core.lease is None
    assert rec.types()[-1] == wire.DISCOVER


def test_repeated_naks_back_off():
    offer, _ = fiber7()
    core, clock, rec = make()
    core.start()
    for _ in range(3):
        core.receive(reply(offer, core.xid))
        core.receive(nak(core.xid))
    # The second and third NAK delay the next DISCOVER instead of looping at once.
    assert core.state is State.INIT
    assert rec.types() == [wire.DISCOVER, wire.REQUEST, wire.DISCOVER, wire.REQUEST]
    clock.advance(9)
    assert rec.types()[-1] == wire.DISCOVER


# --- INIT-REBOOT ------------------------------------------------------------


def stored_lease(tmp_path) -> Lease:
    core, clock, rec = make()
    lease, raw = bind(core, clock, rec), rec.leases[-1][1]
    store = LeaseStore(tmp_path)
    store.save(lease, raw)
    return store.load()


def test_init_reboot_from_the_stored_lease_skips_discover(tmp_path):
    _, ack = fiber7()
    stored = stored_lease(tmp_path)
    core, clock, rec = make(seed=7)
    clock.advance(3600)  # a restart an hour later
    core.start(stored)
    assert core.state is State.REBOOTING
    _, tx, req = rec.last()
    o = opts(req)
    assert o["message-type"] == wire.REQUEST and tx.broadcast
    assert o["requested_addr"] == "85.195.207.62" and "server_id" not in o
    assert req.ciaddr == "0.0.0.0"
    core.receive(reply(ack, core.xid))
    assert core.state is State.BOUND
    assert rec.types() == [wire.REQUEST]  # no DISCOVER at all
    assert rec.leases[-1][0].renew_at == at(3600 + 804)


def test_init_reboot_without_answer_falls_back_to_discover_for_the_same_address(tmp_path):
    stored = stored_lease(tmp_path)
    core, clock, rec = make()
    core.start(stored)
    run_for(clock, 200)
    types = rec.types()
    assert types[:5] == [wire.REQUEST] * 5 and set(types[5:]) == {wire.DISCOVER}
    assert all(opts(b)["requested_addr"] == "85.195.207.62" for _, _, b in rec.sent)
    assert core.lease == stored  # still known; LeaseStore files are untouched by the core
    assert (tmp_path / "dhcp4/wire/lease.json").exists()


# --- carrier back (RFC 2131 §3.7) ----------------------------------------------


def test_carrier_back_while_rebinding_confirms_the_lease_with_init_reboot_at_once():
    _, ack = fiber7()
    core, clock, rec = make()
    lease = bind(core, clock, rec)
    run_for(clock, 1407 + 1)  # past T2: rebinding, the next REQUEST 100 s away
    assert core.state is State.REBINDING
    first = len(rec.sent)
    core.link_up()
    assert core.state is State.REBOOTING
    t, tx, req = rec.sent[first]
    o = opts(req)
    assert t == clock.seconds() and tx.broadcast
    assert o["message-type"] == wire.REQUEST and o["requested_addr"] == "85.195.207.62"
    assert "server_id" not in o and req.ciaddr == "0.0.0.0"
    core.receive(reply(ack, core.xid))
    assert core.state is State.BOUND and rec.leases[-1][0].address == lease.address
    assert wire.DISCOVER not in rec.types()[1:]  # only the very first exchange discovered


def test_carrier_back_without_answer_still_ends_the_lease_when_it_ends():
    core, clock, rec = make()
    lease = bind(core, clock, rec)
    run_for(clock, 1500)
    core.link_up()
    run_for(clock, 108 + 1)  # the lease ends at 1608
    assert rec.expired == [lease]
    assert core.state is State.SELECTING


def test_carrier_back_after_the_lease_ended_discovers_at_once():
    core, clock, rec = make()
    bind(core, clock, rec)
    run_for(clock, 1608 + 30)  # expired, SELECTING, the next DISCOVER up to 64 s away
    first = len(rec.sent)
    core.link_up()
    t, _, b = rec.sent[first]
    assert t == clock.seconds() and opts(b)["message-type"] == wire.DISCOVER
    assert opts(b)["requested_addr"] == "85.195.207.62"


def test_carrier_back_before_start_or_after_release_sends_nothing():
    core, clock, rec = make()
    core.link_up()
    bind(core, clock, rec)
    core.release()
    sent = len(rec.sent)
    core.link_up()
    assert len(rec.sent) == sent and core.state is State.RELEASED


# --- RELEASE ----------------------------------------------------------------


def test_release_is_unicast_with_ciaddr_and_server_id_and_stops_all_timers():
    core, clock, rec = make()
    lease = bind(core, clock, rec)
    xid = core.xid
    tx = core.release()
    b = BOOTP(tx.payload)
    o = opts(b)
    assert o["message-type"] == wire.RELEASE and o["server_id"] == "213.144.129.5"
    assert o["client_id"] == b"\x01" + MAC
    assert b.ciaddr == "85.195.207.62" and b.xid != xid
    assert tx.dst == lease.server and tx.dst_mac == ROUTER_MAC and tx.src == lease.address.ip
    assert core.state is State.RELEASED and clock.getDelayedCalls() == []


def test_release_without_lease_sends_nothing():
    core, clock, rec = make()
    core.start()
    assert core.release() is None
    assert rec.types() == [wire.DISCOVER] and clock.getDelayedCalls() == []


# --- property: whatever the server does, the client never gets stuck ----------------


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["offer", "ack", "nak", "ack_t1t2", "stale_ack", "wait"]),
        st.integers(0, 2500),
    ),
    max_size=25,
)


@functools.cache
def reply_templates() -> dict[str, wire.Message]:
    offer, ack = fiber7()
    return {
        "offer": reply(offer, 0),
        "ack": reply(ack, 0),
        "nak": nak(0),
        "ack_t1t2": reply(ack, 0, renewal_time=100, rebinding_time=200),
    }


@settings(max_examples=150, deadline=None)
@given(events=EVENTS, stored=st.booleans())
def test_any_sequence_of_replies_and_silences_keeps_the_client_going(events, stored):
    fiber7()  # skips without the capture
    templates = reply_templates()
    core, clock, rec = make()
    lease0 = None
    if stored:
        lease0 = Lease.from_ack(templates["ack"], at(-5000))
    core.start(lease0)
    for kind, n in events:
        if kind == "wait":
            run_for(clock, n)
        elif kind == "stale_ack":
            core.receive(replace(templates["ack"], xid=(core.xid + 1) % 2**32))
        else:
            core.receive(replace(templates[kind], xid=core.xid))
        # Something is always scheduled: a retransmission, a restart or a lease timer.
        assert clock.getDelayedCalls(), core.state
        if core.state in (State.BOUND, State.RENEWING, State.REBINDING):
            assert core.lease is not None
            assert len([c for c in clock.getDelayedCalls() if c.active()]) >= 1
    # Only DISCOVER and REQUEST went out, and retransmissions of one message are at
    # least 1 s apart (an answer moves on at once, and so does a first NAK).
    repeats: dict[tuple, list[float]] = {}
    for t, _, b in rec.sent:
        assert opts(b)["message-type"] in (wire.DISCOVER, wire.REQUEST)
        repeats.setdefault((b.xid, opts(b)["message-type"]), []).append(t)
    for times in repeats.values():
        assert all(b - a >= 1 for a, b in zip(times, times[1:], strict=False))


# --- forged replies (issue 16, case 3) ----------------------------------------


def test_a_forged_ack_without_router_and_with_a_host_mask_keeps_the_lease():
    _, ack = fiber7()
    core, clock, rec = make()
    held = bind(core, clock, rec)
    clock.advance(804)  # RENEWING
    forged = reply(ack, core.xid, router=None, subnet_mask="255.255.255.255", server_id="10.6.6.6")
    core.receive(forged)
    assert core.state is State.RENEWING and core.lease == held
    assert rec.drops[-1] == "degraded" and len(rec.leases) == 1
    # Still a router but a /32 instead of the held subnet: degraded too.
    core.receive(reply(ack, core.xid, subnet_mask="255.255.255.255"))
    assert rec.drops[-1] == "degraded" and core.lease == held
    # The real server's ACK still renews.
    core.receive(reply(ack, core.xid))
    assert core.state is State.BOUND and len(rec.leases) == 2


def test_a_nak_from_another_server_while_renewing_or_rebinding_is_ignored():
    core, clock, rec = make()
    held = bind(core, clock, rec)
    clock.advance(804)
    forged = nak(core.xid)
    forged = replace(forged, server_id=IPv4Address("10.6.6.6"))
    core.receive(forged)
    assert core.state is State.RENEWING and core.lease == held
    assert rec.drops[-1] == "foreign_nak"
    run_for(clock, held.rebind_at.timestamp() - clock.seconds() + 1)
    assert core.state is State.REBINDING
    core.receive(replace(nak(core.xid), server_id=IPv4Address("10.6.6.6")))
    assert core.state is State.REBINDING and rec.drops[-1] == "foreign_nak"
    # The lease's own server may still take it back.
    core.receive(replace(nak(core.xid), server_id=held.server))
    assert core.state is State.SELECTING and core.lease is None


def test_without_a_held_lease_any_ack_is_taken():
    offer, ack = fiber7()
    core, clock, rec = make()
    core.start()
    core.receive(reply(offer, core.xid))
    core.receive(reply(ack, core.xid, router=None))
    assert core.state is State.BOUND and core.lease.router is None


def test_after_the_held_lease_expired_a_lesser_ack_is_taken():
    _, ack = fiber7()
    core, clock, rec = make()
    held = bind(core, clock, rec)
    run_for(clock, held.expires_at.timestamp() - clock.seconds() + 1)
    assert core.state is State.SELECTING
    offer, _ = fiber7()
    core.receive(reply(offer, core.xid))
    core.receive(reply(ack, core.xid, router=None))
    assert core.state is State.BOUND and core.lease.router is None
