"""DHCPv4 server policy, driven by a task.Clock and scapy-built requests (no sockets)."""

from ipaddress import IPv4Address

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from twisted.internet.task import Clock

from router7.dhcp4d import wire
from router7.dhcp4d.config import Config
from router7.dhcp4d.leases import LeaseTable, StaticLease
from router7.dhcp4d.pool import Pool, PoolError
from router7.dhcp4d.server import Destination, Dhcp4Server, is_discover, triage

SERVER = IPv4Address("192.168.42.1")
BCAST = Destination(IPv4Address("255.255.255.255"), 68, b"\xff" * 6)
T0 = 1_700_000_000


def mac(n: int) -> bytes:
    return bytes([0x02, 0x73, 0x53, 0x00, n >> 8, n & 0xFF])


def macs(n: int) -> str:
    return ":".join(f"{b:02x}" for b in mac(n))


def packet(msg, n=1, xid=0x1234, flags=0, ciaddr="0.0.0.0", giaddr="0.0.0.0", chaddr=None, **opts):
    options = [("message-type", msg)] + list(opts.items()) + ["end"]
    return bytes(
        BOOTP(op=1, xid=xid, flags=flags, ciaddr=ciaddr, giaddr=giaddr, chaddr=chaddr or mac(n))
        / DHCP(options=options)
    )


class Harness:
    def __init__(self, cidr="192.168.42.1/24", config=None, start=None, end=None, statics=None):
        self.clock = Clock()
        self.clock.advance(T0)
        self.config = config or Config()
        pool = Pool.for_interface(cidr, start, end)
        self.table = LeaseTable(
            pool,
            statics or {},
            self.config.hostname_overrides,
            decline_hold=self.config.decline_time,
        )
        self.changes = 0
        self.server = Dhcp4Server(self.clock, self.table, self.config, on_change=self._changed)
        self.server.gate.interval = 0  # the new-client rate has tests of its own

    def _changed(self):
        self.changes += 1

    def send(self, msg, n=1, **kw):
        return self.server.handle_bytes(packet(msg, n, **kw))

    def dora(self, n=1, **opts):
        """DISCOVER + REQUEST; returns the ACKed address (or None when there was no offer)."""
        got = self.send("discover", n, **opts)
        if got is None:
            return None
        offer, _ = got
        assert offer.msg_type == wire.OFFER
        opts = {
            **opts,
            "requested_addr": str(offer.yiaddr),
            "server_id": str(self.server.server_ip),
        }
        reply, _ = self.send("request", n, **opts)
        assert reply.msg_type == wire.ACK, reply
        return reply.yiaddr

    def advance(self, seconds):
        self.clock.advance(seconds)


def u32(b):
    return int.from_bytes(b, "big")


def test_dora_grants_a_lease_with_lan_options():
    h = Harness()
    offer, dest = h.send("discover", param_req_list=[1, 3, 6, 15, 119], hostname=b"midna")
    assert offer.msg_type == wire.OFFER and offer.yiaddr in h.table.pool
    assert dest == Destination(offer.yiaddr, 68, mac(1))  # unicast to chaddr: no ARP yet
    ack, _ = h.send(
        "request",
        requested_addr=str(offer.yiaddr),
        server_id=str(SERVER),
        hostname=b"midna",
        param_req_list=[1, 3, 6, 15, 119],
    )
    assert ack.msg_type == wire.ACK and ack.yiaddr == offer.yiaddr
    assert [c for c, _ in ack.options] == [54, 51, 58, 59, 1, 3, 6, 15, 119]
    assert ack.option(54) == SERVER.packed and ack.option(3) == SERVER.packed
    assert ack.option(6) == SERVER.packed and ack.option(1) == IPv4Address("255.255.255.0").packed
    assert ack.option(15) == b"lan" and ack.option(119) == b"\x03lan\x00"
    assert u32(ack.option(51)) == 1200
    lease = h.table.lease_of(macs(1))
    assert lease.addr == ack.yiaddr and lease.hostname == "midna"
    assert lease.expiry == T0 + 1200 and lease.last_ack == T0
    assert h.changes == 1


