"""The netlink monitor against a real kernel: events in a private network namespace.

A child process in its own namespace runs NetlinkMonitor on the real reactor,
changes the namespace with ip(8) and prints the changes it heard of.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

CHILD = textwrap.dedent(
    """
    import json, subprocess, sys
    from twisted.internet import reactor
    from router7.runtime.netlink import NetlinkMonitor, NetState

    heard = []
    steps = [
        "ip link add dummy7 type veth peer name peer7",
        "ip link set peer7 up",
        "ip link set dummy7 up",
        "ip addr add 192.168.77.1/24 dev dummy7",
        "ip -6 addr add fd77::1/64 dev dummy7 nodad",
        "ip route add default via 192.168.77.254",
        "ip link set dummy7 down",
    ]

    def changed(changes):
        heard.extend((c.kind, c.new) for c in changes)

    def step():
        if not steps:
            reactor.callLater(0.2, reactor.stop)
            return
        command = steps.pop(0)
        if subprocess.run(command.split()).returncode != 0:
            print(f"failed: {command}", file=sys.stderr)
            reactor.stop()
            sys.exit(1)
        reactor.callLater(0.2, step)

    state = NetState()
    monitor = NetlinkMonitor(reactor, state, changed)
    monitor.start()
    reactor.callWhenRunning(step)
    reactor.run()
    if steps:
        sys.exit(1)
    link = state.link("dummy7")
    print(json.dumps({
        "heard": heard,
        "up": link.up,
        "addresses": sorted(str(a.interface) for a in state.addresses("dummy7")),
        "default4": [r.gateway for r in state.default_routes(4, "dummy7")],
    }))
    """
)


@pytest.fixture
def netns():
    name = f"r7nl{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=False)


def test_changes_arrive_as_events_and_the_view_follows(netns):
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root / "services")}
    out = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", CHILD],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    got = json.loads(out.stdout.splitlines()[-1])
    heard = [tuple(x) for x in got["heard"]]
    assert ("link", True) in heard and ("address", True) in heard and ("route", True) in heard
    assert got["up"] is False
    # Down, the link keeps its IPv4 address and the kernel drops the IPv6 one (an event).
    assert got["addresses"] == ["192.168.77.1/24"]
    assert ("address", False) in heard
    # The link went down: its IPv4 routes left without an RTM_DELROUTE of their own.
    assert got["default4"] == []
