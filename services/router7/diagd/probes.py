"""The probes: what each check looks at on the real system (netlink, sockets, files).

Every probe returns a short status for the owner or raises CheckFailed with what
is wrong. Netlink queries are quick local syscalls and run on the reactor thread;
network probes are asynchronous and bounded by the tree's per-check timeout.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from pathlib import Path

from dnslib import QTYPE, RCODE, DNSRecord
from twisted.internet import defer, endpoints, error, protocol, threads

from router7.diagd import icmp, leases
from router7.diagd.tree import CheckFailed
from router7.failoverd import state as failover_state
from router7.runtime.netlink import NetState
from router7.runtime.statefile import StateFileError

# rtnetlink route protocols (linux/rtnetlink.h) worth naming in a status
RTPROT_NAMES = {2: "kernel", 3: "boot", 4: "static", 9: "from RA", 16: "from DHCP"}
AF = {4: socket.AF_INET, 6: socket.AF_INET6}


def link_status(net: NetState, ifname: str) -> str:
    """The link exists, is up and has carrier; status: packet and error counters."""
    link = net.link(ifname)
    if link is None:
        raise CheckFailed(f"{ifname} does not exist")
    if not link.up:
        raise CheckFailed(f"{ifname} is administratively down")
    if link.carrier == 0:
        raise CheckFailed(f"{ifname} has no carrier (cable unplugged?)")
    st = _counters(ifname)
    if st is None:
        return "up"
    errors = st["rx_errors"] + st["tx_errors"]
    drops = st["rx_dropped"] + st["tx_dropped"]
    return (
        f"up, {st['rx_packets']} rx, {st['tx_packets']} tx packets, "
        f"{errors} errors, {drops} dropped"
    )


def _counters(ifname: str) -> dict[str, int] | None:
    """The link's counters now (sysfs: the netlink view holds them only as of its last event)."""
    base = Path("/sys/class/net") / ifname / "statistics"
    names = ("rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped")
    try:
        return {n: int((base / n).read_text()) for n in names}
    except (OSError, ValueError):
        return None


def default_route(net: NetState, version: int, ifname: str) -> tuple[str, str]:
    """(gateway, how) of the best default route through ``ifname``; CheckFailed if none."""
    if net.link(ifname) is None:
        raise CheckFailed(f"{ifname} does not exist")
    routes = net.default_routes(version, ifname)
    if not routes:
        raise CheckFailed(f"no IPv{version} default route via {ifname}")
    best = min(routes, key=lambda r: r.priority)
    if not best.gateway:
        raise CheckFailed(f"the IPv{version} default route via {ifname} has no gateway")
    how = RTPROT_NAMES.get(best.protocol, f"proto {best.protocol}")
    return best.gateway, how


def route_status(net: NetState, version: int, ifname: str) -> str:
    gateway, how = default_route(net, version, ifname)
    return f"via {gateway} dev {ifname} ({how})"


def addresses(
    net: NetState, ifname: str
) -> list[ipaddress.IPv4Interface | ipaddress.IPv6Interface]:
    if net.link(ifname) is None:
        raise CheckFailed(f"{ifname} does not exist")
    return [a.interface for a in net.addresses(ifname)]


def lan_status(net: NetState, ifname: str) -> str:
    """``ifname`` has an IPv4 address (what DHCP and DNS for the LAN hang on)."""
    addrs = addresses(net, ifname)
    v4 = [a for a in addrs if a.version == 4]
    if not v4:
        raise CheckFailed(f"{ifname} has no IPv4 address")
    shown = v4 + [a for a in addrs if a.version == 6 and not a.ip.is_link_local]
    return ", ".join(str(a) for a in shown)


def lan_ipv4(net: NetState, ifname: str) -> str:
    for a in addresses(net, ifname):
        if a.version == 4:
            return str(a.ip)
    raise CheckFailed(f"{ifname} has no IPv4 address")


def now() -> datetime:
    return datetime.now(UTC)


def dhcp4d_pool(perm: Path, net: NetState, ifname: str) -> str:
    """dhcp4d's pool has room for new devices: fails when less than a quarter is free
    (dhcp4d then admits new devices only slowly: issue 16)."""
    from router7.dhcp4d import config as dhcp4d_config
    from router7.dhcp4d import store as dhcp4d_store
    from router7.dhcp4d.pool import Pool, PoolError
    from router7.dhcp4d.pressure import NewClientGate
    from router7.runtime.statefile import StateFileError

    v4 = [a for a in addresses(net, ifname) if a.version == 4]
    if not v4:
        raise CheckFailed(f"{ifname} has no IPv4 address")
    try:
        cfg = dhcp4d_config.load(perm / "dhcp4d" / "config.json")
        pool = Pool.for_interface(v4[0], cfg.pool_start, cfg.pool_end)
    except (StateFileError, PoolError) as e:
        raise CheckFailed(f"dhcp4d's pool: {e}") from None
    try:
        held, _ = dhcp4d_store.read(perm / "dhcp4d" / "leases.json")
    except StateFileError:
        held = []
    t = now().timestamp()
    busy = {x.addr for x in held if x.addr in pool and (x.expiry is None or x.expiry > t)}
    free = pool.size - len(busy)
    status = f"{free} of {pool.size} addresses free"
    if NewClientGate().low(free, pool.size):
        raise CheckFailed(f"pool (nearly) full: {status}")
    return status