def test_netmask_and_broadcast_come_from_the_real_prefix():
    h = Harness("10.0.0.1/23")
    offer, _ = h.send("discover")
    assert offer.option(1) == IPv4Address("255.255.254.0").packed
    assert offer.option(28) == IPv4Address("10.0.1.255").packed
    assert offer.yiaddr in h.table.pool.network


def test_pool_never_offers_network_broadcast_or_router_and_full_pool_is_counted():
    h = Harness("192.168.42.1/29")  # hosts .1-.6, .1 is the router
    got = {h.dora(n) for n in range(1, 6)}
    assert got == {IPv4Address(f"192.168.42.{i}") for i in range(2, 7)}
    assert h.send("discover", 6) is None
    assert h.server.stats.pool_exhausted == 1
    for bad in ("192.168.42.0", "192.168.42.7", "192.168.42.1"):
        reply, dest = h.send("request", 7, requested_addr=bad)
        assert reply.msg_type == wire.NAK and dest == BCAST


def test_router_inside_a_configured_range_is_skipped():
    h = Harness("192.168.42.5/24", start="192.168.42.4", end="192.168.42.6")
    assert {h.dora(1), h.dora(2)} == {IPv4Address("192.168.42.4"), IPv4Address("192.168.42.6")}
    assert h.send("discover", 3) is None
    assert h.table.pool.size == 2


def test_configured_range_outside_the_subnet_is_rejected():
    with pytest.raises(PoolError):
        Pool.for_interface("192.168.42.1/24", "192.168.43.10", "192.168.43.20")
    with pytest.raises(PoolError):
        Pool.for_interface("192.168.42.1/31")


def test_requested_address_is_honoured_when_free_only():
    h = Harness()
    offer, _ = h.send("discover", 1, requested_addr="192.168.42.77")
    assert offer.yiaddr == IPv4Address("192.168.42.77")
    assert h.dora(1, requested_addr="192.168.42.77") == IPv4Address("192.168.42.77")
    other, _ = h.send("discover", 2, requested_addr="192.168.42.77")
    assert other.yiaddr != IPv4Address("192.168.42.77")
    nak, _ = h.send("request", 2, requested_addr="192.168.42.77", server_id=str(SERVER))
    assert nak.msg_type == wire.NAK


def test_an_offer_reserves_its_address_only_while_there_is_another():
    h = Harness("192.168.42.1/29")
    offers = []
    for n in range(1, 6):
        offers.append(h.send("discover", n)[0].yiaddr)
        h.advance(1)
    assert len(set(offers)) == 5
    # Every address is on offer: the oldest offer is given away (issue 16, case 6).
    assert h.send("discover", 6)[0].yiaddr == offers[0]
    h.advance(31)  # offers lapse
    assert h.send("discover", 7) is not None


def test_client_gets_its_previous_address_back_after_expiry():
    h = Harness()
    first = h.dora(1)
    for n in range(2, 20):
        h.dora(n)
    h.advance(3 * 3600)
    assert h.table.lease_of(macs(1)).expired(h.clock.seconds())
    assert h.dora(1) == first


def test_expired_leases_are_reused_when_the_pool_is_full():
    h = Harness("192.168.42.1/29")
    for n in range(1, 6):
        h.dora(n)
    assert h.send("discover", 9) is None
    h.advance(1201)
    assert h.dora(9) in h.table.pool
    assert h.table.lease_of(macs(9)) is not None


def test_renewing_extends_the_lease_and_replies_by_unicast():
    h = Harness()
    addr = h.dora(1)
    h.advance(600)
    ack, dest = h.send("request", 1, ciaddr=str(addr))
    assert ack.msg_type == wire.ACK and ack.yiaddr == addr and ack.ciaddr == addr
    assert dest == Destination(addr, 68, None)  # UDP socket: the client answers ARP
    assert h.table.lease_of(macs(1)).expiry == T0 + 600 + 1200


