"""router7-lab: command line for the namespace lab (see docs/lab.md)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

from router7.lab.netns import LabError, need, netns_exists
from router7.lab.peers import PEERS
from router7.lab.router import RouterServices, format_status, start_lan_clients
from router7.lab.topology import Lab
from router7.vmtest import labvm

EPILOG = (
    """\
nodes (namespace <prefix>-<node>): internet, isp, router, sw, lan1..lanN
peers: """
    + ", ".join(PEERS)
    + """

examples:
  router7-lab up --lan-hosts 2
  router7-lab up --vm --wait 300  # the router is the image in qemu (router7-image build)
  router7-lab status --json
  router7-lab exec isp -- tshark -i down0
  router7-lab exec router -- ip addr
  router7-lab peer stop isp-dns1
  router7-lab --prefix r8 up        # a second lab next to the first
  router7-lab down
state, configs and logs: /run/router7-lab/<prefix>/
"""
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="router7-lab",
        description="Network-namespace lab simulating a fiber7-like ISP "
        "(internet host, BNG with kea DHCPv4/DHCPv6-PD, radvd, resolvers) "
        "around an unconfigured router namespace and a LAN switch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--prefix",
        default=os.environ.get("ROUTER7_LAB_PREFIX", "r7"),
        help="lab prefix for namespace names, so labs coexist (default: $ROUTER7_LAB_PREFIX or r7)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="create the lab and start all peers (idempotent)",
        description="Create namespaces, links and addresses, and start every "
        "peer that is not running. Re-running repairs a lab: dead peers are "
        "restarted, LAN hosts added or removed to match --lan-hosts.",
    )
    up.add_argument(
        "--lan-hosts",
        type=int,
        default=None,
        metavar="N",
        help="number of LAN host namespaces lan1..lanN (default: keep current, else 1)",
    )
    up.add_argument(
        "--isp2",
        action="store_true",
        default=None,
        help="add a second ISP (namespace isp2, its own kea and internet path) on the "
        "router's uplink1, for failover (docs/failover.md)",
    )
    up.add_argument("--timeout", type=float, default=15.0, help="seconds per peer to get ready")
    up.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="S",
        help="wait up to S seconds for the router's WAN lease, prefix and a LAN client",
    )
    up.add_argument(
        "--vm",
        action="store_true",
        help="the router is the image in qemu (router7-image build), not services in a namespace",
    )
    up.add_argument(
        "--boot",
        choices=["disk", "netboot", "kernel"],
        default="disk",
        help="with --vm: boot disk.img (SeaBIOS), netboot (iPXE) or kernel+initrd directly",
    )
    up.add_argument(
        "--image-dir",
        default=None,
        metavar="DIR",
        help="with --vm: the image (default: $ROUTER7_IMAGE_DIR or build/image)",
    )
    up.add_argument(
        "--no-router",
        action="store_true",
        help="leave the router namespace empty (no router7 services, no LAN DHCP clients)",
    )

    sub.add_parser(
        "down",
        help="destroy the lab, leaving nothing behind",
        description="Kill every process in the lab's namespaces, delete the "
        "namespaces, /etc/netns/<prefix>-* and the state dir. Safe if nothing exists.",
    )

    st = sub.add_parser(
        "status",
        help="show namespaces, peers, addresses, leases, PD routes",
        description="Show namespaces, peers (running/stopped, pid), "
        "addresses per interface, the leases kea holds and the ISP's "
        "routes to delegated prefixes.",
    )
    st.add_argument("--json", action="store_true", help="machine-readable output")

    ex = sub.add_parser(
        "exec",
        help="run a command in a node's namespace",
        description="Run CMD in the namespace of NODE (internet, isp, router, "
        "sw, lanN) and exit with its exit code. Put -- before CMD.",
    )
    ex.add_argument("node", metavar="NODE", help="node name without the prefix")
    ex.add_argument(
        "command", nargs=argparse.REMAINDER, metavar="-- CMD...", help="command and its arguments"
    )

    rn = sub.add_parser(
        "renumber",
        help="make the ISP delegate prefixes from another pool (ISP renumbering)",
        description="Restart the ISP's kea-dhcp6 with a new prefix-delegation pool "
        "and no leases, as an ISP renumbering its customers; the router gets a new "
        "prefix at its next Renew. `peer restart isp-dhcp6` goes back to the plan's pool.",
    )
    rn.add_argument("pool", metavar="POOL", help="e.g. 2001:db8:200::/40")

    pe = sub.add_parser(
        "peer",
        help="stop or start one peer (outage simulation)",
        description="Stop or start one peer: " + ", ".join(PEERS),
    )
    pe.add_argument(
        "action",
        choices=["start", "stop", "restart", "list"],
        help="start/stop/restart NAME, or list every peer's state",
    )
    pe.add_argument("name", nargs="?", choices=list(PEERS), metavar="NAME", help="peer name")
    return p


def _fmt_expiry(expire: int) -> str:
    return f"expires in {max(0, expire - int(time.time()))}s"


def print_status(s: dict) -> None:
    print(f"lab {s['prefix']}  state {s['state_dir']}")
    if not s["exists"]:
        print("  (not running)")
        return
    print("namespaces:  " + "  ".join(s["namespaces"].values()))
    print("peers:")
    for name, p in s["peers"].items():
        state = f"running  pid {p['pid']}" if p["running"] else "stopped"
        print(f"  {name:14} {p['node']:9} {state:20} {p['description']}")
    print("interfaces:")
    for node, links in s["interfaces"].items():
        for link in links:
            if link["ifname"] == "lo":
                continue
            master = f" master {link['master']}" if link.get("master") else ""
            addrs = " ".join(link["addresses"]) or "-"
            print(
                f"  {node:9} {link['ifname']:9} {link['state']:8} {link['mac']:18}{master} {addrs}"
            )
    print("kea leases:")
    if not (s["leases4"] or s["leases6"]):
        print("  (none)")
    for lease in s["leases4"]:
        print(
            f"  v4     {lease['address']:24} hw {lease['hwaddr']}  {_fmt_expiry(lease['expire'])}"
        )
    for lease in s["leases6"]:
        shown = lease["prefix"] if lease["type"] == "IA_PD" else lease["address"]
        print(
            f"  {lease['type']:6} {shown:24} duid {lease['duid']}  {_fmt_expiry(lease['expire'])}"
        )
    print("delegated-prefix routes on isp:")
    if not s["pd_routes"]:
        print("  (none)")
    for r in s["pd_routes"]:
        print(f"  {r['prefix']} via {r['via']} dev {r['dev']}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(message)s",
    )
    try:
        return _run(args)
    except LabError as e:
        print(f"router7-lab: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `router7-lab status | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _up_vm(lab: Lab, args: argparse.Namespace) -> int:
    """The router as the image in qemu, its NICs bridged into the lab (router7.vmtest.labvm)."""
    from pathlib import Path

    from router7.vmtest import image, kvm

    try:
        image_dir = image.require(
            Path(args.image_dir) if args.image_dir else None, image.NEEDED[args.boot]
        )
    except image.ImageMissing as e:
        raise LabError(str(e)) from None
    if RouterServices(lab).running():
        raise LabError(
            f"router7's services run in {lab.ns('router')}: `router7-lab down` before `up --vm`"
        )
    accel, why = kvm.accelerator(image_dir / "vmlinuz")
    pid = labvm.start_lab_vm(lab, image_dir, args.boot)
    sd = labvm.state_dir(lab)
    start_lan_clients(lab)
    print(
        f"router VM running in {lab.ns('router')}: qemu pid {pid}, {args.boot} boot, {accel} ({why})"
    )
    print(f"  image   {image_dir}")
    print(
        f"  console {sd / 'console.log'}  (interactive: socat -,raw,echo=0,escape=0x1d UNIX-CONNECT:{sd / 'console.sock'})"
    )
    print(f"  monitor {sd / 'qmp.sock'} (QMP)")
    if args.wait:
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            st = labvm.router_status(lab, timeout=max(1.0, deadline - time.monotonic()))
            if st["wan"] and (st["ipv6"] or {}).get("prefixes") and st["clients"]:
                print(f"router settled after {args.wait - (deadline - time.monotonic()):.0f}s")
                return 0
            time.sleep(2)
        print(f"router not settled after {args.wait:g}s: see {sd / 'console.log'}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "up":
        if not args.no_router:
            RouterServices.require_supervisord()  # before any namespace exists
        lab = Lab(args.prefix, lan_hosts=args.lan_hosts, isp2=args.isp2)
        lab.up(timeout=args.timeout)
        print(f"lab {lab.prefix} up: {', '.join(lab.ns(n) for n in lab.nodes)}")
        if args.vm:
            return _up_vm(lab, args)
        if labvm.lab_vm_running(lab):
            print(f"the router VM runs in {lab.ns('router')} (up --vm); services not started")
            return 0
        if not args.no_router:
            router = RouterServices(lab)
            router.start()
            start_lan_clients(lab)
            names = ", ".join(s.name for s in router.services())
            print(f"router7 services starting in {lab.ns('router')}: {names}")
            print(f"  perm {router.perm}, logs {router.logs}")
            if args.wait and not router.wait_settled(args.wait):
                print(f"router not settled after {args.wait:g}s: see the logs", file=sys.stderr)
        return 0
    lab = Lab(args.prefix)
    if args.cmd == "down":
        lab.down()
        print(f"lab {lab.prefix} down")
        return 0
    if args.cmd == "status":
        s = lab.status()
        router = None
        if labvm.lab_vm_running(lab):
            router = labvm.router_status(lab)
        elif lab.exists():
            router = RouterServices(lab).status()
        if args.json:
            json.dump({**s, "router": router}, sys.stdout, indent=2)
            print()
        else:
            print_status(s)
            if router is not None:
                print(format_status(router))
        return 0
    if args.cmd == "exec":
        cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not cmd:
            raise LabError("exec: missing command (router7-lab exec NODE -- CMD...)")
        ns = lab.ns(args.node)
        if not netns_exists(ns):
            raise LabError(f"namespace {ns} does not exist (router7-lab --prefix {lab.prefix} up)")
        sys.stdout.flush()
        # Replace ourselves: the exit code, signals and the tty go straight through.
        os.execv(need("ip"), ["ip", "netns", "exec", ns, *cmd])
    if args.cmd == "renumber":
        try:
            lab.renumber_prefix_delegation(args.pool)
        except ValueError as e:
            raise LabError(f"renumber: {e}") from None
        print(f"isp-dhcp6 now delegates from {args.pool}")
        return 0
    if args.cmd == "peer":
        if args.action == "list":
            for name, running in ((n, lab.peer_running(n)) for n in PEERS):
                print(f"{name:14} {'running' if running else 'stopped'}")
            return 0
        if not args.name:
            raise LabError(f"peer {args.action}: which peer? ({', '.join(PEERS)})")
        if args.action in ("stop", "restart"):
            lab.stop_peer(args.name)
        if args.action in ("start", "restart"):
            if not lab.exists():
                raise LabError(f"lab {lab.prefix} is not up")
            pid = lab.start_peer(args.name)
            print(f"{args.name} running, pid {pid}")
        else:
            print(f"{args.name} stopped")
        return 0
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())
