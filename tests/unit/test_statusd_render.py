"""The status page's HTML: values shown, everything escaped, section errors, links."""

from __future__ import annotations

import contextlib
import json
import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router7.runtime.statefile import write_json_atomic
from router7.statusd import collect, render
from router7.statusd.diag import parse, unavailable
from router7.statusd.links import Links, url_host
from tests.unit.test_statusd_collect import LAN, NOW, lease4, lease6, perm_tree

LINKS = Links("192.168.42.1", 80)
HEALTHY = {
    "state": "ok",
    "healthy": True,
    "first_error": "",
    "checks": [{"name": "link/uplink0", "ok": True, "status": "up", "counts": True}],
}


class Values(HTMLParser):
    """Text of every element with a data-k attribute, by key (what the browser test reads)."""

    def __init__(self, text: str):
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self.stack: list[str | None] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "meta", "link", "input", "img"):
            return
        key = dict(attrs).get("data-k")
        self.stack.append(key)
        if key:
            self.values.setdefault(key, []).append("")

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for key in self.stack:
            if key:
                self.values[key][-1] += data


def page(perm, diag=HEALTHY, run=None) -> str:
    status = collect.collect(perm, run or perm / "run", NOW)
    status["diag"] = diag
    return render.page(status, LINKS).decode()


def test_values_appear(tmp_path):
    text = page(perm_tree(tmp_path))
    v = Values(text).values
    assert v["v4-address"] == ["192.0.2.23/25"]
    assert v["v4-gateway"] == ["192.0.2.1"]
    assert v["v4-dns"] == ["198.51.100.53", "198.51.100.54"]
    assert v["v4-expiry"] == ["in 30 min"]
    assert v["v6-prefix"] == ["2001:db8:100::/48"]
    assert v["v6-prefix-valid"] == ["in 1 h 00 min"]
    assert v["v6-previous"] == ["2001:db8:200::/48"]
    assert v["lan-addr"] == ["192.168.42.2", "192.168.42.23", "192.168.42.5"]
    assert v["lan-hostname"] == ["printer", "laptop", "kids-switch"]
    assert v["lan-vendor"][2] == "Nintendo"
    assert v["healthy"] == ["✔ Everything checked works"]
    assert 'datetime="2026-11-23T12:30:00Z"' in text
    assert 'name="viewport"' in text and "prefers-color-scheme:dark" in text
    assert "<script" not in text  # no JavaScript at all


def test_every_value_is_escaped(tmp_path):
    evil = '<script>alert("x")</script>'
    leases = [
        dict(LAN[0], hostname=evil, vendor_class="<b>v</b>"),
        # dhcp4d's reader refuses this entry: its error (with the MAC) is shown instead
        dict(LAN[0], hardware_addr='02:00"><img src=x>'),
    ]
    write_json_atomic(tmp_path / "dhcp4d/leases.json", leases)
    diag = {
        "state": "ok",
        "healthy": False,
        "first_error": "tcp4: <a>: refused & gone",
        "checks": [{"name": "<i>x</i>", "ok": False, "status": "'<u>'", "counts": True}],
    }
    text = page(tmp_path, diag)
    assert "<script>" not in text and "<img" not in text and "<b>v" not in text
    assert "<i>x" not in text and "<u>" not in text and "<a>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "02:00&quot;&gt;&lt;img src=x&gt;" in text  # in the refused entry's error
    assert Values(text).values["first-error"] == ["✘ tcp4: <a>: refused & gone"]


def test_missing_files_say_no_lease_yet(tmp_path):
    text = page(tmp_path)
    assert "No DHCPv4 lease yet." in text and "No DHCPv6 lease yet." in text
    assert "No LAN leases yet." in text
    assert f"<code>{tmp_path}/dhcp4/wire/lease.json</code> does not exist yet" in text
    assert "Cannot read" not in text


def test_broken_file_shows_path_and_field_and_the_rest_still_renders(tmp_path):
    perm = perm_tree(tmp_path)
    write_json_atomic(
        perm / "dhcp6/wire/lease.json", lease6(prefixes=[{"prefix": "2001:db8:100::1/48"}])
    )
    text = page(perm)
    [err] = Values(text).values["error"]
    assert err.startswith(f"Cannot read {perm}/dhcp6/wire/lease.json: field prefixes[0].prefix:")
    assert "not a network prefix" in err
    assert Values(text).values["v4-address"] == ["192.0.2.23/25"]  # the other sections stay


def test_broken_lan_entry_shows_field_beside_the_good_leases(tmp_path):
    write_json_atomic(tmp_path / "dhcp4d/leases.json", [LAN[0], {"addr": 7, "hardware_addr": ""}])
    v = Values(page(tmp_path)).values
    assert v["lan-addr"] == ["192.168.42.23"]
    assert v["error"] == [
        f"Cannot read {tmp_path}/dhcp4d/leases.json: field [1].addr: "
        "expected an IP address as a string, got 7"
    ]


def test_expired_uplink_lease_is_marked(tmp_path):
    write_json_atomic(tmp_path / "dhcp4/wire/lease.json", lease4(expires_at="2026-11-23T11:55:00Z"))
    text = page(tmp_path)
    assert '<span class="tag bad">expired</span>' in text
    assert Values(text).values["v4-expiry"] == ["5 min 00 s ago"]


