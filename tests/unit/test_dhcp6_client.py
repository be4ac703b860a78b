"""The DHCPv6 client state machine, driven by task.Clock with fiber7's recorded replies."""

from __future__ import annotations

import random
from datetime import timedelta
from ipaddress import IPv6Address, IPv6Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from scapy.layers import dhcp6 as s
from scapy.packet import Raw
from twisted.internet import task

from router7.dhcp6 import wire
from router7.dhcp6.client import (
    REQ_MAX_RC,
    SOL_MAX_RT,
    ClientConfig,
    Dhcp6Machine,
    State,
    Transmit,
)
from router7.dhcp6.lease import to_datetime
from router7.dhcp6.metrics import MetricsListener
from tests.helpers import captures

# The client id fiber7 echoed in the capture (DUID "type 10"); used as our DUID so the
# recorded replies need only their transaction ids rewritten.
FIBER7_DUID = bytes.fromhex("000a000300014c5e0c43bf39")
FIBER7_SERVER = bytes.fromhex("00010001") + bytes.fromhex("22439e23525400faac14")
FIBER7_PREFIX = IPv6Network("2a02:168:4a00::/48")
FIBER7_UNICAST = IPv6Address("2001:1620:2777:19:1::5")
SERVER_LL = "fe80::224:14ff:feef:72ff%uplink0"
OTHER_SERVER = b"\x00\x03\x00\x01\x02\x00\x00\x00\x00\x02"
START = 1_700_000_000  # reactor time of the tests, a realistic epoch


def with_tid(packet: bytes, tid: int) -> bytes:
    """The recorded server message answering our transaction ``tid``."""
    return packet[:1] + tid.to_bytes(3, "big") + packet[4:]


def server_msg(
    cls,
    tid: int,
    *,
    client_id: bytes = FIBER7_DUID,
    server_id: bytes = OTHER_SERVER,
    prefixes=(("2001:db8:100::/48", 3600, 7200),),
    t1: int = 1000,
    t2: int = 1600,
    pd_status: int | None = None,
    preference: int | None = None,
    unicast: str | None = None,
    status: int | None = None,
    rapid_commit: bool = False,
    dns=("2001:db8::53",),
) -> bytes:
    """A server message built with scapy, for what the capture does not contain."""
    pkt = (
        cls(trid=tid)
        / s.DHCP6OptClientId(duid=Raw(client_id))
        / s.DHCP6OptServerId(duid=Raw(server_id))
    )
    subs = [
        s.DHCP6OptIAPrefix(
            preflft=p,
            validlft=v,
            plen=IPv6Network(n).prefixlen,
            prefix=str(IPv6Network(n).network_address),
        )
        for n, p, v in prefixes
    ]
    if pd_status is not None:
        subs.append(s.DHCP6OptStatusCode(statuscode=pd_status, statusmsg=b"status\x00"))
    pkt /= s.DHCP6OptIA_PD(iaid=1, T1=t1, T2=t2, iapdopt=subs)
    if preference is not None:
        pkt /= s.DHCP6OptPref(prefval=preference)
    if unicast:
        pkt /= s.DHCP6OptServerUnicast(srvaddr=unicast)
    if status is not None:
        pkt /= s.DHCP6OptStatusCode(statuscode=status)
    if rapid_commit:
        pkt /= s.DHCP6OptRapidCommit()
    if dns:
        pkt /= s.DHCP6OptDNSServers(dnsservers=list(dns))
    return bytes(pkt)


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Harness(MetricsListener):
    """A client on a task.Clock that records what it sends and the leases it reports;
    the service's metrics edge counts the core's events, as in the service."""

    def __init__(self, lease=None, seed: int = 7, **config):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.sent: list[tuple[float, bytes, IPv6Address | None]] = []
        self.leases = []
        self.send_ok = True
        cfg = ClientConfig(duid=FIBER7_DUID, iaid_na=0x0C43BF39, **config)
        self.client = Dhcp6Machine(cfg, self.clock, self, rng=random.Random(seed), lease=lease)

    def send(self, tx: Transmit) -> bool:
        if tx.unicast is not None and not self.send_ok:
            return False
        self.sent.append((self.clock.seconds(), tx.payload, tx.unicast))
        self.count_sent(tx)
        return True

    def lease_changed(self, lease) -> None:
        super().lease_changed(lease)
        self.leases.append(lease)

    def last(self):
        """The last message sent, parsed by scapy (independently of our decoder)."""
        return s._dhcp6_dispatcher(self.sent[-1][1])

    def tid(self) -> int:
        return int.from_bytes(self.sent[-1][1][1:4], "big")

    def types(self) -> list[int]:
        return [data[0] for _, data, _ in self.sent]

    def feed(self, data: bytes, source: str = SERVER_LL) -> None:
        self.client.datagram_received(data, source)

    def advance_until_sent(self, limit: float = 10_000) -> None:
        n = len(self.sent)
        waited = 0.0
        while len(self.sent) == n:
            assert waited < limit, "nothing sent"
            self.clock.advance(0.5)
            waited += 0.5

    def bind_fiber7(self) -> None:
        """Solicit, the recorded Advertise, Request, the recorded Reply."""
        adv, reply = captures.dhcp6_payloads()
        self.client.start()
        self.advance_until_sent()
        self.feed(with_tid(adv, self.tid()))
        self.advance_until_sent()  # the first RT passes, then the Request goes out
        assert self.types()[-1] == wire.REQUEST
        self.feed(with_tid(reply, self.tid()))
        assert self.client.state is State.BOUND


