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