def test_diagd_not_answering(tmp_path):
    text = page(tmp_path, unavailable("http://127.0.0.1:7733/health.json", "connection refused"))
    v = Values(text).values
    assert v["diag-unavailable"] == ["diagd not answering"]
    assert "connection refused" in text


def test_diag_checks_listed_with_marks(tmp_path):
    diag = parse(
        b'{"healthy": false, "first_error": "ping4: default gateway: timed out",'
        b' "checks": [{"name": "link/uplink0", "ok": true, "status": "up", "counts": true},'
        b' {"name": "ping4: default gateway", "ok": false, "status": "timed out",'
        b' "counts": true}, {"name": "route6: default", "ok": false, "status": "none",'
        b' "counts": false}]}'
    )
    text = page(tmp_path, diag)
    assert re.findall(r'data-k="check" data-ok="(\w+)"', text) == ["true", "false", "false"]
    assert "not counted" in text
    assert Values(text).values["first-error"] == ["✘ ping4: default gateway: timed out"]


@pytest.mark.parametrize(
    "body", [b"nope", b"[]", b'{"healthy": "yes"}', b'{"healthy": true, "checks": [1]}']
)
def test_diag_parse_rejects_malformed(body):
    with pytest.raises(ValueError):
        parse(body)


def test_services_and_links(tmp_path):
    status = collect.collect(tmp_path, tmp_path / "run", NOW)
    status["services"][1]["running"] = True  # dhcp4
    status["services"][1]["uptime_seconds"] = 93784
    status["diag"] = HEALTHY
    links = Links("router7.lan", 8080, metrics_ports={"dnsd": 8053, "diagd": 7733})
    text = render.page(status, links).decode()
    assert 'data-name="dhcp4" data-running="true"' in text
    assert 'data-name="dnsd" data-running="false"' in text
    assert "1 d 2 h" in text
    assert 'href="http://router7.lan:8053/metrics"' in text
    assert 'href="http://router7.lan:8080/metrics"' in text  # statusd's own
    assert 'href="http://router7.lan:7733/"' in text  # diagd's check tree
    assert "http://router7.lan:8067" not in text  # dhcp4d not in this port map
    assert 'href="http://router7.lan:5080/capture.pcapng?live=0"' in text
    assert "ssh -p 5022 router7.lan | wireshark -k -i -" in text
    assert 'href="http://router7.lan:8077/backup.tar.gz"' in text


@pytest.mark.parametrize(
    ("header", "local", "want"),
    [
        (b"192.168.42.1", "192.168.42.1", "192.168.42.1"),
        (b"router7.lan:8080", "192.168.42.1", "router7.lan"),
        (b"[fd00::1]:80", "fd00::1", "[fd00::1]"),
        (None, "fe80::1%lan0", "[fe80::1]"),
        (None, "192.168.42.1", "192.168.42.1"),
        (b'evil"><x', "192.168.42.1", "192.168.42.1"),
        (b"[not-v6]", "10.0.0.1", "10.0.0.1"),
    ],
)
def test_url_host(header, local, want):
    assert url_host(header, local) == want


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5 s"), (65, "1 min 05 s"), (600, "10 min"), (3660, "1 h 01 min"), (90000, "1 d 1 h")],
)
def test_duration(seconds, text):
    assert render.duration(seconds) == text
    assert render.relative(seconds) == f"in {text}"
    assert render.relative(-seconds) == f"{text} ago"


def test_lease4_without_gateway(tmp_path):
    write_json_atomic(tmp_path / "dhcp4/wire/lease.json", lease4(router=None))
    assert Values(page(tmp_path)).values["v4-gateway"] == ["none"]


def test_diag_depth_indents_when_diagd_gives_it(tmp_path):
    diag = parse(
        b'{"healthy": true, "checks": [{"name": "a", "ok": true, "depth": 0},'
        b' {"name": "b", "ok": true, "depth": 2}, {"name": "c", "ok": true, "depth": "x"},'
        b' {"name": "d", "ok": true, "depth": 99}]}'
    )
    assert [c["depth"] for c in diag["checks"]] == [0, 2, 0, 8]
    text = page(tmp_path, diag)
    assert re.findall(r'<li class="depth(\d)" data-k="check"', text) == ["0", "2", "0", "8"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["healthy", "checks", "name", "ok", "depth", "x"]), children, max_size=5
        )
    ),
    max_leaves=20,
)


@settings(deadline=None)
@given(_JSON)
def test_diag_parse_fuzz_only_value_errors(value):
    try:
        section = parse(json.dumps(value).encode())
    except ValueError:
        return
    assert isinstance(section["healthy"], bool)
    render.diag({**section, "url": "u"}, LINKS)


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_diag_parse_fuzz_bytes(body):
    with contextlib.suppress(ValueError):  # anything else escaping is a bug
        parse(body)


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hostname=_TEXT, vendor=_TEXT)
def test_any_hostname_round_trips_through_the_html(tmp_path, hostname, vendor):
    """Escaping is complete: a parser gets back exactly the text, nothing becomes markup."""
    write_json_atomic(
        tmp_path / "dhcp4d/leases.json",
        [dict(LAN[0], hostname=hostname, vendor_class=vendor, hardware_addr="02:00:00:00:00:01")],
    )
    v = Values(page(tmp_path)).values
    assert v["lan-hostname"] == [hostname or "–"]
    assert v["lan-vendor"] == [vendor]
