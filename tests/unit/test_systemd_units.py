"""pkgs/systemd/: one unit per service console script, each parses and keeps the contract."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import router7

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "pkgs" / "systemd"
# Console scripts that are tools run by a person or the build, not services.
NOT_SERVICES = {
    "router7-lab",
    "router7-restore",
    "router7-image",
    "router7-vmtest",
    "router7-recover",
    "router7-safe-update",
    "router7-recovery",  # run as root by router7-recovery.target, only when netbooted for it
}
CAPS = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
# updated alone: kexec into an update and reboot back (CAP_SYS_BOOT), and /boot (the
# boot partition, optional: netboot has none) to write the slots.
EXTRA = {"router7-updated": ({"CAP_SYS_BOOT"}, ["-/boot"])}


def service_scripts() -> list[str]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return sorted(s for s in scripts if s not in NOT_SERVICES)


def parse(path: Path) -> configparser.ConfigParser:
    # strict=False: systemd allows repeated keys (EnvironmentFile=).
    cp = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str
    cp.read_string(path.read_text(), source=str(path))
    return cp


def all_values(path: Path, key: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in path.read_text().splitlines()
        if line.startswith(key + "=")
    ]


def test_every_service_script_has_a_unit():
    assert sorted(service_scripts()) == sorted(f"router7-{s}" for s in router7.SERVICES)
    missing = [s for s in service_scripts() if not (UNITS / f"{s}.service").exists()]
    assert missing == []


def test_no_unit_without_a_script():
    scripts = set(service_scripts())
    extra = [
        p.stem
        for p in UNITS.glob("router7-*.service")
        if p.stem.removesuffix("@") not in scripts
        # The trial guard is plain sh on purpose: it must run when an update broke Python.
        and p.stem not in ("router7-testshell", "router7-recovery", "router7-trial-guard")
    ]
    assert extra == []


@pytest.mark.parametrize("script", service_scripts())
def test_unit_keeps_the_contract(script):
    path = UNITS / f"{script}.service"
    unit = parse(path)
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["Restart"] == "always"
    assert 0 < float(svc["RestartSec"]) <= 2
    assert svc["TimeoutStartSec"] == "10min"  # slow (TCG) start-ups must not loop
    assert svc["User"] == "router7" and svc["Group"] == "router7"
    assert svc["ExecStart"].startswith(f"@bindir@/{script} ")
    assert "$ROUTER7_EXTRA_ARGS" in svc["ExecStart"]
    assert "--perm /perm" in svc["ExecStart"] and "--run-dir /run/router7" in svc["ExecStart"]
    assert "port" not in svc["ExecStart"]  # ports stay the services' defaults
    assert all_values(path, "EnvironmentFile") == [
        "-/etc/router7/router7.env",
        "-/etc/router7/%N.env",
    ]
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    extra_caps, extra_paths = EXTRA.get(script, (set(), []))
    assert svc["ReadWritePaths"].split() == ["/perm", "/run/router7", *extra_paths]
    caps = set(svc.get("AmbientCapabilities", "").split())
    assert caps == set(svc.get("CapabilityBoundingSet", "").split())
    assert caps <= CAPS | extra_caps
    assert "DynamicUser" not in svc and "RuntimeDirectory" not in svc
    assert unit["Install"]["WantedBy"] == "router7.target"


def test_flags_exist_in_the_services_parsers():
    # A flag the unit passes but the service lacks would stop it at every start.
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for script in service_scripts():
        module = scripts[script].split(":")[0]
        exec_start = parse(UNITS / f"{script}.service")["Service"]["ExecStart"]
        argv = [
            w.replace("${ROUTER7_UPLINK}", "uplink0")
            .replace("${ROUTER7_LAN}", "lan0")
            .replace("${ROUTER7_LOG_LEVEL}", "info")
            for w in exec_start.split()[1:]
            if w != "$ROUTER7_EXTRA_ARGS"
        ]
        find_parser(module).parse_args(argv)  # exits (SystemExit) on an unknown flag


def find_parser(module_name: str):
    import importlib

    from router7.runtime.service import Service

    module = importlib.import_module(module_name)
    classes = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Service) and v is not Service
    ]
    assert classes, module_name
    return classes[0].parser()


def test_netconfigd_comes_before_the_services_that_need_addresses():
    for script in service_scripts():
        if script == "router7-netconfigd":
            continue
        unit = parse(UNITS / f"{script}.service")["Unit"]
        assert "router7-netconfigd.service" in unit["After"].split()
    assert "After" not in parse(UNITS / "router7-netconfigd.service")["Unit"] or (
        "router7-" not in parse(UNITS / "router7-netconfigd.service")["Unit"]["After"]
    )


def test_sysusers_and_tmpfiles_make_the_shared_user_and_run_dir():
    sysusers = (UNITS / "router7.sysusers.conf").read_text()
    assert "u router7 400:400" in sysusers
    tmpfiles = (UNITS / "router7.tmpfiles.conf").read_text()
    assert "d /run/router7 0755 router7 router7" in tmpfiles


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze on this host")
def test_units_pass_systemd_analyze_verify(tmp_path):
    bindir = Path(sys.executable).parent  # the venv's console scripts stand in for @bindir@
    names = []
    for unit in sorted(UNITS.glob("router7*.service")) + sorted(UNITS.glob("*.target")):
        script = unit.stem.removesuffix("@")
        if "@bindir@" in unit.read_text() and not (bindir / script).exists():
            pytest.skip(f"{script} not installed in {bindir}")
        (tmp_path / unit.name).write_text(unit.read_text().replace("@bindir@", str(bindir)))
        # A template is verified through an instance (a backup uplink's client).
        names.append(unit.name.replace("@.", "@uplink1."))
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"SYSTEMD_LOG_LEVEL": "notice", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
    )
    # Parse errors are only logged ("ignoring"), so any output is a failure.
    relevant = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if "router7" in line or "Failed" in line or "ignoring" in line
    ]
    assert proc.returncode == 0 and relevant == [], proc.stdout + proc.stderr