def test_init_reboot_acks_a_free_address_and_naks_a_foreign_network():
    h = Harness()
    ack, _ = h.send("request", 1, requested_addr="192.168.42.50")
    assert ack.msg_type == wire.ACK and ack.yiaddr == IPv4Address("192.168.42.50")
    nak, dest = h.send("request", 2, requested_addr="10.1.2.3")
    assert nak.msg_type == wire.NAK and nak.yiaddr == IPv4Address(0) and dest == BCAST


def test_broadcast_flag_and_relay_destinations():
    h = Harness()
    _, dest = h.send("discover", 1, flags=wire.BROADCAST_FLAG)
    assert dest == BCAST
    offer, dest = h.send("discover", 2, giaddr="192.168.42.254")
    assert dest == Destination(IPv4Address("192.168.42.254"), 67, None)
    assert offer.giaddr == IPv4Address("192.168.42.254")
    assert h.send("discover", 3, giaddr="10.9.9.9") is None
    assert h.server.stats.ignored["foreign_relay"] == 1


def test_request_for_another_server_gets_no_reply_and_frees_the_offer():
    h = Harness("192.168.42.1/29")
    offers = [h.send("discover", n)[0].yiaddr for n in range(1, 6)]
    assert h.send("request", 1, requested_addr=str(offers[0]), server_id="192.168.42.200") is None
    assert h.server.stats.ignored["other_server"] == 1
    assert h.table.lease_of(macs(1)) is None
    assert h.send("discover", 6)[0].yiaddr == offers[0]  # the address is free again


def test_static_lease_by_mac():
    statics = {macs(7): StaticLease(IPv4Address("192.168.42.250"), "printer")}
    h = Harness(start="192.168.42.100", end="192.168.42.199", statics=statics)
    offer, _ = h.send("discover", 7, requested_addr="192.168.42.120")
    assert offer.yiaddr == IPv4Address("192.168.42.250")  # outside the range: fine
    assert h.dora(7, hostname=b"HP-123") == IPv4Address("192.168.42.250")
    lease = h.table.lease_of(macs(7))
    assert lease.static and lease.hostname == "printer"
    nak, _ = h.send("request", 7, requested_addr="192.168.42.120")
    assert nak.msg_type == wire.NAK  # a static client must use its own address
    nak, _ = h.send("request", 8, requested_addr="192.168.42.250")
    assert nak.msg_type == wire.NAK  # nobody else gets it
    h.advance(3 * 3600)
    assert not h.table.lease_of(macs(7)).expired(h.clock.seconds())


def test_nintendo_consoles_get_an_hour():
    h = Harness()
    offer, _ = h.server.handle_bytes(packet("discover", chaddr=bytes.fromhex("7cbb8a000001")))
    assert u32(offer.option(51)) == 3600
    offer, _ = h.send("discover", 1)
    assert u32(offer.option(51)) == 1200


def test_release_frees_the_address():
    h = Harness("192.168.42.1/29")
    addrs = [h.dora(n) for n in range(1, 6)]
    assert h.send("discover", 9) is None
    changes = h.changes
    assert h.send("release", 1, ciaddr=str(addrs[0]), server_id=str(SERVER)) is None
    assert h.changes == changes + 1
    assert h.table.lease_of(macs(1)).expired(h.clock.seconds())
    assert h.dora(9) == addrs[0]


def test_release_of_somebody_elses_address_is_ignored():
    h = Harness()
    addr = h.dora(1)
    h.send("release", 2, ciaddr=str(addr))
    assert not h.table.lease_of(macs(1)).expired(h.clock.seconds())
    assert h.server.stats.ignored["unknown_lease"] == 1


