"""Where the other services' pages are: ports, and the host name the browser used."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from router7.runtime import ports

# Services with a page of their own at "/" on their metrics port.
PAGES = {"dhcp4d": "leases", "diagd": "check tree", "captured": "capture", "backupd": "backup"}

_HOSTNAME = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


@dataclass(frozen=True)
class Links:
    host: str  # as it goes into a URL: a name, a.b.c.d or [v6]
    own_port: int
    metrics_ports: dict[str, int] = field(default_factory=lambda: dict(ports.HTTP))
    capture_ssh_port: int = ports.CAPTURED_SSH

    @property
    def capture_port(self) -> int:
        return self.metrics_ports.get("captured", ports.HTTP["captured"])

    @property
    def backup_port(self) -> int:
        return self.metrics_ports.get("backupd", ports.HTTP["backupd"])

    @property
    def diagd_port(self) -> int:
        return self.metrics_ports.get("diagd", ports.HTTP["diagd"])

    def url(self, port: int, path: str = "/") -> str:
        return f"http://{self.host}{'' if port == 80 else f':{port}'}{path}"

    def metrics(self, service: str) -> str | None:
        if service == "statusd":
            return self.url(self.own_port, "/metrics")
        port = self.metrics_ports.get(service)
        return self.url(port, "/metrics") if port else None

    def page(self, service: str) -> str | None:
        port = self.metrics_ports.get(service)
        return self.url(port) if port and service in PAGES else None

    @property
    def ssh_host(self) -> str:
        return self.host.strip("[]")


def url_host(host_header: bytes | None, local_address: str) -> str:
    """The host part for links: the Host header the browser sent (router7.lan, an
    address), else the address the request arrived on. Anything odd is replaced by
    the local address, so a crafted Host header cannot point links elsewhere.
    """
    text = (host_header or b"").decode("ascii", "replace").strip()
    if text.startswith("["):
        inside = text[1 : text.find("]")] if "]" in text else ""
        try:
            return f"[{ipaddress.IPv6Address(inside)}]"
        except ValueError:
            pass
    else:
        name = text.rsplit(":", 1)[0] if text.count(":") == 1 else text
        if name and _HOSTNAME.match(name):
            return name
    return format_host(local_address)


def format_host(address: str) -> str:
    address = address.split("%")[0]  # a link-local zone cannot go into a URL usefully
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "router7"
    return f"[{ip}]" if ip.version == 6 else str(ip)
