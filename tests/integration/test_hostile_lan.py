"""A hostile LAN host against router7-dnsd (issue 16, cases 1, 2 and 7).

The topology is test_dnsd's (isp with two dnsmasq upstreams, router, client). The
upstreams forward ``slow.test`` to an address nobody holds, so a LAN host can make
every question about it hang (as a slow zone it controls would), and have no
server at all for ``refused.test``, which they answer REFUSED.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.helpers import dnsflood
from tests.helpers.polling import wait_for
from tests.integration.test_dnsd import (
    CLIENT,
    MIDNA,
    ROUTER_LAN,
    UP1,
    UP2,
    Topology,
    write_perm,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

SLOW = "--server=/slow.test/198.51.100.99"
CONFIGURED = "192.168.42.2"  # lan0's address in interfaces.json (case 7)


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-dns")
    topo = Topology(tmp).up()
    try:
        topo.start_upstream(UP1, SLOW)
        topo.start_upstream(UP2, SLOW)
        perm = write_perm(tmp / "perm", [MIDNA])
        topo.perm = perm
        topo.start_dnsd(perm)
        yield topo
    finally:
        topo.down()


def upstream_queries(topo, name: str) -> int:
    return sum(
        (topo.tmp / f"dnsmasq-{up}.log").read_text().count(f"query[A] {name} ") for up in (UP1, UP2)
    )


def test_refused_zone_is_asked_once_per_upstream_and_costs_no_rtt(topo):
    """Case 2: a REFUSED is an answer about the zone, not a slow server."""
    for i in range(5):
        out = topo.dig(topo.client, ROUTER_LAN, f"n{i}.refused.test")
        assert "status: REFUSED" in out, out
        assert upstream_queries(topo, f"n{i}.refused.test") <= 2  # was 8: two rounds, 2 servers
    m = topo.metrics()
    for up in (UP1, UP2):
        assert m[f'dnsd_upstream_srtt_seconds{{upstream="{up}:53"}}'] < 0.5
    assert m["dnsd_upstream_refused_total"] >= 5


def test_a_flood_of_slow_questions_is_bounded_and_cached_names_still_answer(topo):
    """Case 1: questions in flight (and so descriptors and memory) are bounded."""
    assert topo.dig(topo.client, ROUTER_LAN, "www.example.test", "+short") == "203.0.113.10"
    pid = topo.procs["dnsd"].pid  # ip netns exec execs: this is dnsd itself

    def probe():
        cached = topo.dig(topo.client, ROUTER_LAN, "www.example.test", "+short", timeout=10)
        local = topo.dig(topo.client, ROUTER_LAN, "midna.lan", "+short", timeout=10)
        return cached == "203.0.113.10" and local == CLIENT

    fig = dnsflood.flood(topo.client, ROUTER_LAN, pid, 12000, 3000, "slow.test", probe)
    print(fig.summary())
    assert fig.sent == 12000
    assert fig.probes_answered == len(fig.answer_seconds) >= 3, fig.summary()
    # 150 questions, each with at most 4 attempts (2 upstreams, 2 rounds), plus listeners.
    assert fig.max_descriptors < 150 * 4 + 100, fig.summary()
    assert topo.metrics()["dnsd_shed_total"] > 0
    # Once the flood is over the bound frees up again.
    wait_for(lambda: topo.metrics()["dnsd_inflight"] == 0, "the questions in flight to end", 15)
    assert topo.dig(topo.client, ROUTER_LAN, "other.example.test", "+short") == "203.0.113.11"


def test_a_bad_interfaces_json_keeps_the_last_good_address_and_new_names_resolve(topo):
    """Case 7: dnsd reads interfaces.json with netconfigd's schema and keeps the last good."""
    # interfaces.json names lan0's second address: without it, dnsd would fall back to
    # the kernel's first one (ROUTER_LAN).
    topo.ip(topo.router, "addr", "add", f"{CONFIGURED}/24", "dev", "lan0")
    interfaces = topo.perm / "interfaces.json"
    interfaces.write_text(
        json.dumps({"interfaces": [{"name": "lan0", "addr": f"{CONFIGURED}/24"}]})
    )
    dnsd = topo.procs["dnsd"]
    dnsd.send_signal(signal.SIGUSR1)
    wait_for(
        lambda: topo.dig(topo.client, ROUTER_LAN, "gateway.lan", "+short") == CONFIGURED,
        "the router's name from interfaces.json",
        15,
        logs=[topo.dnsd_log],
    )
    tracebacks = topo.dnsd_log.read_text().count("Traceback")
    leases = json.loads((topo.perm / "dhcp4d/leases.json").read_text())
    for n, bad in enumerate(
        ('{"interfaces": [{"name": "lan0", "addr": 42}]}', '{"interfaces": 5}', "{")
    ):
        interfaces.write_text(bad)
        leases.append({"num": 50 + n, "addr": f"192.168.42.{50 + n}", "hostname": f"new{n}",
                       "hardware_addr": f"02:73:53:00:cb:0{n}", "hostname_override": "",
                       "expiry": "2099-01-01T00:00:00Z"})  # fmt: skip
        (topo.perm / "dhcp4d/leases.json").write_text(json.dumps(leases))
        dnsd.send_signal(signal.SIGUSR1)
        wait_for(
            lambda n=n: (
                topo.dig(topo.client, ROUTER_LAN, f"new{n}.lan", "+short") == f"192.168.42.{50 + n}"
            ),
            f"new{n}.lan while interfaces.json is bad",
            15,
            logs=[topo.dnsd_log],
        )
        assert topo.dig(topo.client, ROUTER_LAN, "gateway.lan", "+short") == CONFIGURED
    log = topo.dnsd_log.read_text()
    assert log.count("Traceback") == tracebacks and "last good" in log
    assert dnsd.poll() is None
