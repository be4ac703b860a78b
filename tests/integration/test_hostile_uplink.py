"""A hostile uplink (issue 16, case 3): forged DHCPv4 replies on the ISP segment.

The ISP's kea binds router7-dhcp4, then falls silent. While the client renews,
another host on the segment (anyone sees the xid of a broadcast or a unicast
REQUEST on a shared segment) answers with a DHCPACK for a /32 without a router
and with a DHCPNAK, both from a server id that is not the lease's. Neither may
replace or remove the working lease (the rules are in docs/hostile.md).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.netns import skip_unless_root_with
from tests.helpers.polling import wait_for
from tests.integration.test_dhcp4_client import Client, Kea, Pair

pytestmark = [pytest.mark.root, pytest.mark.slow]

FORGER = r"""
import sys
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, sendp, sniff
conf.verb = 0
print("ready", flush=True)
req = sniff(iface="down0", count=1, timeout=60,
            lfilter=lambda p: p.haslayer(BOOTP) and p[BOOTP].op == 1
            and (DHCP in p and ("message-type", 3) in p[DHCP].options))[0]
mac = req[Ether].src
ack = [("message-type", "ack"), ("server_id", "192.0.2.99"),
       ("lease_time", 86400), ("subnet_mask", "255.255.255.255"), "end"]
nak = [("message-type", "nak"), ("server_id", "192.0.2.99"), "end"]
for yiaddr, options in (("192.0.2.77", ack), ("0.0.0.0", nak)):
    frame = (Ether(src="02:00:00:00:06:66", dst=mac)
             / IP(src="192.0.2.99", dst="255.255.255.255") / UDP(sport=67, dport=68)
             / BOOTP(op=2, xid=req[BOOTP].xid, yiaddr=yiaddr, chaddr=req[BOOTP].chaddr)
             / DHCP(options=options))
    sendp(frame, iface="down0")
print("sent", hex(req[BOOTP].xid), flush=True)
"""


@pytest.fixture
def pair():
    skip_unless_root_with("ip", "kea-dhcp4")
    with Pair() as p:
        yield p


def forge(pair: Pair) -> str:
    """Wait for the client's next REQUEST on the segment and answer it with a forged
    ACK (a /32, no router), then a forged NAK, both from 192.0.2.99."""
    p = pair.popen(pair.srv, sys.executable, "-c", FORGER, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        out, _ = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert "sent" in out, out
    return out


def test_forged_ack_and_nak_while_the_isp_is_silent_keep_the_lease(pair, tmp_path):
    kea = Kea(pair, tmp_path / "kea", lifetime=120)
    conf = json.loads(kea.conf.read_text())
    # The first RENEW comes 8 s after the ACK (time to stop kea and start the forger).
    conf["Dhcp4"].update({"renew-timer": 8, "rebind-timer": 100})
    kea.conf.write_text(json.dumps(conf))
    kea.start()
    client = Client(pair.cli, tmp_path / "client").start()
    try:
        lease = client.wait_lease()
        assert lease["router"] == "192.0.2.1" and lease["address"].endswith("/25")
        pair.configure(lease)
        kea.stop()  # the ISP's server falls silent

        forge(pair)
        wait_for(
            lambda: (
                "(foreign_nak)" in client.log.read_text()
                or "NAK from" in client.log.read_text()
                or client.lease() != lease
            ),
            "the client to judge the forgeries",
            logs=[client.log],
        )
        log = client.log.read_text()
        assert client.lease() == lease, "a forged ACK replaced the lease"
        assert "(degraded)" in log and "(foreign_nak)" in log
        assert "NAK from" not in log
        assert "sent discover" not in log.split("bound to", 1)[1]
    finally:
        client.stop()
        kea.stop()


# --- DHCPv6: a Reply to Renew without a usable IA_PD is no renewal ---------------------

FORGER6 = r"""
import socket, struct
from scapy.all import IPv6, UDP, conf, sniff
conf.verb = 0
print("ready", flush=True)
pkt = sniff(iface="down0", count=1, timeout=60,
            lfilter=lambda p: p.haslayer(UDP) and p[UDP].dport == 547
            and bytes(p[UDP].payload)[:1] == b"\x05")[0]   # a Renew
data = bytes(pkt[UDP].payload)
tid, options, pos = data[1:4], {}, 4
while pos + 4 <= len(data):
    code, length = struct.unpack("!HH", data[pos:pos + 4])
    options.setdefault(code, data[pos + 4:pos + 4 + length])
    pos += 4 + length
def opt(code, body):
    return struct.pack("!HH", code, len(body)) + body
iaid = options[25][:4]
status = opt(13, b"\x00\x06NoPrefixAvail")
reply = (b"\x07" + tid + opt(1, options[1]) + opt(2, b"\x00\x03\x00\x01\x02\x00\x00\x00\x06\x66")
         + opt(25, iaid + bytes(8) + status))
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"down0")
s.bind(("::", 547))
s.sendto(reply, (pkt[IPv6].src, 546, 0, socket.if_nametoindex("down0")))
print("sent", tid.hex(), flush=True)
"""


def test_a_reply_without_usable_ia_pd_during_renew_keeps_retransmitting(tmp_path):
    skip_unless_root_with("ip", "kea-dhcp6")
    from tests.integration.test_dhcp6_client import Client as Client6
    from tests.integration.test_dhcp6_client import Kea as Kea6
    from tests.integration.test_dhcp6_client import Pair as Pair6

    with Pair6() as pair:
        kea = Kea6(pair, tmp_path / "kea6")
        client = Client6(pair.cli, tmp_path / "client6")
        try:
            kea.start(t1=4, t2=40, preferred=50, valid=60)
            client.start()
            lease = client.wait_lease("a lease", logs=(kea.log,))
            assert lease["prefixes"]
            kea.stop()  # the ISP's server falls silent; someone else answers the Renew
            p = pair.popen(
                pair.srv, sys.executable, "-c", FORGER6, stdout=subprocess.PIPE, text=True
            )
            try:
                assert p.stdout.readline().strip() == "ready"
                out, _ = p.communicate(timeout=90)
            finally:
                if p.poll() is None:
                    p.kill()
            assert "sent" in out, out
            wait_for(
                lambda: "no_bindings" in client.log.read_text() or client.lease() != lease,
                "the client to judge the Reply",
                logs=(client.log,),
            )
            assert client.lease() == lease, "an empty Reply counted as a renewal"
            # ... and the Renew goes on (retransmitted, 10 s later per RFC 8415).
            renews = client.sent().count("renew")
            wait_for(lambda: client.sent().count("renew") > renews, "the next Renew", 30)
            assert client.lease() == lease
        finally:
            client.stop()
            kea.stop()
