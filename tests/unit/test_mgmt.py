"""The management site: private clients only, on every path."""

from prometheus_client import CollectorRegistry

from router7.runtime.mgmt import _Forbidden, management_site
from tests.helpers import web


def test_management_site_refuses_public_clients_everywhere():
    site = management_site(registry=CollectorRegistry())
    for client in ("192.168.42.7", "127.0.0.1", "fe80::1%lan0", "::ffff:10.0.0.1", "fd00::7"):
        assert not isinstance(web.resolve(site, b"/metrics", client)[0], _Forbidden), client

    def refused(path, client, headers=()):
        leaf, request = web.resolve(site, path, client, headers)
        body = leaf.render(request)
        return request.responseCode == 403 and b"forbidden" in body

    for path in (b"/", b"/metrics", b"/no/such/page"):
        assert refused(path, "85.195.207.62")
    assert refused(b"/", "2a02:168:4a00::7")
    # a local reverse proxy forwarding a public client
    assert refused(b"/", "127.0.0.1", [(b"x-forwarded-for", b"203.0.113.9")])
    assert not refused(b"/", "127.0.0.1")


def test_metrics_show_the_registry_it_was_given():
    from prometheus_client import Counter

    registry = CollectorRegistry()
    Counter("testd_things", "things", registry=registry).inc(3)
    request, body = web.get(management_site(registry=registry), b"/metrics")
    assert b"testd_things_total 3.0" in body
    assert request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(b"text/plain")


def test_pages_index_children_and_404():
    from twisted.web.pages import errorPage

    from router7.runtime.mgmt import Pages

    index, child = errorPage(200, "index", ""), errorPage(200, "child", "")
    site = management_site(Pages(index, {b"x.json": child}), CollectorRegistry())
    assert b"index" in web.get(site, b"/")[1]
    assert b"child" in web.get(site, b"/x.json")[1]
    assert web.get(site, b"/nope")[0].responseCode == 404
