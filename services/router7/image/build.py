"""`router7-image build`: every stage, its cache, and the artefacts of the contract.

Caches under --cache: debian-<key>/ (mmdebstrap's tarball and the kernel .deb,
keyed by pkgs/debian/{debian.json,packages.txt}) and artefacts-<key>/ (keyed by
every input file): a second build with unchanged inputs only copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import router7
from router7.image import disk, initrd, kernel, system, tools
from router7.image.modules import ModuleSpec
from router7.image.progress import Progress
from router7.image.recipe import Recipe

CONSOLE = "console=ttyS0,115200"
# net.ifnames=0: the kernel's eth0, eth1 stay until netconfigd names them by MAC.
# transparent_hugepage=madvise: Debian's kernel defaults to "always", which backs
# each Python heap with 2 MiB pages; in the router VM that was 234 MiB of its 700 MiB
# of anonymous memory (the OOM report of a kexec trial), for no gain to a router.
# watchdog.stop_on_reboot=0: the watchdog core stops a driver's watchdog at a restart,
# kexec included; kept running, a new system that hangs before its systemd takes the
# watchdog over (kernel, initrd) is reset into the boot default, the old slot.
CMDLINE = f"{CONSOLE} net.ifnames=0 panic=10 transparent_hugepage=madvise watchdog.stop_on_reboot=0"
ARTEFACTS = ["vmlinuz", "initrd", "cmdline", "netboot.ipxe", "disk.img", "manifest.json"]
NETBOOT_IPXE = """#!ipxe
# router7 netboot: serve this file, vmlinuz and initrd from one directory (TFTP or HTTP).
kernel vmlinuz initrd=initrd {cmdline}
initrd initrd
boot
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def image_version(key: str) -> str:
    """The image's version string (/etc/router7/version, manifest.json): the package
    version and the build inputs' key, so two different builds never share one."""
    return f"{router7.__version__}+{key[:12]}"