def test_fiber7_exchange_yields_the_expected_lease():
    h = Harness()
    h.bind_fiber7()
    assert h.types() == [wire.SOLICIT, wire.REQUEST]
    solicit = s._dhcp6_dispatcher(h.sent[0][1])
    assert bytes(solicit[s.DHCP6OptClientId].duid) == FIBER7_DUID  # type 10, verbatim
    assert solicit[s.DHCP6OptOptReq].reqopts == [23, 24]
    assert solicit[s.DHCP6OptIA_NA].iaid == 0x0C43BF39
    assert solicit[s.DHCP6OptIA_PD].iaid == 1
    request = h.last()
    assert bytes(request[s.DHCP6OptServerId].duid) == FIBER7_SERVER
    assert request[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"
    assert request[s.DHCP6OptIA_NA].ianaopts[0].addr == "2a02:168:2000:5:add7:17aa:9163:8ef3"
    assert h.sent[1][2] is None  # the Request is multicast

    (lease,) = h.leases
    (prefix,) = lease.prefixes
    assert prefix.network == FIBER7_PREFIX
    assert (prefix.preferred_lifetime, prefix.valid_lifetime) == (3600, 86400)
    assert (lease.t1, lease.t2) == (1200, 1800)
    assert lease.renew_at - lease.obtained_at == timedelta(minutes=20)
    assert lease.valid_until - lease.obtained_at == timedelta(days=1)
    assert [a.network.network_address for a in lease.addresses] == [
        IPv6Address("2a02:168:2000:5:add7:17aa:9163:8ef3")
    ]
    assert lease.dns == (IPv6Address("2001:1620:2777:1::10"), IPv6Address("2001:1620:2777:2::20"))
    assert lease.server_unicast == FIBER7_UNICAST
    assert lease.server_duid == FIBER7_SERVER
    assert lease.server_address == SERVER_LL
    assert lease.client_duid == FIBER7_DUID
    assert metric("dhcp6_prefix_valid_until_seconds") == prefix.valid_until.timestamp()
    assert START + 86400 <= prefix.valid_until.timestamp() <= START + 86400 + 5
    assert metric("dhcp6_state", dhcp6_state="bound") == 1


def test_pd_only_sends_no_ia_na():
    h = Harness(pd_only=True)
    h.client.start()
    h.advance_until_sent()
    assert not h.last().haslayer(s.DHCP6OptIA_NA)
    assert h.last().haslayer(s.DHCP6OptIA_PD)


def test_advertises_of_the_first_rt_are_chosen_by_preference():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    tid = h.tid()
    h.feed(server_msg(s.DHCP6_Advertise, tid, server_id=b"\x00\x03\x00\x01low000", preference=10))
    h.feed(server_msg(s.DHCP6_Advertise, tid, server_id=b"\x00\x03\x00\x01high00", preference=20))
    h.feed(server_msg(s.DHCP6_Advertise, tid, server_id=b"\x00\x03\x00\x01tie000", preference=20))
    assert h.types() == [wire.SOLICIT]  # still collecting during the first RT
    h.advance_until_sent()
    assert h.types() == [wire.SOLICIT, wire.REQUEST]
    assert bytes(h.last()[s.DHCP6OptServerId].duid) == b"\x00\x03\x00\x01high00"


def test_preference_255_is_taken_at_once():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Advertise, h.tid(), preference=255))
    assert h.types() == [wire.SOLICIT, wire.REQUEST]


