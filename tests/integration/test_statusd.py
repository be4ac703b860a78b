"""The status page in the lab: the whole router (RouterServices) with a dhcpcd client on
the LAN; headless Chromium in the LAN namespace loads http://192.168.42.1/ and what it
shows is checked against the router's state files. Screenshots (phone, desktop, dark)
go to test-artifacts/ at the repository root.

Chromium runs as a plain command line (``--dump-dom``, ``--screenshot``) through
``ip netns exec``: no WebDriver and no Python dependency, and nothing is downloaded.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from router7.lab import Lab
from router7.lab.addresses import mac_for
from router7.lab.router import LAN_ADDRESS, RouterServices
from router7.runtime.notify import running_pid
from router7.statusd import collect
from tests.helpers.polling import log_files, wait_for
from tests.integration.conftest import lab_unavailable, session_prefix, start_router

pytestmark = [pytest.mark.root, pytest.mark.slow]

LAN_GW = LAN_ADDRESS.split("/")[0]
URL = f"http://{LAN_GW}/"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium")
NEEDED = {"netconfigd", "dhcp4", "dhcp6", "dhcp4d", "diagd", "statusd"}


class Values(HTMLParser):
    """Text and attributes of every element with a data-k attribute, by key."""

    def __init__(self, text: str):
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self.attrs: dict[str, list[dict]] = {}
        self.stack: list[str | None] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "meta", "link", "input", "img"):
            return
        a = dict(attrs)
        key = a.get("data-k")
        self.stack.append(key)
        if key:
            self.values.setdefault(key, []).append("")
            self.attrs.setdefault(key, []).append(a)

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for key in self.stack:
            if key:
                self.values[key][-1] += data


def wait(predicate, timeout, what, router=None):
    """wait_for every 0.5 s; on timeout, show the tails of the router's service logs."""
    logs = log_files(router.logs) if router is not None else ()
    return wait_for(predicate, what, timeout, interval=0.5, logs=logs)


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def chromium(lab: Lab, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium in lan1's namespace (as root it needs --no-sandbox)."""
    profile = tmp / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return lab.exec("lan1", *cmd, timeout=90, env={"HOME": str(tmp)})


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def router_lab(tmp_path_factory):
    reason = lab_unavailable()
    if reason:
        pytest.skip(reason)
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    lab = Lab(session_prefix("s"), lan_hosts=1)
    try:
        lab.up()
        router = start_router(lab, NEEDED)
        yield lab, router, tmp_path_factory.mktemp("statusd")
    finally:
        lab.down()


def settled(lab: Lab, router: RouterServices):
    """The state files once the uplink leases and lan1's LAN lease exist."""
    perm = router.perm
    mac = mac_for(lab.prefix, "lan1", "eth0")
    lease4 = wait(lambda: read_json(perm / "dhcp4/wire/lease.json"), 40, "a DHCPv4 lease", router)
    lease6 = wait(
        lambda: (
            (read_json(perm / "dhcp6/wire/lease.json") or {}).get("prefixes")
            and read_json(perm / "dhcp6/wire/lease.json")
        ),
        60,
        "a delegated prefix",
        router,
    )
    lan = wait(
        lambda: [
            x for x in read_json(perm / "dhcp4d/leases.json") or [] if x.get("hardware_addr") == mac
        ],
        60,
        "lan1's lease in dhcp4d/leases.json",
        router,
    )[0]
    return lease4, lease6, lan


def page_answers(lab: Lab) -> bool:
    r = lab.exec("lan1", "curl", "-sS", "--max-time", "5", URL, check=False)
    return r.returncode == 0 and "router7" in r.stdout


def test_chromium_shows_the_state_files(router_lab):
    lab, router, tmp = router_lab
    settled(lab, router)
    wait(lambda: page_answers(lab), 60, f"{URL} to answer from lan1", router)
    # A renewal may rewrite a lease file while the page loads: retry until the files
    # are the same before and after the page was rendered.
    for _ in range(5):
        before = settled(lab, router)
        dom = chromium(lab, tmp, "--dump-dom", URL).stdout
        if settled(lab, router) == before:
            break
    else:
        pytest.fail("the lease files kept changing")
    lease4, lease6, lan = before
    v = Values(dom)

    assert v.values["v4-address"] == [lease4["address"]]
    assert v.values["v4-gateway"] == [lease4["router"]]
    assert v.values["v4-dns"] == lease4["dns"]
    assert [a["datetime"] for a in v.attrs["v4-expiry"]] == [lease4["expires_at"]]
    assert v.values["v6-prefix"] == [p["prefix"] for p in lease6["prefixes"]]
    assert [a["datetime"] for a in v.attrs["v6-prefix-valid"]] == [
        p["valid_until"] for p in lease6["prefixes"]
    ]
    assert v.values["v6-dns"] == lease6["dns"]

    rows = {a["data-mac"]: i for i, a in enumerate(v.attrs["lease"])}
    i = rows[lan["hardware_addr"]]
    assert v.values["lan-addr"][i] == lan["addr"]
    assert v.values["lan-hostname"][i] == (lan.get("hostname_override") or lan["hostname"])
    assert v.values["lan-hostname"][i] == "lan1"  # dhcpcd -h lan1
    assert v.values["lan-mac"][i] == lan["hardware_addr"]

    shown = {a["data-name"]: a["data-running"] for a in v.attrs["service"]}
    assert list(shown) == list(collect.SERVICES)
    for name in ("netconfigd", "dhcp4", "dhcp6", "dhcp4d", "diagd", "statusd"):
        assert shown[name] == "true", name
        assert running_pid(router.run_dir, name) is not None
    # diagd answered (its verdict depends on the lab's reachability, not on us)
    assert "diag-unavailable" not in v.values
    assert v.values.get("check"), "no diag checks shown"
    assert "error" not in v.values and "missing" not in v.values


def test_screenshots(router_lab):
    lab, router, tmp = router_lab
    settled(lab, router)
    wait(lambda: page_answers(lab), 60, f"{URL} to answer from lan1", router)
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        "statusd-phone.png": ("400,1800", ()),
        "statusd-desktop.png": ("1280,1100", ()),
        "statusd-desktop-dark.png": (
            "1280,1100",
            ("--force-dark-mode", "--blink-settings=preferredColorScheme=0"),
        ),
    }
    for name, (size, extra) in shots.items():
        path = ARTIFACTS / name
        path.unlink(missing_ok=True)
        chromium(lab, tmp, f"--screenshot={path}", f"--window-size={size}", *extra, URL)
        assert png_size(path) == tuple(int(x) for x in size.split(","))


def test_status_json_matches_the_files(router_lab):
    lab, router, _ = router_lab
    lease4, lease6, lan = settled(lab, router)
    r = lab.exec("lan1", "curl", "-sS", "--max-time", "10", f"{URL}status.json")
    status = json.loads(r.stdout)
    assert status["uplink4"]["address"] == lease4["address"]
    assert [p["prefix"] for p in status["uplink6"]["prefixes"]] == [
        p["prefix"] for p in lease6["prefixes"]
    ]
    assert lan["addr"] in {x["addr"] for x in status["lan"]["leases"]}
    assert status["diag"]["state"] == "ok"


def test_not_reachable_from_outside(router_lab):
    lab, router, _ = router_lab
    lease4, _, _ = settled(lab, router)
    wan = str(ipaddress.ip_interface(lease4["address"]).ip)
    for node, url in (("isp", f"http://{wan}/"), ("internet", f"http://{wan}/")):
        probe = lab.exec(node, "curl", "-sS", "--max-time", "3", url, check=False)
        assert probe.returncode != 0, f"the status page answered {node} at {url}"
    # and the same curl works from the LAN, so the probe itself is sound
    assert page_answers(lab)
