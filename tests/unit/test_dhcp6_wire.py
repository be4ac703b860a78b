"""DHCPv6 wire format: the fiber7 capture decodes, client messages encode, garbage is refused."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers import dhcp6 as s
from scapy.packet import Raw

from router7.dhcp6 import wire
from router7.dhcp6.wire import IA, Binding, DecodeError
from tests.helpers import captures

FIBER7_CLIENT_ID = bytes.fromhex("000a000300014c5e0c43bf39")


def test_fiber7_advertise_decodes():
    adv, _ = captures.dhcp6_payloads()
    msg = wire.decode(adv)
    assert msg.msg_type == wire.ADVERTISE
    assert msg.tid == 0x48E59E
    assert msg.client_id == FIBER7_CLIENT_ID
    assert msg.server_id == bytes.fromhex("00010001") + bytes.fromhex("22439e23525400faac14")
    assert msg.preference == 0
    assert msg.server_unicast == IPv6Address("2001:1620:2777:19:1::5")
    (pd,) = msg.ia_pd
    assert (pd.iaid, pd.t1, pd.t2) == (1, 1200, 1800)
    assert pd.bindings == (Binding(IPv6Network("2a02:168:4a00::/48"), 3600, 86400),)
    assert pd.status == wire.Status(0, "Here's your existing lease: 1 prefix(es).")
    (na,) = msg.ia_na
    assert na.bindings[0].network == IPv6Network("2a02:168:2000:5:add7:17aa:9163:8ef3/128")
    assert msg.dns == [IPv6Address("2001:1620:2777:1::10"), IPv6Address("2001:1620:2777:2::20")]


def test_fiber7_reply_with_authentication_option_decodes():
    _, reply = captures.dhcp6_payloads()
    assert struct.unpack_from("!H", reply, len(reply) - 32)[0] == 11  # Authentication is there
    msg = wire.decode(reply)
    assert msg.msg_type == wire.REPLY
    assert msg.tid == 0x738C3B
    assert msg.ia_pd[0].status.message == "Assigned fixed in-pool prefix."
    assert msg.ia_na[0].status.message == "Assigned an address."


def test_status_message_trailing_nul_is_stripped():
    pkt = (
        s.DHCP6_Reply(trid=1)
        / s.DHCP6OptServerId(duid=Raw(b"\x00\x03\x00\x01abcdef"))
        / s.DHCP6OptStatusCode(statuscode=0, statusmsg=b"Assigned an address.\x00")
        / s.DHCP6OptIA_PD(
            iaid=1,
            T1=1,
            T2=2,
            iapdopt=[
                s.DHCP6OptIAPrefix(preflft=3, validlft=4, plen=56, prefix="2001:db8:1:100::"),
                s.DHCP6OptStatusCode(statuscode=0, statusmsg=b"ok\x00\x00"),
            ],
        )
    )
    msg = wire.decode(bytes(pkt))
    assert msg.status == wire.Status(0, "Assigned an address.")
    assert msg.ia_pd[0].status == wire.Status(0, "ok")


def test_unknown_options_are_ignored():
    pkt = (
        s.DHCP6_Reply(trid=7)
        / s.DHCP6OptUnknown(optcode=65000, data=b"\x01\x02\x03")
        / s.DHCP6OptServerId(duid=Raw(b"\x00\x03\x00\x01abcdef"))
        / s.DHCP6OptUnknown(optcode=82, data=struct.pack("!I", 120))  # SOL_MAX_RT
    )
    msg = wire.decode(bytes(pkt))
    assert msg.server_id == b"\x00\x03\x00\x01abcdef"
    assert msg.sol_max_rt == 120


def test_solicit_sends_non_standard_duid_verbatim():
    data = wire.encode(
        wire.SOLICIT,
        0xABCDEF,
        FIBER7_CLIENT_ID,
        ia_na=[IA(0x0C43BF39)],
        ia_pd=[IA(1, bindings=(Binding(IPv6Network("2a02:168:4a00::/48"), 9, 9),))],
        rapid_commit=True,
    )
    assert FIBER7_CLIENT_ID in data
    pkt = s.DHCP6_Solicit(data)
    assert pkt.trid == 0xABCDEF
    assert bytes(pkt[s.DHCP6OptClientId].duid) == FIBER7_CLIENT_ID
    assert pkt[s.DHCP6OptOptReq].reqopts == [23, 24]
    assert pkt[s.DHCP6OptElapsedTime].elapsedtime == 0
    assert pkt.haslayer(s.DHCP6OptRapidCommit)
    assert pkt[s.DHCP6OptIA_NA].iaid == 0x0C43BF39
    pd = pkt[s.DHCP6OptIA_PD]
    assert (pd.iaid, pd.T1, pd.T2) == (1, 0, 0)
    # a hint: the prefix we had, lifetimes 0 as RFC 8415 asks of clients
    hint = pd.iapdopt[0]
    assert (hint.prefix, hint.plen, hint.preflft, hint.validlft) == ("2a02:168:4a00::", 48, 0, 0)
    assert not pkt.haslayer(s.DHCP6OptServerId)


def test_renew_carries_server_id_and_elapsed_time_saturates():
    data = wire.encode(
        wire.RENEW, 1, b"\x00\x03\x00\x01abcdef", server_duid=b"\x00\x02xyz", elapsed_cs=10**6
    )
    pkt = s.DHCP6_Renew(data)
    assert bytes(pkt[s.DHCP6OptServerId].duid) == b"\x00\x02xyz"
    assert pkt[s.DHCP6OptElapsedTime].elapsedtime == 0xFFFF
    assert not pkt.haslayer(s.DHCP6OptRapidCommit)  # only ever in a Solicit


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "too_short"),
        (b"\x07\x00\x00", "too_short"),
        (b"\x63\x00\x00\x01", "unknown_type"),
        (b"\x0d\x00\x00\x01", "relay_message"),
        (b"\x07\x00\x00\x01\x00\x02\x00", "malformed_option"),  # truncated header
        (b"\x07\x00\x00\x01\x00\x02\x00\x09abc", "malformed_option"),  # length past the end
        (
            b"\x07\x00\x00\x01\x00\x19\x00\x04\x00\x00\x00\x01",
            "malformed_option",
        ),  # IA_PD too short
        # IA_PD whose IAPREFIX claims more than the IA_PD holds
        (
            b"\x07\x00\x00\x01\x00\x19\x00\x14" + b"\x00" * 12 + b"\x00\x1a\x00\x40" + b"\x00" * 4,
            "malformed_option",
        ),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(data, reason):
    with pytest.raises(DecodeError) as e:
        wire.decode(data)
    assert e.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_only_raise_decode_error(data):
    try:
        wire.decode(data)
    except DecodeError as e:
        assert e.reason


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_fuzz_mutated_fiber7_packets_only_raise_decode_error(data):
    packet = bytearray(data.draw(st.sampled_from(captures.dhcp6_payloads())))
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(packet) - 1))
        packet[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(packet)))
    try:
        wire.decode(bytes(packet[:cut]))
    except DecodeError as e:
        assert e.reason


# --- the small codec agrees with scapy ------------------------------------------


def _scapy_client_message(msg_type, tid, duid, server_duid, elapsed, ia_na, ia_pd, rapid):
    """What the client sent while it built messages with scapy's layers."""
    classes = {wire.SOLICIT: s.DHCP6_Solicit, wire.REQUEST: s.DHCP6_Request,
               wire.RENEW: s.DHCP6_Renew, wire.REBIND: s.DHCP6_Rebind,
               wire.RELEASE: s.DHCP6_Release}  # fmt: skip
    pkt = classes[msg_type](trid=tid) / s.DHCP6OptClientId(duid=Raw(duid))
    if server_duid is not None:
        pkt /= s.DHCP6OptServerId(duid=Raw(server_duid))
    pkt /= s.DHCP6OptElapsedTime(elapsedtime=elapsed)
    if msg_type != wire.RELEASE:
        pkt /= s.DHCP6OptOptReq(reqopts=[23, 24])
    if rapid and msg_type == wire.SOLICIT:
        pkt /= s.DHCP6OptRapidCommit()
    for ia in ia_na:
        subs = [s.DHCP6OptIAAddress(addr=str(b.network.network_address), preflft=0, validlft=0)
                for b in ia.bindings]  # fmt: skip
        pkt /= s.DHCP6OptIA_NA(iaid=ia.iaid, T1=0, T2=0, ianaopts=subs)
    for ia in ia_pd:
        subs = [s.DHCP6OptIAPrefix(preflft=0, validlft=0, plen=b.network.prefixlen,
                                   prefix=str(b.network.network_address)) for b in ia.bindings]  # fmt: skip
        pkt /= s.DHCP6OptIA_PD(iaid=ia.iaid, T1=0, T2=0, iapdopt=subs)
    return bytes(pkt)