def test_after_the_first_rt_the_first_advertise_is_taken():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    h.advance_until_sent()  # a retransmitted Solicit: the first RT passed unanswered
    assert h.types() == [wire.SOLICIT, wire.SOLICIT]
    h.feed(server_msg(s.DHCP6_Advertise, h.tid(), preference=0))
    assert h.types()[-1] == wire.REQUEST


def test_advertise_without_bindings_is_ignored():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    before = metric("dhcp6_packets_dropped_total", reason="no_bindings")
    h.feed(
        server_msg(
            s.DHCP6_Advertise, h.tid(), prefixes=(), pd_status=wire.NO_PREFIX_AVAIL, preference=255
        )
    )
    assert h.types() == [wire.SOLICIT]
    assert metric("dhcp6_packets_dropped_total", reason="no_bindings") == before + 1


def test_rapid_commit_reply_to_solicit_binds():
    h = Harness(rapid_commit=True)
    h.client.start()
    h.advance_until_sent()
    assert h.last().haslayer(s.DHCP6OptRapidCommit)
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), rapid_commit=True))
    assert h.client.state is State.BOUND
    assert h.leases[-1].prefixes[0].network == IPv6Network("2001:db8:100::/48")
    assert h.types() == [wire.SOLICIT]


def test_reply_to_solicit_without_rapid_commit_is_dropped():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    before = metric("dhcp6_packets_dropped_total", reason="unexpected_type")
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), rapid_commit=True))
    assert h.client.state is State.SOLICIT
    assert metric("dhcp6_packets_dropped_total", reason="unexpected_type") == before + 1


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda tid: server_msg(s.DHCP6_Advertise, tid ^ 1), "tid_mismatch"),
        (
            lambda tid: server_msg(s.DHCP6_Advertise, tid, client_id=b"\x00\x03\x00\x01other0"),
            "client_id_mismatch",
        ),
        (
            lambda tid: bytes(
                s.DHCP6_Advertise(trid=tid) / s.DHCP6OptClientId(duid=Raw(FIBER7_DUID))
            ),
            "no_server_id",
        ),
        (lambda tid: server_msg(s.DHCP6_Reconf, tid), "unexpected_type"),
        (lambda tid: b"\x02\x00", "too_short"),
    ],
)
def test_invalid_messages_are_dropped_and_counted(mangle, reason):
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    before = metric("dhcp6_packets_dropped_total", reason=reason)
    h.feed(mangle(h.tid()))
    h.advance_until_sent()
    assert h.types() == [wire.SOLICIT, wire.SOLICIT]  # nothing was accepted
    assert metric("dhcp6_packets_dropped_total", reason=reason) == before + 1


def test_renew_at_t1_unicast_to_server_unicast_then_multicast():
    h = Harness()
    h.bind_fiber7()
    bound_at = h.clock.seconds()
    h.advance_until_sent()
    t, data, dest = h.sent[-1]
    assert data[0] == wire.RENEW
    assert t - bound_at == pytest.approx(1200, abs=0.5)
    assert dest == FIBER7_UNICAST  # the server sent Server Unicast
    renew = h.last()
    assert bytes(renew[s.DHCP6OptServerId].duid) == FIBER7_SERVER
    assert renew[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"
    h.advance_until_sent()
    assert h.sent[-1][2] is None  # the retransmission goes by multicast
    _, reply = captures.dhcp6_payloads()
    h.feed(with_tid(reply, h.tid()))
    assert h.client.state is State.BOUND
    assert len(h.leases) == 2
    assert h.leases[-1].obtained_at > h.leases[0].obtained_at
    assert h.leases[-1].renew_at == h.leases[-1].obtained_at + timedelta(seconds=1200)


def test_unicast_send_failure_falls_back_to_multicast():
    h = Harness()
    h.bind_fiber7()
    h.send_ok = False  # e.g. no global source address on the uplink yet
    h.advance_until_sent()
    assert h.types()[-1] == wire.RENEW
    assert h.sent[-1][2] is None


def test_renew_without_server_unicast_is_multicast_and_use_multicast_is_honoured():
    h = Harness(rapid_commit=True)
    h.client.start()
    h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), rapid_commit=True))
    h.advance_until_sent()
    assert h.types()[-1] == wire.RENEW
    assert h.sent[-1][2] is None


