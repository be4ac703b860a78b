"""The lab's ISP and internet host, rendered for a NixOS VM test node.

`vm-tests/default.nix` runs this at build time (`python -m router7.lab.nixos_isp OUT ...`)
so the `isp` VM serves exactly what `router7-lab` serves (same kea, radvd and dnsmasq
configs from `router7.lab.configs`, same addresses from `router7.lab.addresses`); only
the paths change to where NixOS services keep their state. Nothing here runs on the
router.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import shlex
from pathlib import Path

from router7.lab import configs
from router7.lab.addresses import ADDR, LabAddresses
from router7.lab.scenario import SHORT_LEASES

# The interface the ISP serves the router on, named by virtualisation.interfaces.
ACCESS_IFACE = "down0"
# NixOS's kea module runs with StateDirectory=kea and RuntimeDirectory=kea.
KEA_STATE = Path("/var/lib/kea")
KEA_RUN = Path("/run/kea")
# RuntimeDirectory of the isp node's dnsmasq and HTTP services.
PEERS_RUN = Path("/run/router7-isp")


def _nixos_kea(conf: dict, section: str, leases: str) -> dict:
    body = conf[section]
    body.pop("control-socket", None)  # nothing controls kea in the VM test
    body.pop("data-directory", None)  # kea ≥ 3 keeps its DUID in its own state dir
    body["lease-database"]["name"] = str(KEA_STATE / leases)
    for logger in body.get("loggers", []):
        logger["output_options"] = [{"output": "stdout"}]  # the journal
    return conf


def kea_dhcp4(a: LabAddresses) -> str:
    conf = json.loads(configs.kea_dhcp4(a, configs.StatePaths(PEERS_RUN), ACCESS_IFACE))
    return json.dumps(_nixos_kea(conf, "Dhcp4", "dhcp4.leases"), indent=2) + "\n"


def kea_dhcp6(
    a: LabAddresses, hooks_dir: Path, hook_script: Path, leases: str = "dhcp6.leases"
) -> str:
    conf = json.loads(
        configs.kea_dhcp6(a, configs.StatePaths(PEERS_RUN), hook_script, ACCESS_IFACE)
    )
    conf = _nixos_kea(conf, "Dhcp6", leases)
    for hook in conf["Dhcp6"]["hooks-libraries"]:
        hook["library"] = str(hooks_dir / Path(hook["library"]).name)
    return json.dumps(conf, indent=2) + "\n"


def pd_route_hook(tool_path: str) -> str:
    """The lab's hook, with the tools' PATH and a log kea may write."""
    st = configs.StatePaths(PEERS_RUN)
    text = configs.pd_route_hook(st, ACCESS_IFACE)
    text = text.replace(str(st.pd_hook_log), str(KEA_RUN / "kea-pd-route.log"))
    lines = text.splitlines(keepends=True)
    path_lines = [i for i, line in enumerate(lines) if line.startswith("PATH=")]
    if len(path_lines) != 1:
        raise ValueError("kea-pd-route.sh template: expected exactly one PATH= line")
    lines[path_lines[0]] = f"PATH={shlex.quote(tool_path)}\n"
    return "".join(lines)


def addresses_script(a: LabAddresses) -> str:
    """The ISP's and the internet host's addresses on one VM (the lab has two nodes:
    here the internet host's addresses sit on the ISP's loopback)."""
    v4len = ipaddress.IPv4Network(a.access_v4_subnet).prefixlen
    v6len = ipaddress.IPv6Network(a.access_v6_subnet).prefixlen
    cmds = [
        f"ip link set {ACCESS_IFACE} up",
        f"ip addr replace {a.isp_access_v4}/{v4len} dev {ACCESS_IFACE}",
        f"ip addr replace {a.isp_access_v6}/{v6len} dev {ACCESS_IFACE} nodad",
        f"ip addr replace {a.internet_v4}/32 dev lo",
        f"ip addr replace {a.internet_v6}/128 dev lo",
        *(f"ip addr replace {v4}/32 dev lo" for v4 in a.isp_dns_v4),
        # Inside the on-link access /64: on down0 so neighbour discovery answers.
        *(f"ip addr replace {v6}/128 dev {ACCESS_IFACE} nodad" for v6 in a.isp_dns_v6),
        f"ip -6 route replace unreachable {a.pd_pool}",
    ]
    return "#!/bin/sh\nset -eu\n" + "".join(c + "\n" for c in cmds)


def _script(argv: list[str]) -> str:
    dirs = f"{PEERS_RUN}/logs {PEERS_RUN}/run {PEERS_RUN}/www"
    return f"#!/bin/sh\nset -eu\nmkdir -p {dirs}\nexec {shlex.join(argv)}\n"


def dns_scripts(a: LabAddresses) -> dict[str, str]:
    """One dnsmasq per role, as in the lab: the authoritative internet server and two
    ISP resolvers (so a scenario can stop one)."""
    st = configs.StatePaths(PEERS_RUN)
    scripts = {"internet-dns": _script(configs.dnsmasq_authoritative(a, st))}
    for n, (v4, v6) in enumerate(zip(a.isp_dns_v4, a.isp_dns_v6, strict=True), start=1):
        name = f"isp-dns{n}"
        argv = configs.dnsmasq_resolver(a, st, name, v4=v4, v6=v6, upstream=a.internet_v4)
        scripts[name] = _script(argv)
    return scripts


def http_script(a: LabAddresses, python: str) -> str:
    argv = configs.http_server(configs.StatePaths(PEERS_RUN), a.http_port)
    return _script([python, *argv[1:]]).replace(
        "exec ", f"printf %s {shlex.quote(a.http_body)} >{PEERS_RUN}/www/index.html\nexec ", 1
    )


def render(
    out: Path,
    hooks_dir: Path,
    tool_path: str,
    python: str,
    pd_pool: str | None = None,
    short_leases: bool = False,
) -> None:
    """Write every file; with `pd_pool`, the ISP after renumbering (as
    `Lab.renumber_prefix_delegation`): another pool and a fresh lease file; with
    `short_leases`, the lifetimes of `router7.lab.scenario.use_short_leases`."""
    a, leases6 = ADDR, "dhcp6.leases"
    if short_leases:
        a = dataclasses.replace(a, **SHORT_LEASES)
    if pd_pool is not None:
        pool = ipaddress.IPv6Network(pd_pool)  # ValueError names a bad prefix
        a, leases6 = dataclasses.replace(a, pd_pool=str(pool)), "dhcp6-renumbered.leases"
    out.mkdir(parents=True, exist_ok=True)
    hook = out / "kea-pd-route.sh"
    files = {
        "kea-dhcp4.json": kea_dhcp4(a),
        "kea-dhcp6.json": kea_dhcp6(a, hooks_dir, hook, leases6),
        "radvd.conf": configs.radvd(a, ACCESS_IFACE),
        "kea-pd-route.sh": pd_route_hook(tool_path),
        "isp-addresses.sh": addresses_script(a),
        "internet-http.sh": http_script(a, python),
        **{f"{name}.sh": text for name, text in dns_scripts(a).items()},
    }
    for name, text in files.items():
        path = out / name
        path.write_text(text)
        path.chmod(0o755 if name.endswith(".sh") else 0o644)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="directory to write the files into")
    p.add_argument("--kea-hooks", type=Path, required=True, help="kea's hooks directory")
    p.add_argument("--path", required=True, help="PATH for the PD route hook (ip, date, awk)")
    p.add_argument("--python", required=True, help="a Python with Twisted, for the HTTP server")
    p.add_argument("--pd-pool", help="delegate from this pool instead (the renumbered ISP)")
    p.add_argument(
        "--short-leases",
        action="store_true",
        help="the lifetimes of router7.lab.scenario.SHORT_LEASES (use_short_leases)",
    )
    args = p.parse_args(argv)
    render(args.out, args.kea_hooks, args.path, args.python, args.pd_pool, args.short_leases)


if __name__ == "__main__":
    main()
