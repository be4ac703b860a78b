"""The client DUID: the identity fiber7 ties the static /48 to.

``<perm>/dhcp6/duid`` holds the raw DUID bytes, including the 2-byte type, and is sent
verbatim whatever the type (fiber7 installations use the non-standard type 0x000a).
Without that file a DUID-LL (RFC 8415 section 11.4) is made from the uplink MAC once
and persisted, so the delegated prefix survives restarts; Go's router7 made a fresh
DUID-LLT on every start and could lose the prefix.
"""

from __future__ import annotations

import logging
from pathlib import Path

from router7.runtime.statefile import write_bytes_atomic

log = logging.getLogger(__name__)

DUID_LL = 3
HW_ETHERNET = 1
# RFC 8415 section 11.1: at most 128 octets after the type.
MAX_DUID_LEN = 130


def duid_path(perm: Path) -> Path:
    return Path(perm) / "dhcp6" / "duid"


def duid_ll(mac: bytes) -> bytes:
    return DUID_LL.to_bytes(2, "big") + HW_ETHERNET.to_bytes(2, "big") + mac


def parse_mac(text: str) -> bytes:
    mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(mac) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return mac


def load_or_create(path: Path, mac: bytes) -> bytes:
    """The stored DUID; creates a DUID-LL from ``mac`` when there is no file.

    A file that exists but cannot be a DUID is an error rather than silently
    replaced: it is the owner's identity at the ISP.
    """
    path = Path(path)
    try:
        duid = path.read_bytes()
    except FileNotFoundError:
        duid = duid_ll(mac)
        write_bytes_atomic(path, duid)
        log.info("no DUID in %s: created DUID-LL %s from the uplink MAC", path, duid.hex())
        return duid
    if not 3 <= len(duid) <= MAX_DUID_LEN:
        raise ValueError(
            f"{path}: {len(duid)} bytes is not a DUID (raw bytes incl. the 2-byte type, 3..130)"
        )
    log.info("using DUID %s from %s", duid.hex(), path)
    return duid


def iaid_from_mac(mac: bytes) -> int:
    """IA_NA IAID: the last 4 bytes of the MAC, as Go's router7 (stable across restarts)."""
    return int.from_bytes(mac[-4:], "big")