def test_use_multicast_status_resends_by_multicast():
    h = Harness(rapid_commit=True)
    h.client.start()
    h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), rapid_commit=True, unicast="2001:db8::547"))
    h.advance_until_sent()
    assert h.sent[-1][2] == IPv6Address("2001:db8::547")
    n = len(h.sent)
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), status=wire.USE_MULTICAST, prefixes=()))
    assert len(h.sent) == n + 1
    assert h.sent[-1][1][0] == wire.RENEW and h.sent[-1][2] is None


def test_rebind_at_t2_and_solicit_after_valid_lifetime_keeps_lease():
    h = Harness()
    h.bind_fiber7()
    lease = h.leases[-1]
    bound_at = h.clock.seconds()
    # No answers from here on.
    while h.types()[-1] != wire.REBIND:
        h.advance_until_sent()
    t_rebind = h.sent[-1][0]
    assert t_rebind - bound_at == pytest.approx(1800, abs=1)
    renews = [t for t, d, _ in h.sent if d[0] == wire.RENEW]
    assert all(bound_at + 1200 <= t < bound_at + 1800 for t in renews)
    assert not h.last().haslayer(s.DHCP6OptServerId)  # Rebind goes to any server
    assert h.last()[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"
    while h.types()[-1] != wire.SOLICIT:
        h.advance_until_sent()
    assert h.sent[-1][0] >= bound_at + 86400
    rebinds = [t for t, d, _ in h.sent if d[0] == wire.REBIND]
    assert max(rebinds) < bound_at + 86400
    # Intervals never exceed REB_MAX_RT (600 s) plus jitter.
    assert max(b - a for a, b in zip(rebinds, rebinds[1:], strict=False)) <= 660
    # Connectivity first: the lease is still held (and nothing asked to drop it).
    assert h.client.lease is lease
    assert len(h.leases) == 1
    # The Solicit hints at the prefix we had.
    assert h.last()[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"


def test_rebind_reply_from_another_server_binds():
    h = Harness()
    h.bind_fiber7()
    while h.types()[-1] != wire.REBIND:
        h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(("2a02:168:4a00::/48", 3600, 86400),)))
    assert h.client.state is State.BOUND
    assert h.leases[-1].server_duid == OTHER_SERVER
    assert h.leases[-1].previous_prefixes == ()


def test_no_binding_on_renew_resolicits_and_records_previous_prefix():
    h = Harness()
    h.bind_fiber7()
    old = h.leases[-1].prefixes[0]
    h.advance_until_sent()
    assert h.types()[-1] == wire.RENEW
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(), pd_status=wire.NO_BINDING))
    assert h.client.state is State.SOLICIT
    h.advance_until_sent()
    assert h.types()[-1] == wire.SOLICIT
    h.feed(
        server_msg(
            s.DHCP6_Advertise,
            h.tid(),
            preference=255,
            prefixes=(("2a02:168:4b00::/48", 3600, 86400),),
        )
    )
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(("2a02:168:4b00::/48", 3600, 86400),)))
    lease = h.leases[-1]
    assert [p.network for p in lease.prefixes] == [IPv6Network("2a02:168:4b00::/48")]
    (prev,) = lease.previous_prefixes
    assert prev.prefix == FIBER7_PREFIX
    assert prev.valid_until == old.valid_until
    assert prev.preferred_until == old.preferred_until
    # Once the old prefix's valid lifetime is over, the next lease drops it.
    renewals = 0
    while h.clock.seconds() <= prev.valid_until.timestamp():
        h.advance_until_sent()
        assert h.types()[-1] == wire.RENEW
        h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(("2a02:168:4b00::/48", 3600, 86400),)))
        renewals += 1
        if h.clock.seconds() <= prev.valid_until.timestamp():
            assert [p.prefix for p in h.leases[-1].previous_prefixes] == [FIBER7_PREFIX]
    assert renewals > 10
    assert h.leases[-1].previous_prefixes == ()


def test_renew_reply_replacing_the_prefix_records_previous_prefix():
    h = Harness()
    h.bind_fiber7()
    h.advance_until_sent()
    h.feed(
        server_msg(
            s.DHCP6_Reply,
            h.tid(),
            server_id=FIBER7_SERVER,
            prefixes=(("2a02:168:4a00::/48", 0, 0), ("2a02:168:4c00::/48", 3600, 86400)),
        )
    )
    lease = h.leases[-1]
    assert [p.network for p in lease.prefixes] == [IPv6Network("2a02:168:4c00::/48")]
    assert [p.prefix for p in lease.previous_prefixes] == [FIBER7_PREFIX]
    # the IA_NA address was not mentioned: it is kept with its remaining lifetime
    assert lease.addresses[0].valid_until == h.leases[0].addresses[0].valid_until
    assert lease.addresses[0].valid_lifetime == 86400 - 1200


