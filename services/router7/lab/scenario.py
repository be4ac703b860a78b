"""What the VM scenarios in vm-tests/ share: reading the router's state through the
NixOS test-driver API.

Every function takes driver machines (`router`, `lan`, ...) and uses only their
`succeed`/`wait_until_succeeds`, so the scenarios run the same under NixOS' driver and
under router7-vmtest. The router's management ports answer private clients only, so
HTTP goes through the LAN host, as an owner's browser would.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from router7.runtime import ports
from router7.updated.outage import Outage, measure, ping_argv

LAN_GW = "192.168.42.1"
LAN_V4 = ipaddress.ip_network("192.168.42.0/24")
LEASE4 = "/perm/dhcp4/wire/lease.json"
LEASE6 = "/perm/dhcp6/wire/lease.json"
LAN_LEASES = "/perm/dhcp4d/leases.json"
# Default management ports: the units never pass port flags.
DHCP4_METRICS = ports.HTTP["dhcp4"]
DHCP6_METRICS = ports.HTTP["dhcp6"]
STATUSD = ports.HTTP["statusd"]
DIAGD = ports.HTTP["diagd"]

# Leases short enough that outages longer than a lease, T2 and renumbering at T1 fit in
# a few minutes, with room between the DHCPv4 T2 (79 s) and its end (90 s).
SHORT_LEASES = {
    "dhcp4_valid_lifetime": 90,
    "dhcp6_preferred_lifetime": 60,
    "dhcp6_valid_lifetime": 300,
}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def use_short_leases(isp) -> None:
    """Make the ISP's kea hand out `SHORT_LEASES` (call before the router boots).

    Under router7-vmtest `isp` is the lab's namespace and kea restarts with them; a
    NixOS isp node has them in its configuration already (see vm-tests/README.md).
    """
    lab = getattr(isp, "lab", None)
    if lab is None:
        return
    lab.addr = dataclasses.replace(lab.addr, **SHORT_LEASES)
    isp.systemctl("restart kea-dhcp4-server")
    isp.systemctl("restart kea-dhcp6-server")


def read_json(machine, path: str):
    return json.loads(machine.succeed(f"cat {path}"))


def addresses(machine, family: int, within: str | None = None) -> list:
    """Global addresses (ip_interface) of `machine`, optionally only those in `within`."""
    out = json.loads(machine.succeed(f"ip -j -{family} addr show scope global"))
    found = [
        ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
        for link in out
        for a in link.get("addr_info", [])
        if "local" in a
    ]
    if within is not None:
        net = ipaddress.ip_network(within)
        found = [a for a in found if a.ip in net]
    return found


def parse_time(text: str) -> float:
    """A state file's ISO 8601 UTC time as a Unix timestamp."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def now(machine) -> float:
    """`machine`'s clock (the VM's clock is what its lease times are measured by)."""
    return float(machine.succeed("date +%s.%N").strip())


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 900):
    """Poll `predicate` (every 2 s) until it returns something true, and return that.

    For conditions on parsed state, like NixOS' `retry`; raises naming `what`.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(2)


def renewed(router, path: str, old: dict):
    """The lease in `path` if the client got a new one since `old` (same file), else None."""
    lease = read_json(router, path)
    return lease if lease["obtained_at"] != old["obtained_at"] else None


def http_get(client, url: str, family: int = 4) -> str:
    return client.succeed(f"curl -{family} -sSf --max-time 10 '{url}'")


ADMIN_TOKEN = "/perm/admin/token"


def admin_token(router) -> str:
    """The router's admin credential (router7.runtime.auth), read as its owner would."""
    return router.succeed(f"cat {ADMIN_TOKEN}").strip()


def curl_admin(router, client, args: str) -> str:
    """``curl ARGS`` on ``client`` with the router's admin credential (Bearer): for POSTs
    and backups, which need it (issue 16)."""
    token = admin_token(router)
    return client.succeed(f"curl -sSf --max-time 30 -H 'Authorization: Bearer {token}' {args}")