def test_decline_keeps_the_address_out_of_the_pool_for_a_while():
    h = Harness(config=Config(decline_time=600))
    addr = h.dora(1)
    assert h.send("decline", 1, requested_addr=str(addr), server_id=str(SERVER)) is None
    assert h.table.lease_of(macs(1)) is None
    assert h.send("discover", 1)[0].yiaddr != addr
    assert h.send("discover", 2, requested_addr=str(addr))[0].yiaddr != addr
    nak, _ = h.send("request", 3, requested_addr=str(addr))
    assert nak.msg_type == wire.NAK
    h.advance(601)
    assert h.send("discover", 2, requested_addr=str(addr))[0].yiaddr == addr


def test_inform_answers_configuration_without_a_lease():
    h = Harness()
    ack, dest = h.send("inform", 1, ciaddr="192.168.42.99", param_req_list=[6, 3])
    assert ack.msg_type == wire.ACK and ack.yiaddr == IPv4Address(0)
    assert ack.ciaddr == IPv4Address("192.168.42.99")
    assert ack.option(51) is None and [c for c, _ in ack.options] == [54, 6, 3]
    assert dest == Destination(IPv4Address("192.168.42.99"), 68, None)
    assert h.table.lease_of(macs(1)) is None


def test_hostnames_are_sanitized_and_owner_overrides_stick():
    h = Harness(config=Config(hostname_overrides={macs(2): "tv"}))
    h.dora(1, hostname="Jörg's iPhone.local".encode())
    assert h.table.lease_of(macs(1)).hostname == "j-rg-s-iphone"
    h.dora(2, hostname=b"android-1234")
    assert h.table.lease_of(macs(2)).hostname == "tv"
    assert h.table.set_hostname(macs(1), "Kitchen", h.clock.seconds()).hostname == "kitchen"
    h.dora(1, hostname=b"jorgs-iphone")
    lease = h.table.lease_of(macs(1))
    assert lease.hostname == "kitchen" and lease.hostname_override == "kitchen"


def test_renewal_without_hostname_keeps_the_old_one():
    h = Harness()
    addr = h.dora(1, hostname=b"midna")
    h.send("request", 1, ciaddr=str(addr))
    assert h.table.lease_of(macs(1)).hostname == "midna"


def test_moving_to_another_address_frees_the_old_one():
    h = Harness()
    old = h.dora(1)
    new = (
        IPv4Address("192.168.42.200")
        if old != IPv4Address("192.168.42.200")
        else IPv4Address("192.168.42.201")
    )
    assert h.dora(1, requested_addr=str(new)) == new
    assert h.table.leases.get(old) is None
    assert h.dora(2, requested_addr=str(old)) == old


def test_malformed_and_unexpected_packets_are_dropped_and_counted():
    h = Harness()
    assert h.server.handle_bytes(b"\x01" * 10) is None
    bad = bytearray(packet("discover"))
    bad[0] = 2  # a BOOTREPLY
    assert h.server.handle_bytes(bytes(bad)) is None
    assert h.send("offer", 1) is None
    assert h.send("request", 1) is None  # neither option 50 nor ciaddr
    stats = h.server.stats
    assert stats.dropped["not_dhcp"] == 1 and stats.dropped["not_request"] == 1
    assert stats.dropped["unexpected_type"] == 1 and stats.dropped["no_address"] == 1


def test_pool_of_the_whole_subnet_starts_after_the_router():
    pool = Pool.for_interface("192.168.42.1/24")
    assert (pool.start, pool.end, pool.size) == (
        IPv4Address("192.168.42.2"),
        IPv4Address("192.168.42.254"),
        253,
    )
    pool = Pool.for_interface("192.168.42.254/24")
    assert pool.end == IPv4Address("192.168.42.253") and pool.size == 253
    with pytest.raises(PoolError):
        Pool.for_interface("192.168.42.5/24", "192.168.42.5", "192.168.42.5")


