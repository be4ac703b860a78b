"""router7-recover's DHCP: PXE clients get an offer with a boot file; nobody else
gets anything, whatever they send."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router7.recover import dhcp

MAC = bytes.fromhex("525400123456")
OFFER = dhcp.Offer(
    server=IPv4Address("192.168.42.250"),
    client=IPv4Address("192.168.42.251"),
    netmask=IPv4Address("255.255.255.0"),
    ipxe_bootfile="boot.ipxe",
    pxe_bootfile="lpxelinux.0",
)
PXE_ROM = {dhcp.OPT_VENDOR_CLASS: b"PXEClient:Arch:00000:UNDI:002001"}
IPXE = {**PXE_ROM, dhcp.OPT_USER_CLASS: b"iPXE"}


def ask(msg_type, options, **kw):
    req = dhcp.decode(dhcp.encode_request(msg_type, 0x1234, MAC, options))
    return dhcp.answer(req, OFFER, **kw)


def test_a_pxe_rom_gets_an_offer_for_pxelinux():
    reply = ask(dhcp.DISCOVER, PXE_ROM)
    msg_type, yiaddr, bootfile, opts = dhcp.decode_reply(reply)
    assert (msg_type, yiaddr, bootfile) == (dhcp.OFFER, OFFER.client, "lpxelinux.0")
    assert opts[dhcp.OPT_SERVER_ID] == OFFER.server.packed
    assert opts[dhcp.OPT_TFTP_SERVER] == b"192.168.42.250"
    assert opts[dhcp.OPT_NETMASK] == bytes([255, 255, 255, 0])
    assert reply[20:24] == OFFER.server.packed  # siaddr: next server
    assert reply[4:8] == (0x1234).to_bytes(4, "big")  # xid echoed


def test_ipxe_gets_the_ipxe_script():
    assert dhcp.decode_reply(ask(dhcp.DISCOVER, IPXE))[2] == "boot.ipxe"
    # iPXE's user class alone is enough (some builds send no PXEClient vendor class)
    assert dhcp.decode_reply(ask(dhcp.DISCOVER, {dhcp.OPT_USER_CLASS: b"\x04iPXE"}))[2]


def test_request_for_our_offer_is_acked():
    reply = ask(
        dhcp.REQUEST,
        {**IPXE, dhcp.OPT_REQUESTED: OFFER.client.packed, dhcp.OPT_SERVER_ID: OFFER.server.packed},
    )
    assert dhcp.decode_reply(reply)[0] == dhcp.ACK


@pytest.mark.parametrize(
    "options",
    [
        {},  # a laptop's or phone's dhclient
        {dhcp.OPT_VENDOR_CLASS: b"MSFT 5.0"},
        {dhcp.OPT_VENDOR_CLASS: b"android-dhcp-14"},
        {dhcp.OPT_VENDOR_CLASS: b"xPXEClient"},
        {dhcp.OPT_USER_CLASS: b"not-ipxe"},
    ],
)
def test_other_clients_get_no_answer(options):
    assert ask(dhcp.DISCOVER, options) is None
    assert ask(dhcp.REQUEST, {**options, dhcp.OPT_REQUESTED: OFFER.client.packed}) is None


def test_requests_meant_for_another_server_or_address_are_left_alone():
    other = IPv4Address("192.168.42.1").packed
    assert ask(dhcp.REQUEST, {**IPXE, dhcp.OPT_SERVER_ID: other}) is None
    assert ask(dhcp.REQUEST, {**IPXE, dhcp.OPT_REQUESTED: other}) is None
    for msg_type in (dhcp.DECLINE, dhcp.RELEASE, dhcp.INFORM):
        assert ask(msg_type, IPXE) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" * 239,
        dhcp.encode_request(dhcp.DISCOVER, 1, MAC)[:-3] + b"\x35",  # truncated option
        dhcp.encode_request(dhcp.DISCOVER, 1, MAC).replace(b"\x35\x01\x01", b"\x35\x01\x09"),
    ],
)
def test_malformed_requests_are_refused(data):
    with pytest.raises(dhcp.Malformed):
        dhcp.decode(data)


def test_replies_are_not_requests():
    with pytest.raises(dhcp.Malformed, match="not a request"):
        dhcp.decode(ask(dhcp.DISCOVER, IPXE))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_any_bytes_decode_or_raise_malformed(data):
    try:
        req = dhcp.decode(data)
    except dhcp.Malformed:
        return
    reply = dhcp.answer(req, OFFER)
    assert reply is None or req.is_pxe


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.integers(1, 254), st.binary(max_size=40), max_size=8),
    st.sampled_from([dhcp.DISCOVER, dhcp.REQUEST, dhcp.INFORM]),
    st.binary(max_size=40),
)
def test_fuzz_options_only_pxe_clients_are_answered(options, msg_type, tail):
    options.pop(dhcp.OPT_TYPE, None)
    data = dhcp.encode_request(msg_type, 7, MAC, options) + tail
    req = dhcp.decode(data)
    reply = dhcp.answer(req, OFFER)
    vendor = options.get(dhcp.OPT_VENDOR_CLASS, b"")
    pxe = vendor.startswith(b"PXEClient") or b"iPXE" in options.get(dhcp.OPT_USER_CLASS, b"")
    if not pxe:
        assert reply is None
    if reply is not None:
        assert dhcp.decode_reply(reply)[1] == OFFER.client
