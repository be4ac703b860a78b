"""The router VM inside router7-lab's topology.

The lab keeps its namespaces and links exactly as for the namespace router;
only the router namespace changes job: instead of running router7's
services it holds two bridges, each joining a lab veth to a tap device of the
VM, so the VM's first NIC sits on the ISP segment and its second on the LAN
switch:

    isp:down0 ── router:uplink0 ─[br-uplink]─ tap-uplink ── VM uplink0
    sw:br0 ── router:lan0 ─[br-lan]─ tap-lan ── VM lan0

qemu runs inside the router namespace (it opens the taps there), so
`router7-lab down` kills it with everything else. The router namespace
itself has IPv6 off and no addresses: it is a patch panel, not a host.
"""

from __future__ import annotations

from pathlib import Path

from router7.lab.addresses import lab_byte
from router7.lab.netns import ip, link_exists, sysctl
from router7.vmtest.qemu import Nic, VmConfig

# (VM NIC id, lab veth in the router namespace, bridge, tap)
PORTS = (
    ("uplink", "uplink0", "br-uplink", "tap-uplink"),
    ("lan", "lan0", "br-lan", "tap-lan"),
)


def vm_mac(prefix: str, index: int) -> str:
    """The VM's NIC MACs: distinct from the veths' (a bridge owns its ports' MACs)."""
    return f"02:72:37:{lab_byte(prefix):02x}:0a:{index + 1:02x}"


def attach(lab) -> None:
    """Turn the lab's router namespace into the VM's patch panel (idempotent)."""
    ns = lab.ns("router")
    for scope in ("all", "default"):
        sysctl(ns, f"net.ipv6.conf.{scope}.disable_ipv6", 1)
    sysctl(ns, "net.ipv4.ip_forward", 0)
    for _nic, veth, bridge, tap in PORTS:
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
    nics = [Nic(nic, tap, vm_mac(lab.prefix, i)) for i, (nic, _v, _b, tap) in enumerate(PORTS)]
    return VmConfig(
        name=f"{lab.prefix}-router",
        state_dir=state_dir,
        image_dir=image_dir,
        nics=nics,
        boot=boot,
        netns=lab.ns("router"),
        **kw,
    )
