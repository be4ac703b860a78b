"""Servers the integration tests run themselves where the lab's peers do not fit."""

from __future__ import annotations

from pathlib import Path


def dnsmasq_dhcp(interface: str, dhcp_range: str, state: Path, *extra: str) -> list[str]:
    """argv of a DHCP-only dnsmasq on ``interface``: no DNS, no config file, no ping
    before offering, in the foreground; it logs every exchange to ``state``/dnsmasq.log
    (where "started" marks it ready) and keeps its lease and pid files beside it."""
    return [
        "dnsmasq",
        "--conf-file=/dev/null",
        "--keep-in-foreground",
        "--no-resolv",
        "--port=0",
        "--no-ping",
        f"--interface={interface}",
        "--log-dhcp",
        f"--dhcp-range={dhcp_range}",
        f"--dhcp-leasefile={state / 'dnsmasq.leases'}",
        f"--pid-file={state / 'dnsmasq.pid'}",
        f"--log-facility={state / 'dnsmasq.log'}",
        *extra,
    ]