def test_backlog_triage_answers_exchanges_under_way_before_new_ones():
    discovers = [packet("discover", n) for n in range(10)]
    requests = [packet("request", n, requested_addr="192.168.42.9") for n in range(3)]
    batch = discovers[:5] + requests + discovers[5:]
    assert triage(batch, 20) == (batch, 0)  # no backlog: untouched, in order
    kept, shed = triage(batch, 4)
    assert kept == requests + discovers[:4] and shed == 6
    # a DISCOVER whose option 53 is not first is never recognised, so never shed
    odd = bytes(
        BOOTP(op=1, chaddr=mac(1)) / DHCP(options=[("hostname", b"x"), ("message-type", 1), "end"])
    )
    assert not is_discover(odd) and is_discover(discovers[0])


def test_reconfigure_keeps_fitting_leases_and_drops_the_rest():
    h = Harness()
    kept = h.dora(1, requested_addr="192.168.42.20")
    h.dora(2, requested_addr="192.168.42.200")
    statics = {macs(3): StaticLease(IPv4Address("192.168.42.30"), "nas")}
    dropped = h.table.reconfigure(
        Pool.for_interface("192.168.42.1/24", "192.168.42.10", "192.168.42.99"), statics, {}
    )
    assert [d.addr for d in dropped] == [IPv4Address("192.168.42.200")]
    assert h.table.lease_of(macs(1)).addr == kept
    assert h.dora(3) == IPv4Address("192.168.42.30")
    # the static lease goes away with the config; the device keeps affinity to its address
    h.table.reconfigure(h.table.pool, {}, {})
    lease = h.table.lease_of(macs(3))
    assert not lease.static and lease.expired(h.clock.seconds())
    assert h.dora(3) == IPv4Address("192.168.42.30")


# --- a hostile LAN (issue 16, cases 4 and 6) ----------------------------------


def test_a_second_client_cannot_take_a_name_a_lease_holds():
    h = Harness()
    first = h.dora(1, hostname=b"lan1")
    h.dora(2, hostname=b"lan1")
    assert h.table.lease_of(macs(1)).hostname == "lan1"
    assert h.table.lease_of(macs(2)).hostname == ""
    assert first == h.table.lease_of(macs(1)).addr
    # Once the holder's lease has run out, the name is free again.
    h.advance(3 * 3600)
    h.dora(2, hostname=b"lan1")
    assert h.table.lease_of(macs(2)).hostname == "lan1"


def test_the_owner_override_wins_over_a_name_held_by_another_lease():
    h = Harness(config=Config(hostname_overrides={macs(2): "lan1"}))
    h.table.overrides = {macs(2): "lan1"}
    h.dora(1, hostname=b"lan1")
    h.dora(2, hostname=b"whatever")
    assert h.table.lease_of(macs(2)).hostname == "lan1"


def test_new_clients_are_rate_limited_when_the_pool_runs_low_known_ones_are_not():
    h = Harness("192.168.42.1/27")  # 29 addresses: low below 7.25 free
    h.server.gate.interval = 10.0
    got = [h.dora(n) for n in range(1, 40)]
    granted = [a for a in got if a is not None]
    assert len(granted) == 29 - 7 + 1  # one more once low, then the rate holds
    assert h.server.stats.ignored["new_client_rate"] > 0
    assert h.dora(1) == got[0]  # a known client renews whatever the pressure
    h.advance(10)
    assert h.dora(100) is not None  # the next new client after the interval


def test_a_full_pool_reclaims_the_lease_silent_longest_past_t1():
    h = Harness("192.168.42.1/29")
    for n in range(1, 6):
        h.dora(n)
        h.advance(1)
    assert h.send("discover", 9) is None  # full, and every lease is fresh
    h.advance(0.6 * 1200)
    for n in range(2, 6):  # the real clients renew at T1; client 1 is gone
        assert h.dora(n) is not None
    stolen = h.table.lease_of(macs(1)).addr
    assert h.dora(9) == stolen