def parse_metrics(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text exposition → {(name, ((label, value), ...)): value}."""
    samples = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or line.startswith("#"):
            continue
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def sent(client, port: int, metric: str, msg_type: str) -> float:
    """How many `msg_type` messages a DHCP client of the router has sent (0 if none yet)."""
    samples = parse_metrics(http_get(client, f"http://{LAN_GW}:{port}/metrics"))
    return samples.get((metric, (("type", msg_type),)), 0.0)


def dhcp4_sent(client, msg_type: str) -> float:
    return sent(client, DHCP4_METRICS, "dhcp4_packets_sent_total", msg_type)


def dhcp6_sent(client, msg_type: str) -> float:
    return sent(client, DHCP6_METRICS, "dhcp6_packets_sent_total", msg_type)


@dataclass(frozen=True)
class Online:
    """The router and one LAN host, up and addressed."""

    wan: ipaddress.IPv4Interface  # the router's DHCPv4 address on uplink0
    delegated: ipaddress.IPv6Network  # the /48
    lan64: ipaddress.IPv6Network  # its first /64, on lan0
    lan_v4: ipaddress.IPv4Interface  # the LAN host's DHCPv4 address
    lan_v6: ipaddress.IPv6Interface  # the LAN host's SLAAC address from lan64


def wait_online(router, lan) -> Online:
    """Wait until the router has both leases applied and `lan` both addresses."""
    router.wait_for_unit("router7.target")
    router.wait_until_succeeds(f"grep -q '\"address\"' {LEASE4}")
    router.wait_until_succeeds(f"grep -q '\"prefix\"' {LEASE6}")
    wan = ipaddress.ip_interface(read_json(router, LEASE4)["address"])
    delegated = ipaddress.ip_network(read_json(router, LEASE6)["prefixes"][0]["prefix"])
    lan64 = next(delegated.subnets(new_prefix=64))
    router.wait_until_succeeds(f"ip -4 addr show dev uplink0 | grep -qF ' {wan} '")
    router.wait_until_succeeds(f"ip -6 addr show dev lan0 | grep -qF ' {lan64[1]}/64 '")
    lan.wait_until_succeeds(f"ip -4 addr show to {LAN_V4} | grep -q inet")
    lan.wait_until_succeeds(f"ip -6 addr show to {lan64} | grep -q inet6")
    return Online(
        wan=wan,
        delegated=delegated,
        lan64=lan64,
        lan_v4=addresses(lan, 4, str(LAN_V4))[0],
        lan_v6=addresses(lan, 6, str(lan64))[0],
    )


def wait_internet(lan, internet_v4: str, internet_v6: str, body: str) -> None:
    """The LAN host fetches the internet host's page over IPv4 (NAT) and IPv6."""
    for family, host in ((4, internet_v4), (6, f"[{internet_v6}]")):
        got = lan.wait_until_succeeds(f"curl -{family} -sSf --max-time 5 http://{host}/")
        assert got == body, f"IPv{family}: {got!r}"


class LanPing:
    """ping(8) on a LAN host in the background, across an outage the scenario causes
    (a reboot, an update); ``outage()`` then measures it as router7-safe-update does.

    Both ends wait for replies to `host` through the router: ``start`` for the first,
    ``outage`` for `replies` in a row, so the gap measured is over."""

    def __init__(self, lan, host: str, log: str = "/tmp/router7-ping.log") -> None:
        self.lan, self.host, self.log = lan, host, log

    def start(self, timeout: int = 900) -> None:
        argv = " ".join(ping_argv(self.host))
        self.lan.succeed(f"{argv} > {self.log} 2>&1 & echo $! > {self.log}.pid")
        self.lan.wait_until_succeeds(f"grep -q 'bytes from' {self.log}", timeout=timeout)

    def outage(self, timeout: int = 900, replies: int = 5) -> Outage:
        self.lan.wait_until_succeeds(
            f"tail -n {replies} {self.log} | grep -c 'bytes from' | grep -qx {replies}",
            timeout=timeout,
        )
        self.lan.succeed(f"kill $(cat {self.log}.pid)")
        return measure(self.lan.succeed(f"cat {self.log}"))


def initramfs_unpack_seconds(router) -> float:
    """The last boot's initramfs unpack by the kernel's clock (nan if not logged): under
    TCG a kexec'd kernel's can be slow (docs/updates.md), so scenarios print it."""
    boot = router.get_console_log().rsplit("Linux version", 1)[-1]
    start = re.search(r"\[\s*([0-9.]+)\] Trying to unpack rootfs", boot)
    end = re.search(r"\[\s*([0-9.]+)\] Freeing initrd memory", boot)
    return float(end.group(1)) - float(start.group(1)) if start and end else float("nan")
