"""The manifest an update is sent with: what the router checks every uploaded byte against.

It is the image's own ``manifest.json`` (router7-image build writes it), of which
the router reads only::

    {"version": "0.1.0+1a2b3c4d5e6f", "cmdline": "console=ttyS0,115200 ...",
     "files": {"vmlinuz": {"bytes": N, "sha256": "..."},
               "initrd": {"bytes": N, "sha256": "..."}}}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from router7.updated.bootpart import FILES

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Words the router adds itself; an image must not bring its own.
_RESERVED = ("router7.slot=", "router7.trial=")
MAX_CMDLINE = 2048


class ManifestError(ValueError):
    """The manifest is unusable; the message names the field."""


@dataclass(frozen=True)
class FileSpec:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    version: str
    cmdline: str
    files: dict[str, FileSpec]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    @classmethod
    def parse(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"manifest: not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ManifestError("manifest: not a JSON object")
        version = data.get("version")
        if not isinstance(version, str) or not version.strip() or len(version) > 200:
            raise ManifestError("manifest: version: missing or not a short string")
        cmdline = data.get("cmdline")
        if not isinstance(cmdline, str) or len(cmdline) > MAX_CMDLINE or "\n" in cmdline:
            raise ManifestError("manifest: cmdline: missing or not one line")
        for word in cmdline.split():
            if word.startswith(_RESERVED):
                raise ManifestError(f"manifest: cmdline: {word!r} is set by the router itself")
        files = data.get("files")
        if not isinstance(files, dict):
            raise ManifestError("manifest: files: missing")
        specs = {}
        for name in FILES:
            f = files.get(name)
            if not isinstance(f, dict):
                raise ManifestError(f"manifest: files.{name}: missing")
            size, digest = f.get("bytes"), f.get("sha256")
            if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
                raise ManifestError(f"manifest: files.{name}.bytes: not a positive integer")
            if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                raise ManifestError(f"manifest: files.{name}.sha256: not a sha256 hex digest")
            specs[name] = FileSpec(name, size, digest)
        return cls(version.strip(), " ".join(cmdline.split()), specs)
