"""The router VM inside router7-lab's topology.

The lab keeps its namespaces and links exactly as for the namespace router;
only the router namespace changes job: instead of running router7's
services it holds two bridges, each joining a lab veth to a tap device of the
VM, so the VM's first NIC sits on the ISP segment and its second on the LAN
switch:

    isp:down0 ── router:uplink0 ─[br-uplink]─ tap-uplink ── VM uplink0
    sw:br0 ── router:lan0 ─[br-lan]─ tap-lan ── VM lan0
    isp2:down0 ── router:uplink1 ─[br-uplink1]─ tap-uplink1 ── VM 3rd NIC (with isp2)

qemu runs inside the router namespace (it opens the taps there), so
`router7-lab down` kills it with everything else. The router namespace
itself has IPv6 off and no addresses: it is a patch panel, not a host.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from router7.lab.addresses import lab_byte
from router7.lab.netns import ip, link_exists, sysctl
from router7.vmtest.qemu import Nic, VmConfig

# (VM NIC id, lab veth in the router namespace, bridge, tap)
PORTS = (
    ("uplink", "uplink0", "br-uplink", "tap-uplink"),
    ("lan", "lan0", "br-lan", "tap-lan"),
)
# A lab with the second ISP (Lab(isp2=True), failover): a third NIC on its segment.
# It comes third in PCI order, so first boot still names the first two uplink0 and lan0.
UPLINK1_PORT = ("uplink1", "uplink1", "br-uplink1", "tap-uplink1")


def ports(lab) -> tuple[tuple[str, str, str, str], ...]:
    return (*PORTS, UPLINK1_PORT) if lab.isp2 else PORTS


def vm_mac(prefix: str, index: int) -> str:
    """The VM's NIC MACs: distinct from the veths' (a bridge owns its ports' MACs)."""
    return f"02:72:37:{lab_byte(prefix):02x}:0a:{index + 1:02x}"


def attach(lab) -> None:
    """Turn the lab's router namespace into the VM's patch panel (idempotent)."""
    ns = lab.ns("router")
    for scope in ("all", "default"):
        sysctl(ns, f"net.ipv6.conf.{scope}.disable_ipv6", 1)
    sysctl(ns, "net.ipv4.ip_forward", 0)
    for _nic, veth, bridge, tap in ports(lab):
        if not link_exists(ns, bridge):
            ip(ns, "link", "add", bridge, "type", "bridge", "stp_state", "0", "mcast_snooping", "0")
        if not link_exists(ns, tap):
            ip(ns, "tuntap", "add", "dev", tap, "mode", "tap")
        ip(ns, "addr", "flush", "dev", veth)
        for port in (veth, tap):
            ip(ns, "link", "set", port, "master", bridge, "up")
        ip(ns, "link", "set", bridge, "up")


def vm_config(lab, image_dir: Path, state_dir: Path, boot: str = "disk", **kw) -> VmConfig:
    """The router VM of `lab`, its taps in the router namespace."""
    nics = [Nic(nic, tap, vm_mac(lab.prefix, i)) for i, (nic, _v, _b, tap) in enumerate(ports(lab))]
    return VmConfig(
        name=f"{lab.prefix}-router",
        state_dir=state_dir,
        image_dir=image_dir,
        nics=nics,
        boot=boot,
        netns=lab.ns("router"),
        **kw,
    )


# ---- `router7-lab up --vm`: a long-lived router VM, found again by later commands

PERM_FILES = {
    "wan": "/perm/dhcp4/wire/lease.json",
    "ipv6": "/perm/dhcp6/wire/lease.json",
    "clients": "/perm/dhcp4d/leases.json",
}


def state_dir(lab) -> Path:
    return lab.state_dir / "vm"


def lab_vm_config(lab, image_dir: Path | None = None, boot: str = "disk") -> VmConfig:
    from router7.vmtest import image

    d = image.require(image_dir, image.NEEDED[boot])
    return vm_config(lab, d, state_dir(lab), boot=boot, allow_reboot=True)


def start_lab_vm(lab, image_dir: Path | None = None, boot: str = "disk") -> int:
    """Attach and start the router VM of `lab` unless it runs; return qemu's pid."""
    from router7.vmtest import qemu

    cfg = lab_vm_config(lab, image_dir, boot)
    if pid := qemu.running_pid(cfg):
        return pid
    attach(lab)
    proc = qemu.spawn(cfg)
    (state_dir(lab) / "image_dir").write_text(f"{cfg.image_dir}\n{boot}\n")
    return proc.pid


def lab_vm_running(lab) -> bool:
    from router7.vmtest import qemu

    sd = state_dir(lab)
    if not (sd / "qemu.pid").exists():
        return False
    cfg = vm_config(lab, Path("."), sd)
    return qemu.running_pid(cfg) is not None


def router_status(lab, timeout: float = 20) -> dict:
    """RouterServices.status() for the VM: the same dict, read through the test shell."""
    import json

    from router7.lab.router import LAN_ADDRESS
    from router7.vmtest.shell import ShellClosed, ShellTimeout, TestShell

    status = {"services": {}, "wan": None, "ipv6": None, "lan_address": LAN_ADDRESS, "clients": []}
    sh = TestShell(str(state_dir(lab) / "testshell.sock"))
    try:
        sh.wait_ready(timeout)
        units = sh.run(
            "systemctl list-units --all --plain --no-legend 'router7-*.service' || true", 20
        )
        for line in units.stdout.splitlines():
            parts = line.split(None, 4)
            if len(parts) >= 4:
                status["services"][parts[0].removesuffix(".service")] = f"{parts[2]} {parts[3]}"
        for key, path in PERM_FILES.items():
            reply = sh.run(f"cat {path}", 10)
            if reply.status == 0:
                with contextlib.suppress(ValueError):
                    status[key] = json.loads(reply.stdout)
        status["clients"] = status["clients"] or []
    except (ShellTimeout, ShellClosed, OSError) as e:
        status["services"] = {"(test shell)": f"no answer: {e}"}
    finally:
        sh.close()
    return status
