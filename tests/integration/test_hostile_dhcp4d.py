"""A hostile LAN against router7-dhcp4d (issue 16, cases 4, 5 and 6), with real clients.

test_dhcp4d's topology (bridge lan0 with cli1 and cli2) and a pool of ten
addresses (192.168.42.100-109), so exhausting it takes a moment. The tests run in
file order: names, then the credential, then the flood.
"""

from __future__ import annotations

import json
import sys

import pytest

from router7.runtime import auth
from tests.helpers.netns import skip_unless_root_with, unique_tag
from tests.helpers.polling import wait_for
from tests.helpers.shell import run
from tests.integration.test_dhcp4d import MAC1, MAC2, SERVER, Daemon, Topology, udhcpc

pytestmark = [pytest.mark.root, pytest.mark.slow]

POOL = [f"192.168.42.{i}" for i in range(100, 110)]

FLOOD = r"""
import random, sys
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, sendp
conf.verb = 0
kind, addresses, count = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3])
frames = []
for i in range(count):
    mac = bytes([0x02, 0x66] + [random.randrange(256) for _ in range(4)])
    text = ":".join(f"{b:02x}" for b in mac)
    if kind == "request":  # INIT-REBOOT style: straight to a REQUEST for a pool address
        options = [("message-type", "request"), ("requested_addr", addresses[i % len(addresses)])]
    else:
        options = [("message-type", "discover")]
    frames.append(Ether(src=text, dst="ff:ff:ff:ff:ff:ff")
                  / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67)
                  / BOOTP(chaddr=mac + bytes(10), xid=random.getrandbits(32))
                  / DHCP(options=options + ["end"]))
sendp(frames, iface="eth0", inter=0.01)
print("sent", len(frames), flush=True)
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    skip_unless_root_with("ip", "udhcpc", "curl")
    topo = Topology(unique_tag("h4d"))
    daemon = Daemon(topo, tmp_path_factory.mktemp("hostile-dhcp4d"))
    (daemon.perm / "dhcp4d").mkdir(parents=True)
    (daemon.perm / "dhcp4d/config.json").write_text(
        json.dumps({"pool": {"start": POOL[0], "end": POOL[-1]}})
    )
    try:
        topo.up()
        daemon.start_dnsd()
        daemon.start()
        yield topo, daemon
    finally:
        if daemon.proc and daemon.proc.poll() is None:
            daemon.proc.kill()
        if daemon.dnsd:
            daemon.dnsd.kill()
        topo.down()


def lease_with(daemon, mac: str, key: str, value):
    return wait_for(
        lambda: (e := daemon.leases().get(mac)) and e.get(key) == value and e,
        f"{mac}'s lease with {key} {value!r}",
        logs=[daemon.log],
    )


def test_a_second_client_announcing_a_held_name_does_not_get_it(env):
    """Case 4: lan1.lan stays with the lease that holds it."""
    topo, daemon = env
    first = udhcpc(topo, topo.cli1, "-x", "hostname:lan1", "-n", "-t", "5", "-T", "2")
    assert first.returncode == 0, first.stderr
    lease_with(daemon, MAC1, "hostname", "lan1")
    second = udhcpc(topo, topo.cli2, "-x", "hostname:lan1", "-n", "-t", "5", "-T", "2")
    assert second.returncode == 0, second.stderr
    wait_for(lambda: MAC2 in daemon.leases(), "the second lease", logs=[daemon.log])
    leases = daemon.leases()
    assert leases[MAC1]["hostname"] == "lan1" and leases[MAC2]["hostname"] != "lan1"
    assert "holds: it gets no name" in daemon.log.read_text()


def curl_post(topo, ns: str, *args: str):
    url = f"http://{SERVER}:8067/sethostname"
    return run("ip", "netns", "exec", ns, "curl", "-sS", "-m", "5", "-o", "/dev/null",
               "-w", "%{http_code}", *args, url, check=False).stdout  # fmt: skip


def test_sethostname_needs_the_admin_credential(env):
    """Case 5: a LAN host (or a page in its browser) cannot rename a device."""
    topo, daemon = env
    # udhcpc ran without a script: give the LAN host an address (outside the pool) by hand.
    run("ip", "-n", topo.cli2, "addr", "replace", "192.168.42.250/24", "dev", "eth0")
    form = ("-d", f"hardwareaddr={MAC1}", "-d", "hostname=pwned")
    assert curl_post(topo, topo.cli2, *form) == "401"
    token, _ = auth.load_or_create(daemon.perm)  # netconfigd's job at boot
    assert curl_post(topo, topo.cli2, *form) == "401"
    cross = ("-u", f"admin:{token}", "-H", "Origin: http://evil.example")
    assert curl_post(topo, topo.cli2, *form, *cross) == "403"
    assert daemon.leases()[MAC1]["hostname"] == "lan1"
    renamed = ("-u", f"admin:{token}", "-d", f"hardwareaddr={MAC1}", "-d", "hostname=hall")
    assert curl_post(topo, topo.cli2, *renamed) == "302"
    lease_with(daemon, MAC1, "hostname", "hall")


def flood(topo, kind: str, count: int) -> None:
    out = run("ip", "netns", "exec", topo.cli1, sys.executable, "-c", FLOOD, kind,
              ",".join(POOL), str(count), timeout=120).stdout  # fmt: skip
    assert out.startswith("sent")


def test_a_flood_of_random_macs_leaves_room_for_a_new_client(env):
    """Case 6: 40 forged REQUESTs and 40 DISCOVERs from random MACs, then a new device."""
    topo, daemon = env
    flood(topo, "request", 40)
    flood(topo, "discover", 40)
    newcomer = "02:73:53:00:00:77"
    run("ip", "-n", topo.cli2, "link", "set", "eth0", "address", newcomer)
    got = udhcpc(topo, topo.cli2, "-n", "-t", "10", "-T", "3", timeout=60)
    assert got.returncode == 0, got.stderr + got.stdout
    lease = wait_for(lambda: daemon.leases().get(newcomer), "the newcomer's lease")
    assert lease["addr"] in POOL
    assert daemon.metric(topo.srv, 'dhcp4d_packets_ignored_total{reason="new_client_rate"}') > 0
    assert "nearly) full" in daemon.http(topo.srv, "/")