def test_zero_t1_t2_are_derived_from_the_preferred_lifetime():
    h = Harness(rapid_commit=True)
    h.client.start()
    h.advance_until_sent()
    h.feed(
        server_msg(
            s.DHCP6_Reply,
            h.tid(),
            rapid_commit=True,
            t1=0,
            t2=0,
            prefixes=(("2001:db8:1::/48", 1000, 2000),),
        )
    )
    lease = h.leases[-1]
    assert (lease.t1, lease.t2) == (500, 800)


def test_restart_with_valid_lease_rebinds_without_solicit():
    h = Harness()
    h.bind_fiber7()
    stored = h.leases[-1]
    h2 = Harness(lease=stored)
    h2.clock.advance(600)  # restarted ten minutes later
    h2.client.start()
    assert h2.types() == [wire.REBIND]  # at once: no Solicit, no delay
    assert h2.last()[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"
    _, reply = captures.dhcp6_payloads()
    h2.feed(with_tid(reply, h2.tid()))
    assert h2.client.state is State.BOUND
    assert h2.types() == [wire.REBIND]


def test_restart_with_expired_lease_solicits_with_a_hint():
    h = Harness()
    h.bind_fiber7()
    h2 = Harness(lease=h.leases[-1])
    h2.clock.advance(86400 + 100)
    h2.client.start()
    h2.advance_until_sent()
    assert h2.types() == [wire.SOLICIT]
    assert h2.last()[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"


def test_carrier_back_while_rebinding_rebinds_at_once_and_keeps_the_prefix():
    h = Harness()
    h.bind_fiber7()
    while h.types()[-1] != wire.REBIND:
        h.advance_until_sent()
    h.advance_until_sent()  # the second Rebind: the next one is 20 s or more away
    sent = len(h.sent)
    h.client.link_up()
    assert h.types()[sent:] == [wire.REBIND] and h.sent[-1][0] == h.clock.seconds()
    assert h.last()[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"
    _, reply = captures.dhcp6_payloads()
    h.feed(with_tid(reply, h.tid()))
    assert h.client.state is State.BOUND
    assert wire.SOLICIT not in h.types()[1:]  # only the very first exchange solicited


def test_carrier_back_while_bound_confirms_with_rebind():
    h = Harness()
    h.bind_fiber7()
    h.client.link_up()
    assert h.types()[-1] == wire.REBIND and h.client.state is State.REBIND


def test_carrier_back_after_the_lease_ran_out_solicits_with_a_hint():
    h = Harness()
    h.bind_fiber7()
    h.clock.advance(86400 + 100)
    h.client.link_up()
    h.advance_until_sent()
    assert h.types()[-1] == wire.SOLICIT
    assert h.last()[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"


def test_carrier_back_before_start_sends_nothing():
    h = Harness()
    h.client.link_up()
    h.clock.advance(100)
    assert h.sent == []


def test_release_sends_release_then_reports_done():
    h = Harness()
    h.bind_fiber7()
    done = []
    h.client.release(lambda: done.append(True))
    h.advance_until_sent()
    assert h.types()[-1] == wire.RELEASE
    release = h.last()
    assert bytes(release[s.DHCP6OptServerId].duid) == FIBER7_SERVER
    assert release[s.DHCP6OptIA_PD].iapdopt[0].prefix == "2a02:168:4a00::"
    assert not done
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), server_id=FIBER7_SERVER, prefixes=()))
    assert done == [True]
    assert h.client.state is State.STOPPED
    h.clock.advance(10_000)
    assert h.types()[-1] == wire.RELEASE  # and nothing after it


def test_unanswered_release_gives_up_after_rel_max_rc():
    h = Harness()
    h.bind_fiber7()
    done = []
    h.client.release(lambda: done.append(True))
    h.clock.pump([0.5] * 240)
    assert h.types().count(wire.RELEASE) == 4
    assert done == [True]


def test_solicit_retransmission_follows_rfc8415_bounds():
    h = Harness(seed=3, sol_max_rt=120)
    h.client.start()
    for _ in range(14):
        h.advance_until_sent()
    times = [t for t, _, _ in h.sent]
    assert START <= times[0] <= START + 1  # SOL_MAX_DELAY
    rts = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert 1.0 < rts[0] <= 1.1 + 0.5  # first RT strictly above SOL_TIMEOUT (0.5 s clock steps)
    for prev, rt in zip(rts, rts[1:], strict=False):
        if 2 * prev * 1.1 <= 120:  # doubling with +-10 % jitter
            assert 2 * prev * 0.9 - 0.5 <= rt <= 2 * prev * 1.1 + 0.5
        else:  # or SOL_MAX_RT with +-10 % jitter
            assert 120 * 0.9 - 0.5 <= rt <= 120 * 1.1 + 0.5
    assert max(rts) <= 120 * 1.1 + 0.5
    assert min(rts[-3:]) >= 120 * 0.9 - 0.5  # capped at SOL_MAX_RT
    # Elapsed Time counts hundredths of a second since the first Solicit, saturating.
    elapsed = [s._dhcp6_dispatcher(d)[s.DHCP6OptElapsedTime].elapsedtime for _, d, _ in h.sent]
    assert elapsed[0] == 0
    assert elapsed[1] == pytest.approx(rts[0] * 100, abs=1)
    assert elapsed[-1] == 0xFFFF
    assert len({int.from_bytes(d[1:4], "big") for _, d, _ in h.sent}) == 1  # one transaction
    assert SOL_MAX_RT == 3600  # the RFC default when not configured


def test_unanswered_request_gives_up_after_req_max_rc_and_solicits_again():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Advertise, h.tid(), preference=255))
    while h.types()[-1] != wire.SOLICIT or h.types().count(wire.REQUEST) == 0:
        h.advance_until_sent()
    assert h.types().count(wire.REQUEST) == REQ_MAX_RC
    requests = [t for t, d, _ in h.sent if d[0] == wire.REQUEST]
    assert max(b - a for a, b in zip(requests, requests[1:], strict=False)) <= 30 * 1.1 + 0.5


