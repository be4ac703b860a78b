"""Every parser that takes bytes from the network or a file, as a fuzz target.

A target takes one input (bytes) and returns normally, or raises the parser's own
documented error (MalformedPacket, StateFileError, ...): those are swallowed here.
Anything else escaping is a bug: the short run in CI (test_fuzz.py, hypothesis) and
the long run (run.py, atheris when installed) report it, and every crash found is
kept under crashes/<target>/ as a regression case that test_fuzz.py replays.

TFTP belongs to the recover helper's module and is not here.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

from router7.captured import pcapng
from router7.captured.ring import Packet
from router7.dhcp4 import lease as dhcp4_lease
from router7.dhcp4 import wire as dhcp4_wire
from router7.dhcp4d import store as dhcp4d_store
from router7.dhcp4d import wire as dhcp4d_wire
from router7.dhcp6 import lease as dhcp6_lease
from router7.dhcp6 import wire as dhcp6_wire
from router7.dnsd import upstreams as dnsd_upstreams
from router7.dnsd import wire as dns_wire
from router7.netconfigd import config as netconfigd_config
from router7.radvd import wire as radvd_wire
from router7.runtime.statefile import StateFileError, validate


def dhcp4_client(data: bytes) -> None:
    """An IPv4 datagram read by the uplink client's packet socket."""
    try:
        msg = dhcp4_wire.decode_ipv4(data, b"\x02" * 6)
    except (dhcp4_wire.MalformedPacket, dhcp4_wire.NotForUs):
        return
    # What the client does with a decoded ACK must not fail either.
    if msg.yiaddr != dhcp4_wire.UNSPECIFIED:
        from datetime import UTC, datetime

        dhcp4_lease.Lease.from_ack(msg, datetime(2026, 1, 1, tzinfo=UTC)).to_json()


def dhcp4_server(data: bytes) -> None:
    """A BOOTP payload received by dhcp4d on lan0, through its whole request handling."""
    try:
        dhcp4d_wire.decode(data)
    except dhcp4d_wire.Malformed:
        return
    _dhcp4d_server().handle_bytes(data)


_SERVER = []


def _dhcp4d_server():
    if not _SERVER:
        from twisted.internet.task import Clock

        from router7.dhcp4d.config import Config
        from router7.dhcp4d.leases import LeaseTable
        from router7.dhcp4d.pool import Pool
        from router7.dhcp4d.server import Dhcp4Server

        clock = Clock()
        clock.advance(1_700_000_000)
        table = LeaseTable(Pool.for_interface("192.168.42.1/28"))
        _SERVER.append(Dhcp4Server(clock, table, Config()))
    return _SERVER[0]


def dhcp6(data: bytes) -> None:
    """A UDP payload received by the DHCPv6 client."""
    try:
        dhcp6_wire.decode(data)
    except dhcp6_wire.DecodeError:
        return


def dns_query(data: bytes) -> None:
    """A query from a LAN client."""
    try:
        dns_wire.parse_query(data)
    except dns_wire.Malformed:
        return


def dns_answer(data: bytes) -> None:
    """An answer from an upstream resolver (and the cache's use of it)."""
    try:
        answer = dns_wire.parse_answer(data)
    except dns_wire.Malformed:
        return
    from router7.dnsd.cache import make_entry

    make_entry(answer, 0.0).render(1.0)


def router_solicitation(data: bytes) -> None:
    """An ICMPv6 message on radvd's raw socket (hop limit from the first byte)."""
    if not data:
        return
    hop_limit = 255 if data[0] & 1 else data[0]
    try:
        radvd_wire.decode_rs(data[1:], "fe80::1", hop_limit)
    except radvd_wire.MalformedPacket:
        return


def pcapng_writer(data: bytes) -> None:
    """A captured frame (any bytes, time, lengths, packet type) into a pcapng block,
    which must stay well-formed: lengths agree and blocks stay 32-bit aligned."""
    if len(data) < 13:
        return
    ts, orig_len, pkttype = struct.unpack("<QIB", data[:13])
    frame = data[13:]
    block = pcapng.enhanced_packet(0, Packet(ts, "lan0", frame, orig_len, pkttype))
    total = struct.unpack("<I", block[4:8])[0]
    assert total == len(block) and total % 4 == 0, (total, len(block))
    assert struct.unpack("<I", block[-4:])[0] == total


def http_forms(data: bytes) -> None:
    """dhcp4d's /sethostname form and /lease/<name>, with arbitrary field bytes."""
    from tests.helpers import web

    root = _status_page()
    mac, _, rest = data.partition(b"\x00")
    name, _, path = rest.partition(b"\x00")
    req, _ = web.get(
        root, b"/sethostname", method=b"POST", args={b"hardwareaddr": mac, b"hostname": name}
    )
    assert req.responseCode in (302, 404), req.responseCode
    web.get(root, b"/lease/" + path.replace(b"/", b"_"))


_PAGES = []


def _status_page():
    if not _PAGES:
        from router7.dhcp4d.http import StatusPage
        from router7.dhcp4d.oui import VendorDB

        server = _dhcp4d_server()

        class App:
            clock = server.clock
            vendors = VendorDB({})

            def __init__(self):
                self.server = server

            def leases(self):
                return server.table.all()

            def stats(self):
                return server.stats

            def lease_time(self):
                return 1200

            def set_hostname(self, mac, hostname):
                return server.table.set_hostname(mac, hostname, server.clock.seconds()) is not None

        _PAGES.append(StatusPage(App()))
    return _PAGES[0]


