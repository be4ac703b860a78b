"""Choose the kernel modules the image keeps, with their dependencies.

Reads the kernel's own modules.dep (made by depmod for the unpacked kernel) and
modules.softdep ("pre:" modules, e.g. ext4 needs crc32c), so the list in
pkgs/debian/modules.txt names only what the router needs, never a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


def module_name(path: str) -> str:
    """kernel/fs/ext4/ext4.ko(.xz) -> ext4; names use "_" for "-" like modprobe."""
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


@dataclass
class ModuleSpec:
    """pkgs/debian/modules.txt: names or kernel/ subdirectories, some also for the initrd."""

    system: list[str] = field(default_factory=list)
    initrd: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> ModuleSpec:
        spec = cls()
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("initrd:"):
                words = line[len("initrd:") :].split()
                spec.initrd += words
            else:
                words = line.split()
            spec.system += words
        return spec


class ModuleIndex:
    """modules.dep + modules.softdep + modules.builtin of one kernel."""

    def __init__(self, moddir: Path):
        self.moddir = moddir
        self.deps: dict[str, list[str]] = {}  # path -> dependency paths
        self.by_name: dict[str, str] = {}  # name -> path
        for line in (moddir / "modules.dep").read_text().splitlines():
            path, _, rest = line.partition(":")
            self.deps[path] = rest.split()
            self.by_name[module_name(path)] = path
        self.softdeps: dict[str, list[str]] = {}
        softdep = moddir / "modules.softdep"
        if softdep.exists():
            for line in softdep.read_text().splitlines():
                words = line.split()
                if len(words) < 3 or words[0] != "softdep":
                    continue
                pre, mode = [], None
                for w in words[2:]:
                    if w in ("pre:", "post:"):
                        mode = w
                    elif mode == "pre:":
                        pre.append(w.replace("-", "_"))
                self.softdeps[words[1].replace("-", "_")] = pre
        builtin = moddir / "modules.builtin"
        self.builtin = (
            {module_name(p) for p in builtin.read_text().split()} if builtin.exists() else set()
        )

    def expand(self, wanted: list[str]) -> list[str]:
        """Module paths for ``wanted`` (names or "dir/" prefixes), dependencies first.

        Raises KeyError naming a module that is neither a module nor built in.
        """
        order: list[str] = []
        seen: set[str] = set()

        def visit(path: str) -> None:
            if path in seen:
                return
            seen.add(path)
            for soft in self.softdeps.get(module_name(path), []):
                if soft in self.by_name:
                    visit(self.by_name[soft])
            for dep in self.deps[path]:
                visit(dep)
            order.append(path)

        for item in wanted:
            if item.endswith("/"):
                prefix = "kernel/" + item
                matches = sorted(p for p in self.deps if p.startswith(prefix))
                if not matches:
                    raise KeyError(f"no modules under {prefix}")
                for p in matches:
                    visit(p)
                continue
            name = item.replace("-", "_")
            if name in self.by_name:
                visit(self.by_name[name])
            elif name not in self.builtin:
                raise KeyError(f"kernel module {item!r} is neither a module nor built in")
        return order
