"""Vendor names for the status page, from the MAC's OUI.

router7 downloads the IEEE MA-L registry (oui.csv) into ``<perm>/dhcp4d/oui/``.
We read that cached file when it exists (columns: Registry, Assignment,
Organization Name, ...) but never download it ourselves: the router should not
depend on standards-oui.ieee.org to hand out addresses. Without the file, only
the OUIs known from the quirks table have names.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from router7.dhcp4d import quirks

log = logging.getLogger(__name__)


class VendorDB:
    def __init__(self, names: dict[str, str] | None = None):
        self.names = names or {}  # "aabbcc" -> organization

    @classmethod
    def load(cls, path: Path) -> VendorDB:
        names: dict[str, str] = {}
        try:
            with open(path, newline="", encoding="utf-8", errors="replace") as f:
                for row in csv.reader(f):
                    if len(row) >= 3 and len(row[1]) == 6:
                        names[row[1].lower()] = row[2].strip()
        except OSError:
            pass  # no cache: names stay unknown
        except csv.Error as e:
            log.warning("%s: %s", path, e)
        return cls(names)

    def vendor(self, mac: str) -> str:
        key = mac.replace(":", "")[:6].lower()
        if key in self.names:
            return self.names[key]
        return "Nintendo" if quirks.is_nintendo(mac) else ""