def _json(data: bytes):
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise _NotJson from None


class _NotJson(Exception):
    pass


def _state(parse: Callable[[object], object]) -> Callable[[bytes], None]:
    def target(data: bytes) -> None:
        try:
            parse(_json(data))
        except (_NotJson, StateFileError):
            return

    target.__doc__ = parse.__doc__
    return target


TARGETS: dict[str, Callable[[bytes], None]] = {
    "dhcp4_client": dhcp4_client,
    "dhcp4_server": dhcp4_server,
    "dhcp6": dhcp6,
    "dns_query": dns_query,
    "dns_answer": dns_answer,
    "router_solicitation": router_solicitation,
    "pcapng_writer": pcapng_writer,
    "http_forms": http_forms,
    "state_dhcp4_lease": _state(lambda o: dhcp4_lease.Lease.from_json(o)),
    "state_dhcp6_lease": _state(lambda o: dhcp6_lease.Lease.from_json(o)),
    "state_dhcp4d_leases": _state(lambda o: dhcp4d_store.parse(o)),
    "state_interfaces": _state(lambda o: netconfigd_config.parse_interfaces(o, "<fuzz>")),
    "state_forwardings": _state(lambda o: netconfigd_config.parse_forwardings(o, "<fuzz>")),
    "state_wireguard": _state(lambda o: netconfigd_config.parse_wireguard(o, "<fuzz>")),
    "state_dnsd_config": _state(lambda o: validate(o, dnsd_upstreams.CONFIG_SCHEMA)),
}
JSON_TARGETS = {name for name in TARGETS if name.startswith("state_")}

# Keys the JSON strategies draw from, so fuzzed objects reach past "unknown field".
JSON_KEYS = sorted(
    {
        *dhcp4_lease.SCHEMA,
        *dnsd_upstreams.CONFIG_SCHEMA,
        "interfaces", "name", "addr", "hardware_addr", "spoof_hardware_addr", "extra_addrs",
        "extra_routes", "mtu", "fec", "bridges", "forwardings", "proto", "port", "dest_addr",
        "dest_port", "private_key", "peers", "public_key", "endpoint",
        "allowed_ips", "prefixes", "addresses", "prefix", "preferred", "valid", "valid_until",
        "num", "hostname", "hostname_override", "expiry", "last_ack", "vendor_class", "t1", "t2",
        "server_duid", "client_duid", "dns", "domains", "renew_at", "rebind_at", "obtained_at",
        "IP", "Mask", "previous_prefixes",
    }
)  # fmt: skip


def seeds(name: str) -> list[bytes]:
    """Valid inputs to start mutating from (recorded or built), per target."""
    from tests.helpers import captures

    if name == "dhcp4_client":
        from scapy.layers.inet import IP

        return [bytes(f[IP]) for f in captures.frames(captures.DHCP4)]
    if name in ("dhcp4_server",):
        from scapy.layers.dhcp import BOOTP, DHCP

        mac = bytes.fromhex("027353000011")
        return [
            bytes(BOOTP(op=1, chaddr=mac + bytes(10), xid=7) / DHCP(options=[("message-type", t),
                  ("requested_addr", "192.168.42.5"), ("hostname", b"midna"), "end"]))
            for t in ("discover", "request", "release", "decline", "inform")
        ]  # fmt: skip
    if name == "dhcp6":
        return list(captures.dhcp6_payloads())
    if name in ("dns_query", "dns_answer"):
        from dnslib import RR, A, DNSRecord

        q = DNSRecord.question("www.example.test")
        a = q.reply()
        a.add_answer(RR("www.example.test", rdata=A("203.0.113.10"), ttl=60))
        return [bytes(q.pack()), bytes(a.pack())]
    if name == "router_solicitation":
        return [b"\xff\x85\x00\x00\x00\x00\x00\x00\x00\x01\x01\x02\x73\x53\x00\x00\x11"]
    if name == "pcapng_writer":
        return [struct.pack("<QIB", 1_700_000_000 * 10**9, 60, 0) + bytes(60)]
    if name == "http_forms":
        return [b"7c:bb:8a:00:00:01\x00Living Room\x00switch"]
    examples = {
        "state_dhcp4_lease": {"address": "192.0.2.23/25", "router": "192.0.2.1", "dns": ["192.0.2.53"],
                              "server": "192.0.2.1", "lease_time": 600,
                              "renew_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T00:10:00Z"},
        "state_dhcp4d_leases": [{"num": 1, "addr": "192.168.42.2", "hardware_addr": "02:73:53:00:00:11",
                                 "hostname": "midna", "expiry": "2026-01-01T00:00:00Z"}],
        "state_interfaces": {"interfaces": [{"name": "lan0", "addr": "192.168.42.1/24"},
                                            {"name": "uplink0", "hardware_addr": "02:73:53:00:00:01"}]},
        "state_forwardings": {"forwardings": [{"proto": "tcp", "port": "8080", "dest_addr": "192.168.42.2",
                                               "dest_port": "80"}]},
        "state_dnsd_config": {"upstreams": ["192.0.2.53"], "cache_size": 100},
    }  # fmt: skip
    return [json.dumps(examples[name]).encode()] if name in examples else [b"{}"]
