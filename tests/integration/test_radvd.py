"""router7-radvd against real Linux hosts: rdisc6, SLAAC, renumbering, default route, metrics.

A dedicated pair of namespaces (not the shared lab, whose LAN hosts other tests
use): the router side has lan0 (MAC 02:73:53:00:ca:fe, as in router7's own
radvd test) and an uplink0 veth whose default route the tests add and remove;
the host side has eth0 with accept_ra=2 and autoconf=1. DAD is off so that
link-local addresses are usable at once.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router7.runtime.notify import notify
from tests.helpers import shell
from tests.helpers.netns import Namespaces, skip_unless_root_with, unique_tag
from tests.helpers.polling import wait_for

pytestmark = [pytest.mark.root]

NET = Namespaces(unique_tag("rv"), "r", "h")
ROUTER, HOST = NET.names
MAC = "02:73:53:00:ca:fe"
LL = "fe80::73:53ff:fe00:cafe"
HTTP_PORT = 18068
RADVD = Path(sys.executable).with_name("router7-radvd")


def sh(*argv, ns=None, check=True):
    """Run a command (one string is split on spaces), in namespace ``ns`` if given."""
    return shell.sh(*(argv[0].split() if len(argv) == 1 else argv), ns=ns, check=check)


@pytest.fixture(scope="module")
def net():
    skip_unless_root_with("ip", "rdisc6", "curl")
    try:
        NET.up()
        NET.veth(ROUTER, "lan0", HOST, "eth0", a_mac=MAC, up=False)
        NET.veth(ROUTER, "uplink0", ROUTER, "isp0")
        NET.sysctl(HOST, "net.ipv6.conf.eth0.accept_ra", 2)
        NET.sysctl(HOST, "net.ipv6.conf.eth0.autoconf", 1)
        NET.ip(ROUTER, "link", "set", "lan0", "up")
        NET.ip(HOST, "link", "set", "eth0", "up")
        wait_for(
            lambda: LL in sh(f"ip -n {ROUTER} -6 addr show dev lan0"), "lan0's link-local", 15.0
        )
        # The peer end gets carrier (and so its link-local) up to a few seconds later:
        # the kernel's linkwatch batches carrier changes. rdisc6 needs it to send.
        wait_for(
            lambda: "fe80::" in sh(f"ip -n {HOST} -6 addr show dev eth0 scope link"),
            "eth0's link-local",
            15.0,
        )
        yield
    finally:
        NET.down()


class Radvd:
    """One router7-radvd process in the router namespace with its own /perm and run dir."""

    def __init__(self, root: Path):
        self.perm = root / "perm"
        self.run_dir = root / "run"
        self.log = root / "radvd.log"
        self.proc = None

    def write_lease(self, prefix, previous=None, valid=86400):
        now = datetime.now(UTC)
        iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        lease = {
            "prefixes": [
                {
                    "prefix": prefix,
                    "preferred_lifetime": valid // 2,
                    "valid_lifetime": valid,
                    "preferred_until": iso(now + timedelta(seconds=valid // 2)),
                    "valid_until": iso(now + timedelta(seconds=valid)),
                }
            ],
            "previous_prefixes": [
                {
                    "prefix": previous,
                    "preferred_until": iso(now),
                    "valid_until": iso(now + timedelta(hours=1)),
                }
            ]
            if previous
            else [],
            "dns": ["2001:db8::53"],
            "obtained_at": iso(now),
        }
        path = self.perm / "dhcp6/wire/lease.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(lease))
        tmp.rename(path)

    def start(self, config=None):
        """Start radvd; ``config`` (default: short intervals) goes to radvd/config.json."""
        path = self.perm / "radvd/config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"max_interval": 10} if config is None else config))
        cmd = (
            f"ip netns exec {ROUTER} {RADVD} --perm {self.perm} --run-dir {self.run_dir}"
            f" --http-port {HTTP_PORT} --log-level debug"
        ).split()
        with open(self.log, "wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, stderr=log)
        wait_for(lambda: "ready" in self.log.read_text(), "radvd ready", 15.0, logs=[self.log])
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(10)
        return self.proc.returncode if self.proc else None

    def metrics(self) -> str:
        return sh("curl", "-sf", f"http://127.0.0.1:{HTTP_PORT}/metrics", ns=ROUTER)


@pytest.fixture
def radvd(net, tmp_path):
    r = Radvd(tmp_path)
    yield r
    r.stop()
    sh(f"ip -n {HOST} -6 addr flush dev eth0 scope global")
    sh(f"ip -n {HOST} -6 route flush proto ra", check=False)
    sh(f"ip -n {ROUTER} -6 route del default dev uplink0", check=False)


def host_addresses():
    """{address: ip-addr line} of the host's global IPv6 addresses."""
    out = sh(f"ip -n {HOST} -6 -o addr show dev eth0 scope global")
    return {
        m.group(1): line for line in out.splitlines() if (m := re.search(r"inet6 (\S+)/64", line))
    }


