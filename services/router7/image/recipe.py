"""The build's inputs: the checkout's files and pkgs/debian/, and their cache keys."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

# Bump when the build steps change in a way the input files do not show.
BUILDER_VERSION = "1"


@dataclass(frozen=True)
class Recipe:
    source: Path  # the checkout

    @property
    def debian_dir(self) -> Path:
        return self.source / "pkgs" / "debian"

    @property
    def systemd_dir(self) -> Path:
        return self.source / "pkgs" / "systemd"

    @property
    def debian(self) -> dict:
        return json.loads((self.debian_dir / "debian.json").read_text())

    @property
    def packages(self) -> list[str]:
        return _words(self.debian_dir / "packages.txt")

    @property
    def purge(self) -> list[str]:
        return _words(self.debian_dir / "purge.txt")

    @property
    def epoch(self) -> int:
        return int(os.environ.get("SOURCE_DATE_EPOCH") or self.debian["source_date_epoch"])

    def debian_key(self) -> str:
        """What mmdebstrap's result depends on: the package list and mirrors."""
        h = hashlib.sha256(f"debian {BUILDER_VERSION}\n".encode())
        for name in ("debian.json", "packages.txt", "purge.txt"):
            h.update(name.encode() + b"\0" + (self.debian_dir / name).read_bytes())
        return h.hexdigest()[:16]

    def input_files(self) -> list[Path]:
        """Every checkout file that goes into the image."""
        files = [self.source / "pyproject.toml", self.source / "requirements.lock"]
        for top in (self.source / "services" / "router7", self.debian_dir, self.systemd_dir):
            files += [
                p
                for p in top.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
            ]
        return sorted(files)

    def key(self) -> str:
        h = hashlib.sha256(f"image {BUILDER_VERSION} {self.debian_key()} {self.epoch}\n".encode())
        for p in self.input_files():
            rel = p.relative_to(self.source).as_posix()
            h.update(rel.encode() + b"\0" + oct(p.stat().st_mode & 0o111).encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()[:16]


def _words(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        out += line.split("#", 1)[0].split()
    return out


def find_source(start: Path | None = None) -> Path:
    """The checkout: from this module when installed editable, else the current directory."""
    candidates = [Path(__file__).resolve().parents[3], (start or Path.cwd()).resolve()]
    candidates += list(candidates[-1].parents)
    for c in candidates:
        if (c / "pkgs" / "debian" / "packages.txt").exists() and (c / "pyproject.toml").exists():
            return c
    raise FileNotFoundError(
        "no router7 checkout found (pkgs/debian/packages.txt): run from the checkout or pass --source"
    )
