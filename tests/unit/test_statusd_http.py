"""statusd's HTTP: /status.json shape, the page, /metrics, LAN-only, diagd timeouts."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry
from twisted.internet import defer, task
from twisted.internet.error import ConnectionRefusedError

from router7.runtime import notify
from router7.statusd import collect
from router7.statusd.diag import DiagClient
from router7.statusd.http import Metrics, Status, links_factory, make_site
from tests.helpers import web
from tests.unit.test_statusd_collect import NOW, perm_tree


class FakeDiag:
    def __init__(self, section):
        self.section = section

    def fetch(self):
        return defer.succeed(self.section)


HEALTHY = {"state": "ok", "healthy": True, "first_error": "", "checks": [], "url": "u"}


def make(tmp_path, diag=HEALTHY, perm=None):
    clock = task.Clock()
    clock.advance(NOW.timestamp())
    registry = CollectorRegistry()
    status = Status(
        perm or perm_tree(tmp_path),
        tmp_path / "run",
        FakeDiag(diag),
        clock,
        Metrics(registry),
        links=links_factory(80),
    )
    return make_site(status, registry)


def get(site, path: bytes, client="192.168.42.10", host=b"192.168.42.1"):
    request, body = web.get(site, path, client, [(b"host", host)])
    assert request.finished
    return request, body


def test_status_json_shape(tmp_path):
    notify.register(tmp_path / "run", "dhcp6")
    request, body = get(make(tmp_path), b"/status.json")
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"application/json"]
    status = json.loads(body)
    assert set(status) == {
        "generated_at",
        "services",
        "uplink4",
        "uplink6",
        "failover",
        "lan",
        "diag",
        "system",
    }
    assert status["generated_at"] == "2026-11-23T12:00:00Z"
    assert status["uplink4"]["address"] == "192.0.2.23/25"
    assert status["uplink4"]["state"] == "ok"
    assert status["uplink6"]["prefixes"][0]["prefix"] == "2001:db8:100::/48"
    assert {x["addr"] for x in status["lan"]["leases"]} == {
        "192.168.42.2",
        "192.168.42.23",
        "192.168.42.5",
    }
    assert [s["name"] for s in status["services"]] == list(collect.SERVICES)
    running = {s["name"] for s in status["services"] if s["running"]}
    assert running == {"dhcp6"}
    assert status["diag"]["healthy"] is True


def test_page_is_html_with_links_for_the_host_asked(tmp_path):
    request, body = get(make(tmp_path), b"/", host=b"router7.lan")
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert request.responseHeaders.getRawHeaders(b"cache-control") == [b"no-store"]
    text = body.decode()
    assert "192.0.2.23/25" in text
    assert 'href="http://router7.lan:8077/backup.tar.gz"' in text
    assert 'href="http://router7.lan/metrics"' in text  # port 80 needs no :80


def test_broken_files_are_a_page_not_a_500(tmp_path):
    perm = tmp_path / "perm"
    for rel in ("dhcp4/wire/lease.json", "dhcp6/wire/lease.json", "dhcp4d/leases.json"):
        (perm / rel).parent.mkdir(parents=True, exist_ok=True)
        (perm / rel).write_bytes(b"\xff\x00 not json")
    site = make(tmp_path, perm=perm)
    request, body = get(site, b"/")
    assert request.responseCode in (None, 200)
    assert body.decode().count("Cannot read") == 3
    _, metrics = get(site, b"/metrics")
    for section in ("uplink4", "uplink6", "lan"):
        assert f'statusd_state_file_errors_total{{section="{section}"}} 1.0' in metrics.decode()


def test_metrics_count_requests(tmp_path):
    site = make(tmp_path)
    get(site, b"/")
    get(site, b"/")
    get(site, b"/status.json")
    _, body = get(site, b"/metrics")
    text = body.decode()
    assert 'statusd_requests_total{page="html"} 2.0' in text
    assert 'statusd_requests_total{page="json"} 1.0' in text


def test_public_clients_are_refused(tmp_path):
    site = make(tmp_path)
    for path in (b"/", b"/status.json", b"/metrics"):
        request, body = get(site, path, client="203.0.113.7")
        assert request.responseCode == 403, path
        assert b"192.0.2.23" not in body


def test_unknown_path_is_404(tmp_path):
    request, _ = get(make(tmp_path), b"/nope")
    assert request.responseCode == 404


class HangingAgent:
    def __init__(self):
        self.requests = []

    def request(self, method, uri, headers=None, body=None):
        self.requests.append(uri)
        return defer.Deferred()


class RefusingAgent:
    def request(self, method, uri, headers=None, body=None):
        return defer.fail(ConnectionRefusedError("connection refused"))


def test_diag_client_times_out():
    clock = task.Clock()
    agent = HangingAgent()
    client = DiagClient(clock, "http://127.0.0.1:7733/health.json", timeout=2.0, agent=agent)
    got = []
    client.fetch().addCallback(got.append)
    assert agent.requests == [b"http://127.0.0.1:7733/health.json"]
    clock.advance(1.9)
    assert got == []
    clock.advance(0.2)
    assert got == [
        {
            "state": "unavailable",
            "url": "http://127.0.0.1:7733/health.json",
            "reason": "no answer within 2s",
        }
    ]


def test_diag_client_refused():
    got = []
    DiagClient(task.Clock(), "http://x/", agent=RefusingAgent()).fetch().addCallback(got.append)
    assert got[0]["state"] == "unavailable" and "refused" in got[0]["reason"]


def test_diagd_unavailable_is_counted(tmp_path):
    site = make(tmp_path, diag={"state": "unavailable", "url": "u", "reason": "r"})
    _, body = get(site, b"/")
    assert b"diagd not answering" in body
    _, metrics = get(site, b"/metrics")
    assert b"statusd_diagd_unavailable_total 1.0" in metrics


def test_a_rendering_bug_is_a_short_500_not_a_hang_or_a_traceback(tmp_path):
    site = make(tmp_path, diag={"state": "ok"})  # no "healthy": render.verdict raises KeyError
    request, body = get(site, b"/")
    assert request.responseCode == 500
    assert body == b"internal error; see router7-statusd's log\n"
