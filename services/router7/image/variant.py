"""A variant of a built image: the same kernel and initrd plus a small appended cpio.

The kernel unpacks every archive concatenated in the initrd, later files over
earlier ones; the initrd's /init copies ``/overlay/`` over the system. So a
variant with another version string (or a setting, or an extra kernel argument)
costs one small cpio rather than a rebuild, and is a real, different image: its
own sha256, its own ``/etc/router7/version``. Tests use it for a second image to
update to; an owner can use it to carry a setting into an update.

    router7-image variant --from build/image --version test-2 --out /tmp/v2 \\
        [--file etc/router7/router7.env=ROUTER7_UPLINK=uplink9] [--append "rdinit=/nope"]
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

from router7.image import cpio

OVERLAY = "overlay"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def overlay_cpio(files: dict[str, bytes], epoch: int = 0) -> bytes:
    """An uncompressed newc archive with ``files`` (paths relative to /) under /overlay/."""
    entries = {OVERLAY: cpio.Entry.directory(OVERLAY)}
    for path, data in files.items():
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            d = "/".join([OVERLAY, *parts[:i]])
            entries[d] = cpio.Entry.directory(d)
        full = "/".join([OVERLAY, *parts])
        entries[full] = cpio.Entry.file(full, data)
    buf = io.BytesIO()
    cpio.write(buf, list(entries.values()), epoch)
    return buf.getvalue()


PARTS = "initrd.parts"


def initrd_parts(image: Path) -> list[Path] | None:
    """The files whose concatenation is the initrd of a ``--parts`` variant, else None."""
    listing = image / PARTS
    if not listing.is_file():
        return None
    return [image / line for line in listing.read_text().splitlines() if line]


def make(
    src: Path,
    out: Path,
    version: str,
    files: dict[str, bytes] | None = None,
    append: str = "",
    parts: bool = False,
) -> dict:
    """Write vmlinuz, initrd, cmdline and manifest.json of the variant into ``out``.

    ``parts``: instead of ``initrd``, write the appended archive alone and
    ``initrd.parts`` naming the base initrd and it: the upload streams both, and the
    router, whose /tmp is RAM, keeps no second copy of a 70 MB initrd."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"etc/router7/version": (version + "\n").encode(), **(files or {})}
    shutil.copyfile(src / "vmlinuz", out / "vmlinuz")
    base = src.resolve() / "initrd"
    pad = b"\0" * (-base.stat().st_size % 4)  # the kernel skips zeros between archives
    tail = pad + overlay_cpio(files)
    h = hashlib.sha256()
    with open(base, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    h.update(tail)
    if parts:
        (out / "initrd.overlay").write_bytes(tail)
        (out / PARTS).write_text(f"{base}\ninitrd.overlay\n")
    else:
        with open(base, "rb") as f, open(out / "initrd", "wb") as o:
            shutil.copyfileobj(f, o, 1 << 20)
            o.write(tail)
    cmdline = " ".join(((src / "cmdline").read_text() + " " + append).split())
    (out / "cmdline").write_text(cmdline + "\n")
    sizes = {"initrd": base.stat().st_size + len(tail)}
    digests = {"initrd": h.hexdigest()}
    manifest = {
        "version": version,
        "cmdline": cmdline,
        "variant_of": str(src),
        "files": {
            name: {
                "bytes": sizes.get(name) or (out / name).stat().st_size,
                "sha256": digests.get(name) or _sha256(out / name),
            }
            for name in ("vmlinuz", "initrd", "cmdline")
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