def in_prefix(prefix):
    return [a for a in host_addresses() if a.startswith(prefix)]


def field(output, name):
    m = re.search(rf"^\s*{re.escape(name)}\s*:\s*(.*?)\s*$", output, re.M)
    assert m, f"{name!r} missing in rdisc6 output:\n{output}"
    return m.group(1)


GOLDEN = f"""
Hop limit                 :           64 (      0x40)
Stateful address conf.    :           No
Stateful other conf.      :           No
Mobile home agent         :           No
Router preference         :       medium
Neighbor discovery proxy  :           No
Router lifetime           :         1800 (0x00000708) seconds
Reachable time            :  unspecified (0x00000000)
Retransmit time           :  unspecified (0x00000000)
 Source link-layer address: 02:73:53:00:CA:FE
 MTU                      :         1500 bytes (valid)
 Prefix                   : 2001:db8:100::/64
  On-link                 :          Yes
  Autonomous address conf.:          Yes
  Valid time              :         5400 (0x00001518) seconds
  Pref. time              :         2700 (0x00000a8c) seconds
 Recursive DNS server     : {LL}
  DNS server lifetime     :         1800 (0x00000708) seconds
 DNS search list          : lan{" "}
  DNS search list lifetime:         1800 (0x00000708) seconds
 from {LL}
"""


def test_rdisc6_golden_with_default_settings(radvd):
    """router7's own radvd test, with RFC 9096 prefix lifetimes (2700/5400, not 1800/7200)
    and RFC 8106 DNSSL lifetime (3 × MaxRtrAdvInterval = 1800, not 1200)."""
    radvd.write_lease("2001:db8:100::/48")
    sh(f"ip -n {ROUTER} -6 route replace default via fe80::1 dev uplink0")
    radvd.start(config={})
    out = sh("rdisc6 -1 eth0", ns=HOST)
    assert out.split("\n", 1)[1] == GOLDEN


def test_rdisc6_without_uplink_route(radvd):
    radvd.write_lease("2001:db8:100::/48")
    radvd.start()
    out = sh("rdisc6 -1 eth0", ns=HOST)
    assert field(out, "Router lifetime").startswith("0 ")  # uplink0 has no default route
    assert field(out, "Prefix") == "2001:db8:100::/64"
    assert field(out, "Pref. time").startswith("2700 ")
    assert field(out, "DNS server lifetime").startswith("30 ")  # 3 × max_interval (10 s)
    assert field(out, "DNS search list") == "lan"


