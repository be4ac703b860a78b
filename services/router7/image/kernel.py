"""Debian's kernel, unpacked from its .deb, with only the modules modules.txt asks for."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from router7.image.modules import ModuleIndex, ModuleSpec

KEEP_INDEX = ["modules.order", "modules.builtin", "modules.builtin.modinfo"]


@dataclass
class Kernel:
    version: str
    vmlinuz: Path
    system_modules: list[str]  # paths relative to lib/modules/<version>/
    initrd_modules: list[str]  # load order
    full_modules_bytes: int
    kept_modules_bytes: int
    moddir: Path


def unpack(deb: Path, into: Path, spec: ModuleSpec) -> Kernel:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)
    moddirs = sorted((into / "lib/modules").iterdir())
    if len(moddirs) != 1:
        raise RuntimeError(f"expected one kernel in {deb.name}, found {moddirs}")
    moddir = moddirs[0]
    version = moddir.name
    subprocess.run(["depmod", "-b", str(into), version], check=True)
    index = ModuleIndex(moddir)
    system = index.expand(spec.system)
    initrd = index.expand(spec.initrd)
    full = sum(p.stat().st_size for p in moddir.rglob("*.ko*"))
    kept = sum((moddir / m).stat().st_size for m in system)
    return Kernel(version, into / "boot" / f"vmlinuz-{version}", system, initrd, full, kept, moddir)


def install_modules(kernel: Kernel, root: Path) -> None:
    """The kept modules into the system's /usr/lib/modules, with a fresh modules.dep."""
    dest = root / "usr/lib/modules" / kernel.version
    dest.mkdir(parents=True, exist_ok=True)
    for rel in kernel.system_modules:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(kernel.moddir / rel, dest / rel)
    for name in KEEP_INDEX:
        if (kernel.moddir / name).exists():
            shutil.copy2(kernel.moddir / name, dest / name)
    subprocess.run(["depmod", "-b", str(root / "usr"), kernel.version], check=True)
