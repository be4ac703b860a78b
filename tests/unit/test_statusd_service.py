"""router7-statusd's command line and its links' ports."""

from __future__ import annotations

import pytest

from router7.runtime import ports
from router7.statusd.links import Links
from router7.statusd.service import StatusdService


def test_defaults():
    args = StatusdService.parser().parse_args([])
    assert args.http_port == 80
    assert args.diagd_url == "http://127.0.0.1:7733/health.json"
    assert args.metrics == []


def test_links_use_the_ports_every_service_defaults_to():
    links = Links("192.168.42.1", 80)
    for service, port in ports.HTTP.items():
        if service != "statusd":
            assert links.metrics(service) == f"http://192.168.42.1:{port}/metrics"
    assert (links.capture_port, links.capture_ssh_port) == (ports.HTTP["captured"], 5022)


def test_metrics_ports_override():
    args = StatusdService.parser().parse_args(["--metrics", "dhcp6=8069", "--metrics", "dnsd=0"])
    assert args.metrics == [("dhcp6", 8069), ("dnsd", 0)]


@pytest.mark.parametrize("bad", ["dhcp6", "=80", "dhcp6=x"])
def test_metrics_ports_rejects_garbage(bad, capsys):
    with pytest.raises(SystemExit):
        StatusdService.parser().parse_args(["--metrics", bad])
    assert "SERVICE=PORT" in capsys.readouterr().err
