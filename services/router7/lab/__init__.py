"""router7-lab: network namespaces simulating a fiber7-like ISP for router7.

    from router7.lab import Lab, ADDR
    lab = Lab("r7").up()
    lab.exec("isp", "dig", f"@{ADDR.isp_dns1_v4}", ADDR.www_name)
    lab.stop_peer("isp-dns1")
    lab.down()

See docs/lab.md for the topology and `router7-lab --help` for the CLI.
"""

from router7.lab.addresses import ADDR, LabAddresses, mac_for
from router7.lab.netns import LabError
from router7.lab.peers import PEER_NAMES
from router7.lab.topology import Lab

__all__ = ["ADDR", "PEER_NAMES", "Lab", "LabAddresses", "LabError", "mac_for"]
