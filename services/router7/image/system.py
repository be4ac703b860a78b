"""The read-only system: mmdebstrap's Debian tree plus router7, units and trimmed modules."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

from router7.image.recipe import Recipe

BINDIR = "/usr/bin"
SITE = "usr/lib/python3/dist-packages"
# Not needed on a router with no one logged in; kept: /usr/share/doc/*/copyright.
PRUNE = ["usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
         # udev's hardware database only names vendors and models: 22 MB
         "usr/lib/udev/hwdb.bin", "usr/lib/udev/hwdb.d",
         "usr/share/bash-completion", "usr/share/zsh", "var/cache/debconf/templates.dat-old",
         "var/cache/apt", "var/lib/apt/lists"]  # fmt: skip
DPKG_EXCLUDES = ["/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*",
                 "/usr/share/doc/*", "/usr/share/lintian/*"]  # fmt: skip
DPKG_INCLUDES = ["/usr/share/doc/*/copyright"]


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed ({proc.returncode}):\n{tail}")
    return proc


def mmdebstrap(recipe: Recipe, tar: Path, kernel_dir: Path) -> None:
    """Debian minbase + packages.txt as a tarball; the kernel .deb downloaded beside it."""
    deb = recipe.debian
    kernel_dir.mkdir(parents=True, exist_ok=True)
    # apt-get download inside the chroot resolves the kernel metapackage with the
    # same apt sources as everything else; the .deb is copied out, never installed
    # (installing would pull initramfs-tools and run it).
    hook = (
        'chroot "$1" sh -c \'cd /tmp && '
        f'k=$(apt-cache depends {deb["kernel_package"]} | sed -n "s/.*Depends: //p" | head -1) && '
        'apt-get download -q "$k"\' && '
        f'cp "$1"/tmp/linux-image-*.deb {kernel_dir}/ && rm -f "$1"/tmp/*.deb'
    )
    purge = 'chroot "$1" dpkg --purge --force-depends ' + " ".join(recipe.purge)
    argv = ["mmdebstrap", "--variant=minbase", f"--architecture={deb['architecture']}",
            "--include=" + ",".join(recipe.packages), "--customize-hook=" + hook,
            "--customize-hook=" + purge]  # fmt: skip
    argv += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
    argv += [f"--dpkgopt=path-include={p}" for p in DPKG_INCLUDES]
    argv += [deb["suite"], str(tar), *deb["mirrors"]]
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(recipe.epoch))
    run(argv, env=env)


def extract(tar: Path, root: Path) -> None:
    root.mkdir(parents=True)
    run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tar), "-C",
         str(root)])  # fmt: skip


def install_overlay(recipe: Recipe, root: Path) -> None:
    """pkgs/debian/rootfs/ (config files) copied over the tree."""
    src = recipe.debian_dir / "rootfs"
    for p in sorted(src.rglob("*")):
        dest = root / p.relative_to(src)
        if p.is_symlink():  # e.g. a unit masked with -> /dev/null
            if dest.is_symlink() or dest.exists():
                dest.unlink()
            dest.symlink_to(os.readlink(p))
        elif p.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            shutil.copy2(p, dest)


def install_units(recipe: Recipe, root: Path) -> list[str]:
    """pkgs/systemd: units (with @bindir@), udev rules, sysusers, tmpfiles; enable by [Install]."""
    unit_dir = root / "usr/lib/systemd/system"
    installed = []
    for p in sorted(recipe.systemd_dir.iterdir()):
        text = p.read_text().replace("@bindir@", BINDIR) if p.is_file() else ""
        if p.suffix in (".service", ".target"):
            (unit_dir / p.name).write_text(text)
            installed.append(p.name)
            cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
            cp.optionxform = str
            cp.read_string(text)
            wanted_by = cp.get("Install", "WantedBy", fallback="").split()
            for target in wanted_by:
                wants = root / "etc/systemd/system" / f"{target}.wants"
                wants.mkdir(parents=True, exist_ok=True)
                link = wants / p.name
                if not link.is_symlink():
                    link.symlink_to(f"/usr/lib/systemd/system/{p.name}")
        elif p.suffix == ".rules":
            (root / "usr/lib/udev/rules.d" / p.name).write_text(text)
            installed.append(p.name)
        elif p.name.endswith(".sysusers.conf"):
            (root / "usr/lib/sysusers.d/router7.conf").write_text(text)
        elif p.name.endswith(".tmpfiles.conf"):
            (root / "usr/lib/tmpfiles.d/router7.conf").write_text(text)
    return installed


def build_wheel(recipe: Recipe, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(recipe.epoch))
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
         "-w", str(out), str(recipe.source)], env=env)  # fmt: skip
    return next(out.glob("router7-*.whl"))


def install_python(recipe: Recipe, root: Path, wheel: Path, work: Path) -> dict[str, str]:
    """router7 and its runtime dependencies, pinned by requirements.lock, as site packages."""
    image_python = sorted((root / "usr/bin").glob("python3.[0-9]*"))
    want = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if not any(p.name == want for p in image_python):
        raise RuntimeError(
            f"the image has {[p.name for p in image_python]}, the build runs {want}: "
            "run router7-image with the same Python minor version as Debian's python3"
        )
    target = work / "site"
    run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--only-binary", ":all:",
         "--target", str(target), "-c", str(recipe.source / "requirements.lock"), str(wheel)])  # fmt: skip
    shutil.rmtree(target / "bin", ignore_errors=True)
    # The dependencies' own test suites (Twisted's alone is 20 MB) never run here.
    for tests in sorted(target.glob("*/**/test*")):
        if tests.is_dir() and tests.name in ("test", "tests") and tests.parts[-2] != "router7":
            shutil.rmtree(tests, ignore_errors=True)
    versions = {}
    for info in sorted(target.glob("*.dist-info")):
        # direct_url.json names the build's temp dir: drop it and its RECORD line.
        (info / "direct_url.json").unlink(missing_ok=True)
        record = info / "RECORD"
        lines = record.read_text().splitlines(keepends=True)
        record.write_text("".join(x for x in lines if not x.startswith(f"{info.name}/direct_url")))
        name, version = info.name[: -len(".dist-info")].rsplit("-", 1)
        versions[name] = version
    site = root / SITE
    site.mkdir(parents=True, exist_ok=True)
    for p in sorted(target.iterdir()):
        shutil.move(str(p), site / p.name)
    write_console_scripts(root, site)
    # Byte-code compiled now (the system is read-only), hash-checked rather than
    # mtime-checked so the .pyc files are the same on every build.
    env = dict(os.environ, PYTHONHASHSEED="0", SOURCE_DATE_EPOCH=str(recipe.epoch))
    run(["chroot", str(root), "/usr/bin/python3", "-m", "compileall", "-q", "-j", "1",
         "--invalidation-mode", "unchecked-hash", "/" + SITE], env=env)  # fmt: skip
    return versions


def write_console_scripts(root: Path, site: Path) -> list[str]:
    """/usr/bin/router7-*: the wheel's console scripts, for Debian's /usr/bin/python3."""
    names = []
    for ep in sorted(site.glob("router7-*.dist-info/entry_points.txt")):
        cp = configparser.ConfigParser(interpolation=None)
        cp.optionxform = str
        cp.read_string(ep.read_text())
        for name, target in sorted(cp["console_scripts"].items()):
            module, func = target.split(":")
            script = root / "usr/bin" / name
            script.write_text(
                f"#!/usr/bin/python3\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n"
            )
            script.chmod(0o755)
            names.append(name)
    return names


def prune(root: Path) -> None:
    for rel in PRUNE:
        p = root / rel
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
            p.mkdir()
        elif p.exists():
            p.unlink()
    # Leftovers of the build, not of the system.
    for p in (root / "tmp").iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def clamp_mtimes(root: Path, epoch: int) -> None:
    """Files newer than SOURCE_DATE_EPOCH get it (Debian's own files keep theirs)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if st.st_mtime > epoch:
                os.utime(p, (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def dpkg_packages(root: Path) -> dict[str, dict]:
    out = run(["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W",
               "-f=${Package}\t${Version}\t${Installed-Size}\n"]).stdout  # fmt: skip
    pkgs = {}
    for line in out.splitlines():
        name, version, size = line.split("\t")
        pkgs[name] = {"version": version, "installed_kib": int(size or 0)}
    return pkgs


def python_sizes(root: Path) -> dict[str, int]:
    """Bytes per Python distribution, from each dist-info's RECORD."""
    site = root / SITE
    sizes = {}
    for record in sorted(site.glob("*.dist-info/RECORD")):
        name = record.parent.name[: -len(".dist-info")].rsplit("-", 1)[0]
        total = 0
        for line in record.read_text().splitlines():
            path = line.rsplit(",", 2)[0]
            f = site / path
            if f.is_file():
                total += f.stat().st_size
        sizes[name] = total
    return sizes


def tree_size(root: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
