"""diagd's HTTP: /health.json shape, the HTML tree, /metrics, LAN-only clients."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet import task

from router7.diagd import checks, config, icmp
from router7.diagd.http import make_site
from router7.diagd.tree import Check, CheckFailed, Evaluator
from tests.helpers import web


def fail(msg):
    def probe():
        raise CheckFailed(msg)

    return probe


def get(site, path: bytes, client="192.168.42.10"):
    request, body = web.get(site, path, client)
    assert request.finished
    return request, body


def site_for(tree):
    ev = Evaluator(lambda: tree, task.Clock())
    return make_site(ev)


def test_health_json_healthy_and_unhealthy():
    _, body = get(site_for([Check("link/uplink0", lambda: "up")]), b"/health.json")
    obj = json.loads(body)
    assert obj["healthy"] is True and obj["first_error"] == ""

    tree = [
        Check("link/uplink0", lambda: "up", [Check("tcp4: 203.0.113.10:80", fail("refused"))]),
        Check("lan/lan0", fail("no address")),
    ]
    request, body = get(site_for(tree), b"/health.json")
    obj = json.loads(body)
    assert request.responseCode in (None, 200)
    assert obj["healthy"] is False
    assert obj["first_error"] == "tcp4: 203.0.113.10:80: refused"
    assert [c["name"] for c in obj["checks"]] == [
        "link/uplink0",
        "tcp4: 203.0.113.10:80",
        "lan/lan0",
    ]


def test_html_tree_marks_and_escapes():
    tree = [Check("link/<uplink0>", lambda: "up", [Check("child", fail("x & y"))])]
    request, body = get(site_for(tree), b"/")
    text = body.decode()
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert 'name="viewport"' in text
    assert "✔" in text and "✘" in text
    assert "link/&lt;uplink0&gt;" in text and "x &amp; y" in text
    assert "child: x &amp; y" in text  # the verdict names the first error


def test_metrics_evaluate_and_export_each_check():
    tree = [Check("a", lambda: "ok", [Check("b", fail("down"))])]
    _, body = get(site_for(tree), b"/metrics")
    text = body.decode()
    assert "diagd_healthy 0.0" in text
    assert 'diagd_check_ok{check="a"} 1.0' in text
    assert 'diagd_check_ok{check="b"} 0.0' in text


def test_public_clients_are_refused():
    request, body = get(site_for([]), b"/health.json", client="203.0.113.10")
    assert request.responseCode == 403 and b"forbidden" in body


class FakeProbes(checks.Probes):
    def __init__(self):
        super().__init__(None, None, "uplink0", "lan0")


def names(results):
    return [c.name for root in results for c in _walk(root)]


def _walk(check):
    yield check
    for c in check.children:
        yield from _walk(c)


def test_tree_layout_and_targets_per_family():
    cfg = config.Config(
        targets=(
            config.parse_target("203.0.113.10:80"),
            config.parse_target("[2001:db8:ffff::10]:80"),
            config.parse_target("www.example.test:443"),
        ),
        dns_server="198.51.100.53",
    )
    tree = checks.build(cfg, FakeProbes())
    assert names(tree) == [
        "link/uplink0",
        "dhcp4: lease",
        "route4: default",
        "ping4: default gateway",
        "tcp4: 203.0.113.10:80",
        "tcp4: www.example.test:443",
        "dhcp6: delegated prefix",
        "route6: default",
        "ping6: default gateway",
        "tcp6: [2001:db8:ffff::10]:80",
        "tcp6: www.example.test:443",
        "lan/lan0",
        "dns: 198.51.100.53",
        "dhcp4d: pool",
        "perm: persistent",
        "failover: active uplink",
    ]
    no_v6 = checks.build(config.Config(ipv6=False), FakeProbes())
    uncounted = {c.name for c in _walk(no_v6[0]) if not c.counts}
    assert uncounted == {"dhcp6: delegated prefix", "route6: default"}


def test_parse_target():
    assert config.parse_target("[2001:db8::1]:80") == config.Target("2001:db8::1", 80)
    assert config.parse_target("a.b:8080").families == (4, 6)
    assert config.parse_target("10.0.0.1:1").families == (4,)
    for bad in ("nohost", "a:0", "a:99999", "2001:db8::1:80", "[nope]:80", "a:b"):
        try:
            config.parse_target(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_config_file_and_flags(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"targets": ["192.0.2.9:22"], "dns_name": "x.test", "ipv6": false}')
    cfg = config.load(path)
    assert cfg.targets == (config.Target("192.0.2.9", 22),) and not cfg.ipv6
    assert cfg.dns_name == "x.test" and cfg.dns_server is None

    class Flags:
        target = ["[2001:db8::2]:80"]
        dns_server = "192.168.42.1"
        dns_name = None
        no_ipv6 = False

    cfg = config.load(path, Flags)
    assert cfg.targets == (config.Target("2001:db8::2", 80),)
    assert cfg.dns_server == "192.168.42.1" and cfg.dns_name == "x.test"
    assert config.load(tmp_path / "absent.json").targets == (config.Target("www.google.ch", 80),)


def test_icmp_echo_round_trip():
    req = icmp.encode_request(4, 0x1234, 1)
    reply = bytes([0]) + req[1:]  # type 0: echo reply, same id/seq
    assert icmp.decode_reply(4, reply, raw=False) == (0x1234, 1)
    ip_header = bytes([0x45]) + bytes(19)
    assert icmp.decode_reply(4, ip_header + reply, raw=True) == (0x1234, 1)
    req6 = icmp.encode_request(6, 7, 1)
    assert req6[0] == 128
    assert icmp.decode_reply(6, bytes([129]) + req6[1:], raw=True) == (7, 1)
    assert icmp.decode_reply(4, req, raw=False) is None  # our own request is not a reply


def test_icmp_echo_requests_are_what_scapy_builds():
    """diagd packs echo requests itself (no scapy import in the daemon); scapy agrees."""
    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest

    assert icmp.encode_request(4, 0xBEEF, 9) == bytes(ICMP(type=8, id=0xBEEF, seq=9) / icmp.PAYLOAD)
    assert icmp.encode_request(6, 0xBEEF, 9) == bytes(
        ICMPv6EchoRequest(cksum=0, id=0xBEEF, seq=9, data=icmp.PAYLOAD)
    )
    reply6 = bytes(ICMPv6EchoReply(cksum=0, id=3, seq=4, data=b"x"))
    assert icmp.decode_reply(6, reply6, raw=False) == (3, 4)


@given(st.binary(max_size=80), st.sampled_from([4, 6]), st.booleans())
def test_icmp_decoder_never_raises(data, version, raw):
    got = icmp.decode_reply(version, data, raw)
    assert got is None or (isinstance(got[0], int) and isinstance(got[1], int))
