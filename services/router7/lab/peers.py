"""The lab's peers: the daemons that play the ISP and the internet.

Each peer is a `PeerSpec` (which node it runs in, how to write its config,
its command line, how to tell it is ready). Peers run as
`ip netns exec NS cmd...` in their own session, stdout/stderr appended to
logs/<name>.log, and are recorded in pids/<name>.pid so that any later
process (the CLI, a test) can stop or restart them individually.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from router7.lab import configs, procs
from router7.lab.netns import LabError, child_env, listening, need

if TYPE_CHECKING:
    from router7.lab.topology import Lab


@dataclass(frozen=True)
class PeerSpec:
    name: str
    node: str
    description: str
    # Writes config files, returns the argv (argv[0] resolved via PATH+sbin).
    prepare: Callable[[Lab], list[str]]
    # True once the peer serves; called repeatedly until the timeout.
    ready: Callable[[Lab], bool]
    env: Callable[[Lab], dict[str, str]] = field(default=lambda lab: {})


def _bound(node: str, proto: str, port: int, *addrs: str) -> Callable[[Lab], bool]:
    """Ready when every address in `addrs` (or any, if none) has `port` bound."""

    def check(lab: Lab) -> bool:
        local = listening(lab.ns(node), proto, port)
        hosts = {entry.rsplit(":", 1)[0].strip("[]").split("%")[0] for entry in local}
        return all(a in hosts for a in addrs) if addrs else bool(hosts)

    return check


def _kea_env(lab: Lab) -> dict[str, str]:
    # Without these kea writes pid and lock files under /run/kea, shared by labs.
    run = str(lab.paths.run)
    return {"KEA_PIDFILE_DIR": run, "KEA_LOCKFILE_DIR": run}


def _kea_ready(port: int) -> Callable[[Lab], bool]:
    # Kea logs its socket-open failures and keeps retrying; the socket bound on
    # the service port (a UDP fallback socket for raw v4, the real one for v6)
    # is what tells us it serves.
    return lambda lab: bool(listening(lab.ns("isp"), "udp", port))


# --- the optional second ISP (Lab(isp2=True)): its own kea and radvd, state in isp2/ ---


def isp2_paths(lab: Lab) -> configs.StatePaths:
    return configs.StatePaths(lab.state_dir / "isp2")


def _isp2_kea_env(lab: Lab) -> dict[str, str]:
    run = str(isp2_paths(lab).run)
    return {"KEA_PIDFILE_DIR": run, "KEA_LOCKFILE_DIR": run}


def _prep_isp2_kea(which: str) -> Callable[[Lab], list[str]]:
    def prep(lab: Lab) -> list[str]:
        from router7.lab.addresses import ISP2_ADDR

        st = isp2_paths(lab)
        st.mkdirs()
        conf = st.conf / f"kea-{which}.json"
        if which == "dhcp4":
            conf.write_text(configs.kea_dhcp4(ISP2_ADDR, st))
        else:
            hook = st.conf / "kea-pd-route.sh"
            hook.write_text(configs.pd_route_hook(st))
            hook.chmod(0o755)
            conf.write_text(configs.kea_dhcp6(ISP2_ADDR, st, hook))
        (st.run / f"kea-{which}.kea-{which}.pid").unlink(missing_ok=True)
        return [f"kea-{which}", "-c", str(conf)]

    return prep


def _prep_isp2_radvd(lab: Lab) -> list[str]:
    from router7.lab.addresses import ISP2_ADDR

    st = isp2_paths(lab)
    st.mkdirs()
    conf = st.conf / "radvd.conf"
    conf.write_text(configs.radvd(ISP2_ADDR))
    conf.chmod(0o644)
    pidfile = st.run / "radvd.pid"
    pidfile.unlink(missing_ok=True)
    return ["radvd", "-C", str(conf), "-p", str(pidfile), "-n", "-m", "stderr"]


def _prep_http(lab: Lab) -> list[str]:
    lab.paths.www.mkdir(parents=True, exist_ok=True)
    (lab.paths.www / "index.html").write_text(lab.addr.http_body)
    return configs.http_server(lab.paths, lab.addr.http_port)


def _prep_internet_dns(lab: Lab) -> list[str]:
    return configs.dnsmasq_authoritative(lab.addr, lab.paths)


def _prep_resolver(n: int) -> Callable[[Lab], list[str]]:
    def prep(lab: Lab) -> list[str]:
        a = lab.addr
        return configs.dnsmasq_resolver(
            a,
            lab.paths,
            f"isp-dns{n}",
            v4=a.isp_dns_v4[n - 1],
            v6=a.isp_dns_v6[n - 1],
            upstream=a.internet_v4,
        )

    return prep


def _prep_kea(which: str) -> Callable[[Lab], list[str]]:
    def prep(lab: Lab) -> list[str]:
        st = lab.paths
        conf = st.conf / f"kea-{which}.json"
        if which == "dhcp4":
            conf.write_text(configs.kea_dhcp4(lab.addr, st))
        else:
            hook = st.conf / "kea-pd-route.sh"
            hook.write_text(configs.pd_route_hook(st))
            hook.chmod(0o755)
            conf.write_text(configs.kea_dhcp6(lab.addr, st, hook))
        # A stale kea pid file whose pid got recycled makes kea refuse to start.
        (st.run / f"kea-{which}.kea-{which}.pid").unlink(missing_ok=True)
        binary = f"kea-{which}"
        return [binary, "-c", str(conf)]

    return prep


def _prep_radvd(lab: Lab) -> list[str]:
    conf = lab.paths.conf / "radvd.conf"
    conf.write_text(configs.radvd(lab.addr))
    conf.chmod(0o644)  # radvd refuses world-writable configs
    pidfile = lab.paths.run / "radvd.pid"
    pidfile.unlink(missing_ok=True)
    return ["radvd", "-C", str(conf), "-p", str(pidfile), "-n", "-m", "stderr"]


def _radvd_ready(lab: Lab) -> bool:
    # radvd writes its pid file once its ICMPv6 socket is set up.
    return (lab.paths.run / "radvd.pid").exists()


def _bound_attrs(node: str, proto: str, port: int, *attrs: str) -> Callable[[Lab], bool]:
    return lambda lab: _bound(node, proto, port, *(getattr(lab.addr, a) for a in attrs))(lab)


PEERS: dict[str, PeerSpec] = {
    p.name: p
    for p in (
        PeerSpec(
            "internet-http",
            "internet",
            "HTTP server (twisted web) on port 80",
            _prep_http,
            _bound("internet", "tcp", 80),
        ),
        PeerSpec(
            "internet-dns",
            "internet",
            "authoritative DNS (dnsmasq) for example.test",
            _prep_internet_dns,
            _bound_attrs("internet", "udp", 53, "internet_v4", "internet_v6"),
        ),
        PeerSpec(
            "isp-dns1",
            "isp",
            "ISP resolver 1 (dnsmasq) 198.51.100.53 / 2001:db8:1::53",
            _prep_resolver(1),
            _bound_attrs("isp", "udp", 53, "isp_dns1_v4", "isp_dns1_v6"),
        ),
        PeerSpec(
            "isp-dns2",
            "isp",
            "ISP resolver 2 (dnsmasq) 198.51.100.54 / 2001:db8:1::54",
            _prep_resolver(2),
            _bound_attrs("isp", "udp", 53, "isp_dns2_v4", "isp_dns2_v6"),
        ),
        PeerSpec(
            "isp-dhcp4",
            "isp",
            "DHCPv4 server (kea-dhcp4) on down0",
            _prep_kea("dhcp4"),
            _kea_ready(67),
            _kea_env,
        ),
        PeerSpec(
            "isp-dhcp6",
            "isp",
            "DHCPv6 server with prefix delegation (kea-dhcp6) on down0",
            _prep_kea("dhcp6"),
            _kea_ready(547),
            _kea_env,
        ),
        PeerSpec(
            "isp-radvd",
            "isp",
            "router advertisements (radvd) on down0, M+O flags",
            _prep_radvd,
            _radvd_ready,
        ),
        PeerSpec(
            "isp2-dhcp4",
            "isp2",
            "second ISP: DHCPv4 server (kea-dhcp4) on down0 (100.64.0.0/24)",
            _prep_isp2_kea("dhcp4"),
            lambda lab: bool(listening(lab.ns("isp2"), "udp", 67)),
            _isp2_kea_env,
        ),
        PeerSpec(
            "isp2-dhcp6",
            "isp2",
            "second ISP: DHCPv6 with prefix delegation from 2001:db8:200::/40",
            _prep_isp2_kea("dhcp6"),
            lambda lab: bool(listening(lab.ns("isp2"), "udp", 547)),
            _isp2_kea_env,
        ),
        PeerSpec(
            "isp2-radvd",
            "isp2",
            "second ISP: router advertisements (radvd) on down0",
            _prep_isp2_radvd,
            lambda lab: (isp2_paths(lab).run / "radvd.pid").exists(),
        ),
    )
}

# Peers of the optional second ISP: started only in a lab with isp2.
ISP2_PEERS: tuple[str, ...] = tuple(n for n in PEERS if PEERS[n].node == "isp2")
# The default lab's peers, in start order: upstreams before what forwards to them.
PEER_NAMES: tuple[str, ...] = tuple(n for n in PEERS if n not in ISP2_PEERS)
ALL_PEERS: tuple[str, ...] = tuple(PEERS)


def spec(name: str) -> PeerSpec:
    try:
        return PEERS[name]
    except KeyError:
        raise LabError(f"unknown peer {name!r}; peers: {', '.join(PEERS)}") from None


def pid_of(lab: Lab, name: str) -> int | None:
    """Pid of the running peer, None if it is not running."""
    return procs.pidfile_alive(lab.paths.pidfile(spec(name).name))


def start(lab: Lab, name: str, timeout: float = 15.0) -> int:
    """Start peer `name` unless it already runs; wait until it is ready.

    Raises LabError with the tail of the peer's log if it dies or is not
    ready within `timeout` seconds (a half-started peer is killed).
    """
    p = spec(name)
    pid = pid_of(lab, name)
    if pid is None:
        argv = p.prepare(lab)
        argv = [need(argv[0]) if "/" not in argv[0] else argv[0], *argv[1:]]
        logpath = lab.paths.log(name)
        with open(logpath, "ab") as out:
            out.write(f"=== {time.strftime('%F %T')} starting: {' '.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(
                [need("ip"), "netns", "exec", lab.ns(p.node), *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=lab.paths.root,
                env=child_env(p.env(lab)),
                # Own session: survives the CLI, and killpg reaches its children.
                start_new_session=True,
            )
        procs.track(proc)
        pid = proc.pid
        procs.write_pidfile(lab.paths.pidfile(name), pid)
    _wait_ready(lab, p, pid, timeout)
    return pid


def _wait_ready(lab: Lab, p: PeerSpec, pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not procs.alive(pid):
            lab.paths.pidfile(p.name).unlink(missing_ok=True)
            raise LabError(
                f"peer {p.name} exited during startup; tail of {lab.paths.log(p.name)}:\n"
                + procs.log_tail(lab.paths.log(p.name))
            )
        if p.ready(lab):
            return
        if time.monotonic() > deadline:
            stop(lab, p.name)
            raise LabError(
                f"peer {p.name} not ready after {timeout:.0f}s; tail of "
                f"{lab.paths.log(p.name)}:\n" + procs.log_tail(lab.paths.log(p.name))
            )
        time.sleep(0.1)


def stop(lab: Lab, name: str) -> None:
    """Stop peer `name` (SIGTERM to its process group, SIGKILL after 3 s)."""
    p = spec(name)
    pidfile = lab.paths.pidfile(p.name)
    rec = procs.read_pidfile(pidfile)
    if rec and procs.alive(*rec):
        procs.terminate([rec[0]], group=True)
    pidfile.unlink(missing_ok=True)