def test_host_autoconfigures_and_follows_a_prefix_change(radvd):
    radvd.write_lease("2001:db8:100::/48")
    radvd.start()
    (old,) = wait_for(
        lambda: in_prefix("2001:db8:100:0:"),
        "a SLAAC address from the first prefix",
        15.0,
        logs=[radvd.log],
    )
    assert "deprecated" not in host_addresses()[old]

    radvd.write_lease("2001:db8:200::/48", previous="2001:db8:100::/48")
    assert notify(radvd.run_dir, "radvd")  # what router7-dhcp6 does after writing the lease
    wait_for(
        lambda: in_prefix("2001:db8:200:0:"),
        "a SLAAC address from the new prefix",
        15.0,
        logs=[radvd.log],
    )

    def old_is_deprecated():
        line = host_addresses().get(old, "")
        return "deprecated" in line and "preferred_lft 0sec" in line

    wait_for(old_is_deprecated, "the old address to be deprecated", 15.0, logs=[radvd.log])
    new = in_prefix("2001:db8:200:0:")[0]
    assert "deprecated" not in host_addresses()[new]
    out = sh("rdisc6 -1 eth0", ns=HOST)
    prefixes = re.findall(
        r"Prefix\s*:\s*(\S+)\n.*?\n.*?\n\s*Valid time\s*:\s*(\d+).*\n\s*Pref\. time\s*:\s*(\d+)",
        out,
    )
    assert prefixes[0] == ("2001:db8:200::/64", "5400", "2700")
    old_prefix, valid, preferred = prefixes[1]
    assert (old_prefix, preferred) == ("2001:db8:100::/64", "0")
    assert 0 < int(valid) <= 3600  # counting down to the end of the old delegation


def test_default_route_follows_the_uplink_and_sigterm_withdraws_it(radvd):
    radvd.write_lease("2001:db8:100::/48")
    radvd.start()
    default = lambda: sh(f"ip -n {HOST} -6 route show default")  # noqa: E731
    wait_for(lambda: in_prefix("2001:db8:100:0:"), "SLAAC", 15.0, logs=[radvd.log])
    assert default() == ""  # router lifetime 0 while uplink0 has no IPv6 default route

    sh(f"ip -n {ROUTER} -6 route replace default via fe80::1 dev uplink0")
    wait_for(
        lambda: f"via {LL} dev eth0" in default(),
        "the host's default route via lan0",
        15.0,
        logs=[radvd.log],
    )
    assert field(sh("rdisc6 -1 eth0", ns=HOST), "Router lifetime").startswith("30 ")

    assert radvd.stop() == 0
    assert "final RA" in radvd.log.read_text()
    wait_for(lambda: default() == "", "the final RA (router lifetime 0) to remove the route", 15.0)


def test_metrics_count_solicitations_drops_and_advertisements(radvd):
    radvd.write_lease("2001:db8:100::/48")
    radvd.start()
    sh("rdisc6 -1 eth0", ns=HOST)
    # An RS with hop limit 64 may have been forwarded by a router: RFC 4861 says drop it.
    send_rs = (
        "import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6); "
        "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 64); "
        "s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ('ff02::2', 0, 0, socket.if_nametoindex('eth0')))"
    )
    sh(sys.executable, "-c", send_rs, ns=HOST)

    def sample(name, **labels):
        label = ",".join(f'{k}="{v}"' for k, v in labels.items())
        m = re.search(
            rf"^{name}{{{label}}} (\S+)$" if label else rf"^{name} (\S+)$", radvd.metrics(), re.M
        )
        return float(m.group(1)) if m else 0.0

    wait_for(
        lambda: sample("radvd_router_solicitations_dropped_total", reason="malformed") >= 1,
        "a drop",
        15.0,
    )
    assert sample("radvd_router_solicitations_received_total") >= 2
    assert sample("radvd_router_advertisements_sent_total", destination="unicast") >= 1
    assert sample("radvd_router_advertisements_sent_total", destination="multicast") >= 1
    assert sample("radvd_prefix_valid_lifetime_seconds", prefix="2001:db8:100::/64") == 5400
    assert radvd.proc.poll() is None  # nothing crashed