@pytest.mark.parametrize(
    "msg_type", [wire.SOLICIT, wire.REQUEST, wire.RENEW, wire.REBIND, wire.RELEASE]
)
def test_encoded_messages_are_byte_for_byte_what_scapy_builds(msg_type):
    na = [IA(7, bindings=(Binding(IPv6Network("2001:db8::5/128"), 1, 2),))]
    pd = [IA(1, bindings=(Binding(IPv6Network("2001:db8:100::/48"), 1, 2),)), IA(2)]
    server = None if msg_type in (wire.SOLICIT, wire.REBIND) else b"\x00\x02xyz"
    got = wire.encode(msg_type, 0x123456, FIBER7_CLIENT_ID, server_duid=server, elapsed_cs=42,
                      ia_na=na, ia_pd=pd, rapid_commit=True)  # fmt: skip
    ref = _scapy_client_message(msg_type, 0x123456, FIBER7_CLIENT_ID, server, 42, na, pd, True)
    assert got == ref


def test_decodes_what_scapy_writes_including_domains():
    pkt = (
        s.DHCP6_Reply(trid=0x10203)
        / s.DHCP6OptClientId(duid=Raw(FIBER7_CLIENT_ID))
        / s.DHCP6OptServerId(duid=Raw(b"\x00\x03\x00\x01abcdef"))
        / s.DHCP6OptPref(prefval=255)
        / s.DHCP6OptServerUnicast(srvaddr="2001:db8::1")
        / s.DHCP6OptRapidCommit()
        / s.DHCP6OptDNSServers(dnsservers=["2001:db8::53", "2001:db8::54"])
        / s.DHCP6OptDNSDomains(dnsdomains=["lan.example.", "example.org."])
        / s.DHCP6OptIA_NA(
            iaid=3,
            T1=10,
            T2=20,
            ianaopts=[s.DHCP6OptIAAddress(addr="2001:db8::5", preflft=30, validlft=40)],
        )  # fmt: skip
    )
    msg = wire.decode(bytes(pkt))
    assert (msg.msg_type, msg.tid, msg.client_id) == (wire.REPLY, 0x10203, FIBER7_CLIENT_ID)
    assert msg.preference == 255 and msg.rapid_commit
    assert msg.server_unicast == IPv6Address("2001:db8::1")
    assert msg.dns == [IPv6Address("2001:db8::53"), IPv6Address("2001:db8::54")]
    assert msg.domains == ["lan.example", "example.org"]
    assert msg.ia_na == [IA(3, 10, 20, (Binding(IPv6Network("2001:db8::5/128"), 30, 40),))]


@pytest.mark.parametrize(
    "option",
    [
        b"\x00\x07\x00\x02\x01\x02",  # preference of two bytes
        b"\x00\x17\x00\x03abc",  # DNS servers not a multiple of 16 bytes
        b"\x00\x18\x00\x04\x05abc",  # a label past the end of the option
        b"\x00\x18\x00\x04\x03abc",  # a name without its terminating root label
    ],
)
def test_odd_option_contents_are_refused(option):
    with pytest.raises(DecodeError) as e:
        wire.decode(b"\x07\x00\x00\x01" + option)
    assert e.value.reason == "malformed_option"
