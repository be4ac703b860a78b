"""Talking to nftables: run one script as one transaction, read named counters.

We run the ``nft`` binary (``-f -``: the whole script is one netlink batch, so
the kernel applies all of it or none of it). The libnftables Python binding is
not installable from PyPI, and the binary's exit status and messages are what an
owner would see when running the same script by hand.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess

from router7.netconfigd import firewall

log = logging.getLogger(__name__)


class NftError(RuntimeError):
    pass


class Nft:
    def __init__(self, binary: str | None = None, timeout: float = 15.0):
        self.binary = binary or shutil.which("nft") or "/usr/sbin/nft"
        self.timeout = timeout

    def _run(self, *args: str, script: str | None = None) -> str:
        try:
            proc = subprocess.run(
                [self.binary, *args],
                input=script,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NftError(f"nft {' '.join(args)}: {e}") from None
        if proc.returncode != 0:
            raise NftError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, script: str) -> None:
        """Apply ``script`` atomically."""
        self._run("-f", "-", script=script)

    def check(self, script: str) -> None:
        """Validate ``script`` against the kernel without changing anything (nft -c)."""
        self._run("-c", "-f", "-", script=script)

    def tables(self) -> set[tuple[str, str]]:
        out = self._run("list", "tables")
        return {tuple(line.split()[1:3]) for line in out.splitlines() if line.startswith("table ")}

    def listing(self, family: str, table: str) -> str | None:
        """``nft list table`` with counter values zeroed: what "unchanged" is checked against."""
        if (family, table) not in self.tables():
            return None
        out = self._run("list", "table", family, table)
        return re.sub(r"packets \d+ bytes \d+", "packets 0 bytes 0", out)

    def counters(self, family: str, table: str) -> dict[tuple[str, str, str], tuple[int, int]]:
        """Named counters of one table: {(family, table, name): (packets, bytes)}; {} if absent."""
        if (family, table) not in self.tables():
            return {}
        out = self._run("-j", "list", "counters", "table", family, table)
        values = {}
        for item in json.loads(out).get("nftables", []):
            c = item.get("counter")
            if c and c.get("table") == table and c.get("family") == family:
                values[(family, table, c["name"])] = (
                    int(c.get("packets", 0)),
                    int(c.get("bytes", 0)),
                )
        return values

    def supports_flowtable(self, device: str) -> tuple[bool, str]:
        """Probe whether this kernel has flowtables (nf_flow_table) with a throwaway table."""
        probe = (
            "add table inet router7-probe\n"
            f'add flowtable inet router7-probe ft {{ hook ingress priority filter; devices = {{ "{device}" }}; }}\n'
            "delete table inet router7-probe\n"
        )
        try:
            self._run("-f", "-", script=probe)
        except NftError as e:
            lines = [ln.strip() for ln in str(e).splitlines() if "Error" in ln]
            return False, lines[0] if lines else str(e)
        return True, ""


def own_counters(nft: Nft) -> dict[tuple[str, str, str], tuple[int, int]]:
    return nft.counters(*firewall.FILTER_TABLE)