def build(source: Path, out: Path, cache: Path, rebuild: bool = False, progress=None) -> dict:
    progress = progress or Progress()
    recipe = Recipe(source)
    tools.require(tools.BUILD_TOOLS | tools.DISK_TOOLS)
    busybox = tools.busybox_static()
    tools.syslinux_mbr()
    if os.geteuid() != 0:
        raise tools.MissingTool("router7-image build needs root (mmdebstrap, chroot)")
    cache.mkdir(parents=True, exist_ok=True)
    key = recipe.key()
    done = cache / f"artefacts-{key}"
    if not rebuild and (done / "manifest.json").exists():
        with progress.stage(f"cached image {key}"):
            _publish(done, out)
        manifest = json.loads((out / "manifest.json").read_text())
        report(manifest, progress)
        return manifest

    debian = cache / f"debian-{recipe.debian_key()}"
    tar, kdir = debian / "rootfs.tar", debian / "kernel"
    if not tar.exists():
        with progress.stage("debian: mmdebstrap " + " ".join(recipe.packages)):
            shutil.rmtree(debian, ignore_errors=True)
            debian.mkdir(parents=True)
            system.mmdebstrap(recipe, debian / "rootfs.tmp.tar", kdir)
            os.replace(debian / "rootfs.tmp.tar", tar)
    else:
        progress.say(f"debian: cached {tar}")

    with tempfile.TemporaryDirectory(prefix="router7-image-", dir=cache) as tmp:
        work = Path(tmp)
        root = work / "root"
        with progress.stage("system: unpack Debian"):
            system.extract(tar, root)
        with progress.stage("kernel: unpack and choose modules"):
            spec = ModuleSpec.parse((recipe.debian_dir / "modules.txt").read_text())
            debs = sorted(kdir.glob("linux-image-*.deb"))
            k = kernel.unpack(debs[-1], work / "kernel", spec)
            kernel.install_modules(k, root)
            progress.say(
                f"kernel {k.version}: {len(k.system_modules)} modules kept "
                f"({k.kept_modules_bytes / 1e6:.1f} MB of {k.full_modules_bytes / 1e6:.0f} MB), "
                f"{len(k.initrd_modules)} in the initrd"
            )
        with progress.stage("python: router7 wheel and locked dependencies"):
            wheel = system.build_wheel(recipe, work / "wheel")
            pyversions = system.install_python(recipe, root, wheel, work)
        with progress.stage("system: units, config, trim"):
            units = system.install_units(recipe, root)
            system.install_overlay(recipe, root)
            version = image_version(key)
            (root / "etc/router7").mkdir(parents=True, exist_ok=True)
            (root / "etc/router7/version").write_text(version + "\n")
            debs_info = system.dpkg_packages(root)
            pysizes = system.python_sizes(root)
            system.prune(root)
            system.clamp_mtimes(root, recipe.epoch)
            system_bytes = system.tree_size(root)
        squash = work / initrd.SQUASHFS_NAME
        with progress.stage("system: squashfs (zstd)"):
            initrd.mksquashfs(root, squash, recipe.epoch)
        stage_dir = work / "out"
        stage_dir.mkdir()
        with progress.stage("initrd: cpio"):
            items = initrd.entries(
                (recipe.debian_dir / "init").read_bytes(),
                busybox.read_bytes(),
                k,
                squash.read_bytes(),
            )
            initrd.write(stage_dir / "initrd", items, recipe.epoch)
            shutil.copyfile(k.vmlinuz, stage_dir / "vmlinuz")
            (stage_dir / "cmdline").write_text(CMDLINE + "\n")
            (stage_dir / "netboot.ipxe").write_text(NETBOOT_IPXE.format(cmdline=CMDLINE))
        with progress.stage("disk: disk.img (MBR, FAT A/B + syslinux, ext4 perm)"):
            layout = disk.pack(
                stage_dir / "vmlinuz", stage_dir / "initrd", CMDLINE, stage_dir / "disk.img",
                epoch=recipe.epoch,
            )  # fmt: skip
        manifest = {
            "inputs_key": key,
            "version": version,
            "source_date_epoch": recipe.epoch,
            "debian": {"suite": recipe.debian["suite"], "mirrors": recipe.debian["mirrors"]},
            "kernel": {
                "version": k.version,
                "package": debs[-1].name,
                "modules_kept": len(k.system_modules),
                "modules_bytes": k.kept_modules_bytes,
                "modules_full_bytes": k.full_modules_bytes,
                "initrd_modules": k.initrd_modules,
            },
            "cmdline": CMDLINE,
            "units": units,
            "disk": {"boot_mib": layout.boot_mib, "perm_mib": layout.perm_mib},
            "sizes": {
                "system_bytes": system_bytes,
                "squashfs_bytes": squash.stat().st_size,
            },
            "debian_packages": debs_info,
            "python_packages": {
                name: {"version": v, "bytes": pysizes.get(name, 0)}
                for name, v in sorted(pyversions.items())
            },
            "files": {
                name: {
                    "bytes": (stage_dir / name).stat().st_size,
                    "sha256": sha256(stage_dir / name),
                }
                for name in ARTEFACTS
                if name != "manifest.json"
            },
        }
        (stage_dir / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        )
        shutil.rmtree(done, ignore_errors=True)
        os.replace(stage_dir, done)
    _publish(done, out)
    _prune_cache(cache, keep={done.name, debian.name})
    report(manifest, progress)
    return manifest


def _prune_cache(cache: Path, keep: set[str], extra: int = 1) -> None:
    """Drop old artefacts-*/debian-* entries (400 MB each): keep these and the newest others."""
    for pattern in ("artefacts-*", "debian-*"):
        entries = sorted(cache.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
        others = [p for p in entries if p.name not in keep]
        for old in others[extra:]:
            shutil.rmtree(old, ignore_errors=True)


def _publish(src: Path, out: Path) -> None:
    """Copy the artefacts into --out (replacing each file atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ARTEFACTS:
        tmp = out / f".{name}.tmp"
        shutil.copyfile(src / name, tmp)
        os.replace(tmp, out / name)


def top_packages(manifest: dict, n: int = 10) -> list[tuple[str, int]]:
    """Largest Debian packages (installed size) and Python distributions, in bytes."""
    sizes = [
        (f"deb:{k}", v["installed_kib"] * 1024) for k, v in manifest["debian_packages"].items()
    ]
    sizes += [(f"py:{k}", v["bytes"]) for k, v in manifest["python_packages"].items()]
    return sorted(sizes, key=lambda kv: (-kv[1], kv[0]))[:n]


def report(manifest: dict, progress: Progress) -> None:
    files, sizes = manifest["files"], manifest["sizes"]
    progress.say(
        f"initrd {files['initrd']['bytes'] / 1e6:.1f} MB (system {sizes['system_bytes'] / 1e6:.1f} MB "
        f"unpacked, {sizes['squashfs_bytes'] / 1e6:.1f} MB squashfs), vmlinuz "
        f"{files['vmlinuz']['bytes'] / 1e6:.1f} MB, disk.img {files['disk.img']['bytes'] / 1e6:.0f} MB"
    )
    top = ", ".join(f"{name} {b / 1e6:.1f}" for name, b in top_packages(manifest))
    progress.say(f"top packages (MB, unpacked): {top}")
