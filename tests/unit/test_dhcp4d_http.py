"""The status page, /lease/, /sethostname and the metrics collector, without a listener."""

import base64
from ipaddress import IPv4Address

from prometheus_client import CollectorRegistry, generate_latest
from twisted.internet.task import Clock

from router7.dhcp4d.config import Config
from router7.dhcp4d.http import StatusPage, registry_for
from router7.dhcp4d.leases import Lease, LeaseTable
from router7.dhcp4d.oui import VendorDB
from router7.dhcp4d.pool import Pool
from router7.dhcp4d.server import Dhcp4Server
from router7.runtime.mgmt import management_site
from tests.helpers import web

T0 = 1_700_000_000.0


class App:
    """What service.Dhcp4dService offers the HTTP handlers."""

    def __init__(self):
        self.clock = Clock()
        self.clock.advance(T0)
        table = LeaseTable(Pool.for_interface("192.168.42.1/24"))
        table.load(
            [
                Lease(
                    IPv4Address("192.168.42.20"),
                    "7c:bb:8a:00:00:01",
                    "switch",
                    "",
                    T0 + 600,
                    T0 - 600,
                ),
                Lease(
                    IPv4Address("192.168.42.21"),
                    "02:73:53:00:00:02",
                    "oldphone",
                    "",
                    T0 - 60,
                    T0 - 1260,
                ),
                Lease(IPv4Address("192.168.42.5"), "02:73:53:00:00:03", "printer", "", None, None),
            ]
        )
        self.server = Dhcp4Server(self.clock, table, Config())
        self.vendors = VendorDB({"027353": "router7 test vendor"})
        self.changed = 0

    def leases(self):
        return self.server.table.all()

    def stats(self):
        return self.server.stats

    def lease_time(self):
        return 1200

    def set_hostname(self, mac, hostname):
        ok = self.server.table.set_hostname(mac, hostname, self.clock.seconds()) is not None
        self.changed += ok
        return ok


def render(root, path, client="192.168.42.20", method=b"GET", args=None, headers=None):
    req, body = web.get(
        root,
        path.encode(),
        client,
        [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
        method=method,
        args={k.encode(): v.encode() for k, v in (args or {}).items()},
    )
    return req, body.decode()


def test_status_page_lists_active_expired_and_static_leases_with_vendor():
    app = App()
    req, body = render(StatusPage(app), "/")
    assert req.responseCode in (None, 200)
    assert "DHCPv4 status" in body and "2 active of 3" in body
    for text in ("switch", "oldphone", "printer", "Nintendo", "router7 test vendor"):
        assert text in body
    assert body.index("printer") < body.index("switch") < body.index("oldphone")
    assert '<tr class="expired"><td>192.168.42.21' in body
    assert '<tr class="active"><td>192.168.42.20' in body


def test_public_clients_are_refused():
    def served():  # as the service serves it: through management_site's guard
        return management_site(StatusPage(App()), CollectorRegistry()).resource

    req, _ = render(served(), "/", client="198.51.100.7")
    assert req.responseCode == 403
    req, _ = render(served(), "/", client="127.0.0.1", headers={"X-Forwarded-For": "198.51.100.7"})
    assert req.responseCode == 403
    req, _ = render(served(), "/lease/switch", client="198.51.100.7")
    assert req.responseCode == 403
    req, body = render(served(), "/lease/switch", client="192.168.42.20")
    assert req.responseCode != 403 and "192.168.42.20" in body


def test_lease_by_hostname_and_active_header():
    app = App()
    req, body = render(StatusPage(app), "/lease/switch")
    assert '"addr": "192.168.42.20"' in body and '"hardware_addr": "7c:bb:8a:00:00:01"' in body
    # 600 s left of a 1200 s period: not renewed within the last third
    assert req.responseHeaders.getRawHeaders(b"x-lease-active") == [b"false"]
    app.server.table.lease_of("7c:bb:8a:00:00:01").expiry = T0 + 1100
    req, _ = render(StatusPage(app), "/lease/switch")
    assert req.responseHeaders.getRawHeaders(b"x-lease-active") == [b"true"]
    req, _ = render(StatusPage(app), "/lease/nosuchhost")
    assert req.responseCode == 404


def test_sethostname_renames_an_unexpired_lease_only():
    app = App()
    args = {"hardwareaddr": "7c:bb:8a:00:00:01", "hostname": "Living Room"}
    req, _ = render(StatusPage(app), "/sethostname", method=b"POST", args=args)
    assert req.responseCode == 302
    lease = app.server.table.lease_of("7c:bb:8a:00:00:01")
    assert lease.hostname == lease.hostname_override == "living-room" and app.changed == 1
    args = {"hardwareaddr": "02:73:53:00:00:02", "hostname": "x"}
    req, _ = render(StatusPage(app), "/sethostname", method=b"POST", args=args)
    assert req.responseCode == 404 and app.changed == 1


def test_metrics_report_leases_packets_drops_and_exhaustion():
    app = App()
    app.server.handle_bytes(b"garbage")
    app.server.stats.pool_exhausted = 3
    app.server.stats.received["discover"] = 5
    text = generate_latest(registry_for(app)).decode()
    assert "dhcp4d_leases_active 2.0" in text
    assert "non_expired_leases 2.0" in text
    assert 'dhcp4d_packets_dropped_total{reason="not_dhcp"} 1.0' in text
    assert 'dhcp4d_packets_received_total{type="discover"} 5.0' in text
    assert "dhcp4d_pool_exhausted_total 3.0" in text
    assert "dhcp4d_pool_size 253.0" in text


def test_sethostname_as_served_needs_the_admin_credential_and_a_same_origin_form(tmp_path):
    """Issue 16, case 5: no renames from any LAN host or from a page on another site."""
    from router7.runtime import auth

    app = App()
    served = management_site(StatusPage(app), CollectorRegistry(), perm=tmp_path).resource
    args = {"hardwareaddr": "7c:bb:8a:00:00:01", "hostname": "evil"}
    req, _ = render(served, "/sethostname", method=b"POST", args=args)
    assert req.responseCode == 401 and app.changed == 0  # no token exists yet: nobody may
    token, _ = auth.load_or_create(tmp_path)
    req, _ = render(served, "/sethostname", method=b"POST", args=args)
    assert req.responseCode == 401 and app.changed == 0
    basic = "Basic " + base64.b64encode(f"admin:{token}".encode()).decode()
    csrf = {"Authorization": basic, "Host": "router7.lan:8067", "Origin": "http://evil.example"}
    req, _ = render(served, "/sethostname", method=b"POST", args=args, headers=csrf)
    assert req.responseCode == 403 and app.changed == 0
    ok = {**csrf, "Origin": "http://router7.lan:8067"}
    req, _ = render(served, "/sethostname", method=b"POST", args=args, headers=ok)
    assert req.responseCode == 302 and app.changed == 1
    # Reading stays open to the LAN.
    req, body = render(served, "/")
    assert req.responseCode in (None, 200) and "DHCPv4 status" in body
