"""Fixtures for integration tests against a router7-lab (network namespaces).

- `lab`: one lab per test session (prefix `t<pid>`), brought up once and torn
  down at the end; before each test any peer a previous test stopped is
  restarted. Skips when not root or when ip/kea are missing.
- `wait_until`: poll a predicate with a timeout.
- `host_resolv_conf`: the host's /etc/resolv.conf as read when the session
  started (the lab must never change it).
- `start_router(lab, needed)`: router7's services and the LAN clients in a lab;
  a needed service missing from the checkout fails the test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from router7.lab import PEER_NAMES, Lab, LabError
from router7.lab.netns import which
from router7.lab.router import RouterServices, start_lan_clients
from router7.lab.topology import REQUIRED_TOOLS
from tests.helpers.polling import wait_for

RESOLV_CONF = Path("/etc/resolv.conf")
# Read at import, i.e. before any lab of this session exists.
_HOST_RESOLV_CONF = RESOLV_CONF.read_bytes() if RESOLV_CONF.exists() else None


def lab_unavailable() -> str | None:
    """Why lab tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "router7-lab needs root (network namespaces, veths, daemons)"
    missing = [t for t in (*REQUIRED_TOOLS, "dhclient", "dig", "curl") if not which(t)]
    if missing:
        return f"router7-lab needs {', '.join(missing)} (apt: kea, dnsmasq, radvd, ...)"
    return None


def session_prefix(suffix: str = "") -> str:
    """A lab prefix unique to this pytest process, short enough for any name."""
    return f"t{os.getpid() % 100000}{suffix}"


def start_router(lab: Lab, needed: set[str]) -> RouterServices:
    """Start router7's services in `lab`'s router, then the LAN clients.

    A service of `needed` missing from the checkout fails the test: that can only
    be a packaging regression, never a reason to skip.
    """
    router = RouterServices(lab)
    missing = needed - {s.name for s in router.services()}
    if missing:
        pytest.fail(f"not importable from this checkout: router7 {sorted(missing)}")
    router.start()
    start_lan_clients(lab)
    return router


def read_json(path: Path):
    """A state file the router's services write, or None while it is missing or half
    there (the tests poll it)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@pytest.fixture(scope="session")
def host_resolv_conf() -> bytes | None:
    return _HOST_RESOLV_CONF


@pytest.fixture(scope="session")
def lab_session() -> Iterator[Lab]:
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    lab = Lab(session_prefix(), lan_hosts=1)
    try:
        lab.up()
    except LabError:
        lab.down()
        raise
    yield lab
    lab.down()
    now = RESOLV_CONF.read_bytes() if RESOLV_CONF.exists() else None
    assert now == _HOST_RESOLV_CONF, "the lab changed the host's /etc/resolv.conf"


@pytest.fixture
def lab(lab_session: Lab) -> Lab:
    """The session's lab with every peer running (tests may stop some)."""
    if not all(lab_session.peer_running(p) for p in PEER_NAMES):
        lab_session.up()
    return lab_session


def _wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.1, what: str = ""
) -> object:
    """Return predicate()'s first truthy value; fail the test after `timeout` s."""
    return wait_for(predicate, what, timeout, interval=interval)


@pytest.fixture
def wait_until() -> Callable[..., object]:
    """wait_until(predicate, timeout=10, interval=0.1, what="") -> truthy value."""
    return _wait_until
