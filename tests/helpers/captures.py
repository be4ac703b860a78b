"""The fiber7 captures in tests/testdata/fiber7 (see its README for their origin).

They are part of the repository, so a missing file is a broken checkout or
package: the test fails instead of skipping.
"""

from __future__ import annotations

from pathlib import Path

import pytest

FIBER7_DIR = Path(__file__).parents[1] / "testdata" / "fiber7"
DHCP4 = FIBER7_DIR / "dhcp4-fiber7.pcap"
DHCP6 = FIBER7_DIR / "dhcp6-fiber7.pcap"


def frames(path: Path) -> list:
    """The capture's Ethernet frames as scapy packets; fails if the file is missing."""
    if not path.is_file():
        pytest.fail(f"fiber7 capture missing: {path} (see {FIBER7_DIR / 'README.md'})")
    import scapy.layers.all  # noqa: F401  (registers Ethernet, IP, DHCP for the reader)
    from scapy.utils import rdpcap

    return list(rdpcap(str(path)))


def dhcp6_payloads() -> tuple[bytes, bytes]:
    """The recorded (Advertise, Reply) DHCPv6 payloads."""
    from scapy.layers.inet import UDP

    advertise, reply = (bytes(p[UDP].payload) for p in frames(DHCP6))
    return advertise, reply