def dhcp4_lease(perm: Path) -> str:
    return leases.dhcp4_status(perm / "dhcp4" / "wire" / "lease.json", now())


def dhcp6_lease(perm: Path) -> str:
    return leases.dhcp6_status(perm / "dhcp6" / "wire" / "lease.json", now())


def failover(perm: Path) -> str:
    """failoverd's verdict: which uplink is active and why; fails when no uplink is up."""
    try:
        state = failover_state.read(perm)
    except StateFileError as e:
        raise CheckFailed(str(e)) from None
    if state is None or len(state.uplinks) < 2:
        return "one uplink"
    up = [u.name for u in state.uplinks if u.up]
    summary = f"{state.active} active since {state.since} ({state.reason})"
    if not up:
        raise CheckFailed(f"no uplink is up; {summary}")
    return f"{summary}; up: {', '.join(up)}"


@defer.inlineCallbacks
def ping_gateway(reactor, net: NetState, version: int, ifname: str, timeout: float = 1.0):
    gateway, _ = default_route(net, version, ifname)
    rtt = yield icmp.ping(reactor, gateway, ifname, timeout)
    return f"{gateway}: reply in {rtt * 1000:.1f} ms"


class _Abort(protocol.Protocol):
    def connectionMade(self):
        self.transport.abortConnection()


@defer.inlineCallbacks
def tcp_connect(reactor, host: str, port: int, version: int, timeout: float = 3.0):
    """Connect to host:port over IPv``version`` and hang up; status: where and how fast."""
    try:
        literal = ipaddress.ip_address(host)
        address = str(literal)
    except ValueError:
        try:
            infos = yield threads.deferToThread(
                socket.getaddrinfo, host, port, AF[version], socket.SOCK_STREAM
            )
        except socket.gaierror as e:
            raise CheckFailed(f"cannot resolve {host} (IPv{version}): {e.strerror}") from None
        address = infos[0][4][0]
    cls = endpoints.TCP4ClientEndpoint if version == 4 else endpoints.TCP6ClientEndpoint
    factory = protocol.Factory.forProtocol(_Abort)
    factory.noisy = False  # no "Starting factory" log line per probe
    started = reactor.seconds()
    try:
        yield cls(reactor, address, port, timeout=timeout).connect(factory)
    except (defer.CancelledError, error.ConnectingCancelledError):
        raise defer.CancelledError() from None  # the tree's timeout: it reports it
    except error.TimeoutError:
        raise CheckFailed(f"no answer from {address} port {port} within {timeout:g}s") from None
    except Exception as e:
        reason = getattr(e, "osError", None) or e
        raise CheckFailed(f"cannot connect to {address} port {port}: {reason}") from None
    ms = (reactor.seconds() - started) * 1000
    shown = address if address == host else f"{host} ({address})"
    return f"connected to {shown} in {ms:.1f} ms"


class DnsClient(protocol.DatagramProtocol):
    """Asks resolvers one question at a time over one long-lived UDP port per family.

    A port per query would log two lines per probe (Twisted logs every UDP port
    start and stop); replies are matched to questions by server and DNS id.
    """

    noisy = False

    def __init__(self, reactor):
        self.reactor = reactor
        self.ports: dict[int, object] = {}
        self.pending: dict[tuple[str, int], defer.Deferred] = {}

    def _port(self, version: int):
        if version not in self.ports:
            proto = _Family(self)
            self.ports[version] = self.reactor.listenUDP(
                0, proto, interface="::" if version == 6 else ""
            )
        return self.ports[version]

    def received(self, data: bytes, addr) -> None:
        try:
            reply = DNSRecord.parse(data)
        except Exception:
            return  # garbage is not an answer; keep waiting
        host = ipaddress.ip_address(addr[0].split("%")[0])
        if isinstance(host, ipaddress.IPv6Address) and host.ipv4_mapped:
            host = host.ipv4_mapped
        d = self.pending.pop((str(host), reply.header.id), None)
        if d is not None:
            d.callback(reply)

    @defer.inlineCallbacks
    def query(self, server: str, name: str, port: int = 53):
        """Ask ``server`` for ``name`` A; an answer (even NXDOMAIN) means DNS is answering."""
        ip = ipaddress.ip_address(server)
        query = DNSRecord.question(name, "A")
        key = (str(ip), query.header.id)
        d = defer.Deferred(lambda _: self.pending.pop(key, None))
        self.pending[key] = d
        started = self.reactor.seconds()
        try:
            self._port(ip.version).write(query.pack(), (str(ip), port))
        except OSError as e:
            self.pending.pop(key, None)
            raise CheckFailed(f"cannot send to {server}: {e.strerror or e}") from None
        reply = yield d
        ms = (self.reactor.seconds() - started) * 1000
        rcode = RCODE.get(reply.header.rcode)
        if reply.header.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
            raise CheckFailed(f"{server} answered {name} with {rcode}")
        answers = [str(r.rdata) for r in reply.rr if r.rtype == QTYPE.A] or [rcode]
        return f"{server}: {name} is {', '.join(answers)} ({ms:.1f} ms)"

    def stop(self) -> None:
        for port in self.ports.values():
            port.stopListening()
        self.ports.clear()


class _Family(protocol.DatagramProtocol):
    noisy = False

    def __init__(self, client: DnsClient):
        self.client = client

    def datagramReceived(self, data, addr):
        self.client.received(data, addr)