def test_failed_request_reply_backs_off_before_soliciting_again():
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Advertise, h.tid(), preference=255))
    t_request = h.sent[-1][0]
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(), pd_status=wire.NO_PREFIX_AVAIL))
    assert h.client.state is State.SOLICIT
    h.advance_until_sent()
    assert h.types()[-1] == wire.SOLICIT
    assert h.sent[-1][0] - t_request >= 2  # a hold-off, not a tight loop


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_fuzz_datagrams_are_dropped_and_counted_never_raise(data):
    adv, reply = captures.dhcp6_payloads()
    h = Harness()
    h.client.start()
    h.advance_until_sent()
    packet = bytearray(with_tid(data.draw(st.sampled_from([adv, reply])), h.tid()))
    for _ in range(data.draw(st.integers(0, 6))):
        i = data.draw(st.integers(0, len(packet) - 1))
        packet[i] = data.draw(st.integers(0, 255))
    packet = bytes(packet[: data.draw(st.integers(0, len(packet)))])
    if data.draw(st.booleans()):
        packet = data.draw(st.binary(max_size=300))
    dropped = sum(metric("dhcp6_packets_dropped_total", reason=r) for r in _REASONS)
    state = h.client.state
    h.feed(packet)
    after = sum(metric("dhcp6_packets_dropped_total", reason=r) for r in _REASONS)
    # Either counted as dropped, or a (still well-formed) Advertise was collected.
    assert after == dropped + 1 or (h.client.state is state and h.client._advertises)


_REASONS = [
    "too_short",
    "unknown_type",
    "relay_message",
    "malformed_option",
    "unexpected_type",
    "unexpected_state",
    "tid_mismatch",
    "client_id_mismatch",
    "no_server_id",
    "no_bindings",
]


def test_lease_times_are_whole_seconds_of_the_clock():
    assert to_datetime(START + 0.7).timestamp() == START


# --- forged or empty Replies (issue 16, case 3) -------------------------------


@pytest.mark.parametrize("pd_status", [wire.NO_PREFIX_AVAIL, None])
def test_a_renew_reply_without_usable_ia_keeps_retransmitting_then_rebinds(pd_status):
    h = Harness()
    h.bind_fiber7()
    lease = h.leases[-1]
    h.advance_until_sent()
    assert h.types()[-1] == wire.RENEW
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(), pd_status=pd_status))
    assert h.client.state is State.RENEW and len(h.leases) == 1
    while h.types()[-1] != wire.REBIND:
        h.advance_until_sent()
    h.feed(server_msg(s.DHCP6_Reply, h.tid(), prefixes=(), pd_status=pd_status))
    assert h.client.state is State.REBIND and h.client.lease is lease
    assert [p.network for p in h.client.lease.prefixes] == [FIBER7_PREFIX]
