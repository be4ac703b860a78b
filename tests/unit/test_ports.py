"""Ports in one place: every service's default and both docs' tables come from runtime.ports."""

import importlib
import re
from pathlib import Path

import pytest

from router7.runtime import ports
from router7.runtime.service import Service

DOCS = Path(__file__).parents[2] / "docs"


def service_class(name: str) -> type[Service]:
    module = importlib.import_module(f"router7.{name}.service")
    return next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Service) and v.name == name
    )


@pytest.mark.parametrize("name", sorted(ports.HTTP))
def test_every_service_defaults_to_its_port_under_one_flag_name(name):
    args = service_class(name).parser().parse_args([])
    assert args.http_port == ports.HTTP[name]


def test_dnsd_keeps_its_dns_port_flag():
    assert service_class("dnsd").parser().parse_args([]).port == ports.DNS


def test_architecture_ports_table_matches():
    text = (DOCS / "architecture.md").read_text()
    table = text[text.index("## Ports") : text.index("## Where it goes")]
    tcp = {int(p): rest for p, rest in re.findall(r"^\| tcp (\d+) \| (.*) \|$", table, re.M)}
    for name, port in ports.HTTP.items():
        assert tcp[port].startswith(name), (name, port)
    assert tcp[ports.CAPTURED_SSH].startswith("captured")
    assert f"| udp/tcp {ports.DNS} | dnsd |" in table
    assert len(tcp) == len(ports.HTTP) + 1


def test_metrics_doc_ports_match():
    text = (DOCS / "metrics.md").read_text()
    rows = dict(re.findall(r"^\| router7-(\w+) \| \*\*(\d+)\*\* \|", text, re.M))
    assert {name: int(port) for name, port in rows.items()} == ports.HTTP
    for name, port in ports.HTTP.items():
        assert f'targets: ["192.168.42.1:{port}"]\n        labels: {{service: {name}}}' in text
