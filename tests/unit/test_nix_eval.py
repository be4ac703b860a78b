"""The flake and the NixOS module, evaluated with nixpkgs' lib against stubs.

nixpkgs is out of reach here, but its `lib` is not (tests/nix/nixpkgs-lib, see its
ORIGIN.md): `nix-instantiate --eval --strict --json` of tests/nix/eval-flake.nix and
eval-module.nix evaluates every flake output against a stub package set (argument
names checked like callPackage does) and the module through lib.evalModules with the
NixOS options it sets declared as stubs. The module's units are then compared with
pkgs/systemd/*, which the Debian image installs, so the two legs cannot drift.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from router7 import SERVICES

REPO = Path(__file__).resolve().parents[2]
NIXPKGS_LIB = REPO / "tests" / "nix" / "nixpkgs-lib" / "lib"  # origin: its ORIGIN.md
STUBS = REPO / "tests" / "nix"
UNITS = REPO / "pkgs" / "systemd"
VM_TESTS = REPO / "vm-tests"


def _nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if found is None:
        pytest.skip("nix-instantiate is not on PATH (scripts/setup installs nix-bin)")
    if not (NIXPKGS_LIB / "default.nix").exists():
        pytest.fail(f"{NIXPKGS_LIB} is absent: nixpkgs' lib is part of the checkout")
    if not (REPO / "flake.nix").exists() or not STUBS.exists():
        pytest.skip("not a full checkout (Nix build?)")
    return found


def nix_eval(expr_file: Path, **args: str) -> dict:
    """Evaluate a tests/nix expression; `args` are passed with --argstr."""
    cmd = [
        _nix_instantiate(),
        "--readonly-mode",  # store paths are computed, nothing is copied
        "--eval",
        "--strict",
        "--json",
        str(expr_file),
        "--arg",
        "root",
        str(REPO),
        "--arg",
        "libPath",
        str(NIXPKGS_LIB),
    ]
    for name, value in args.items():
        cmd += ["--argstr", name, value]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        errors = "\n".join(line for line in proc.stderr.splitlines() if "nixbld" not in line)
        raise AssertionError(f"nix-instantiate {expr_file.name} {args} failed:\n{errors}")
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def flake() -> dict:
    return nix_eval(STUBS / "eval-flake.nix")


@pytest.fixture(scope="module")
def module() -> dict:
    return nix_eval(STUBS / "eval-module.nix")


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax as the tests need it: sections of repeated keys."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    # A line ending in a backslash continues on the next (systemd.syntax(7)).
    for raw in path.read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


# Not the router's: the VM test shell, and the netbooted recovery system's installer
# (docs/recovery.md), which nothing enables.
NOT_ROUTER_UNITS = {
    "router7-testshell.service",
    "router7-recovery.service",
    "router7-recovery.target",
}


# Not a service of router7's package: the update trial's sh backstop (docs/updates.md),
# enabled with router7-updated.
TRIAL_GUARD = "router7-trial-guard"


def unit_files() -> list[Path]:
    return sorted(
        p
        for p in UNITS.glob("router7*")
        if p.suffix in (".service", ".target") and p.name not in NOT_ROUTER_UNITS
    )


# ---- the flake ---------------------------------------------------------------


def test_flake_outputs_exist(flake):
    assert {"router7", "default"} <= set(flake["packages"]["aarch64-linux"])
    assert {"router7", "default", "netboot", "image", "netboot-qemu", "image-qemu"} <= set(
        flake["packages"]["x86_64-linux"]
    )
    assert {"router7", "default"} <= set(flake["nixosModules"])
    assert {"router", "router-qemu"} <= set(flake["nixosConfigurations"])
    assert flake["devShells"]["x86_64-linux"] == ["default"]
    assert flake["overlay"] == ["router7"]
    assert "router7" in flake["checks"]["x86_64-linux"]


def test_every_scenario_is_a_check(flake):
    scenarios = {
        p.stem
        for p in VM_TESTS.glob("*.py")
        if not p.name.startswith("_") and "nix=none" not in p.read_text()
    }
    assert scenarios, "vm-tests/ has no scenarios"
    checks = set(flake["checks"]["x86_64-linux"])
    want = {"vm-" + name.replace("_", "-") for name in scenarios}
    assert want <= checks, f"scenarios without a check: {sorted(want - checks)}"
    assert set(flake["vmTests"]) == want, sorted(set(flake["vmTests"]) ^ want)


def test_vm_tests_have_the_lab_nodes(flake):
    for name, test in flake["vmTests"].items():
        script = (VM_TESTS / (name.removeprefix("vm-").replace("-", "_") + ".py")).read_text()
        assert test["testScript"].endswith(script), name
        nodes = test["nodes"]
        wanted = {"isp", "router", "lan"} | ({"lan2"} if "lan2" in script else set())
        assert set(nodes) == wanted, (name, sorted(nodes))
        assert test["extraPythonPackages"] == ["router7-0.1.0"], name
        # The ISP side of the lab, same unit names as nixpkgs' tests and the lab.
        isp = nodes["isp"]
        assert isp["kea"]["dhcp4"]["enable"] and isp["kea"]["dhcp6"]["enable"], name
        assert isp["kea"]["dhcp6"]["configFile"].endswith("/kea-dhcp6.json")
        # router7.lab.scenario.use_short_leases: in the NixOS ISP's configuration.
        short = "use_short_leases(isp)" in script
        for which in ("dhcp4", "dhcp6"):
            config_file = isp["kea"][which]["configFile"]
            assert ("router7-vm-isp-short-leases/" in config_file) == short, (name, which)
        assert {"radvd", "internet-http", "internet-dns", "isp-dns1", "isp-dns2"} <= set(
            isp["services"]
        )
        assert isp["interfaces"] == {"down0": {"vlan": 1}}
        # The router is the module, on the access segment and the LAN.
        router = nodes["router"]
        assert router["router7"] is True
        assert router["interfaces"] == {"uplink0": {"vlan": 1}, "lan0": {"vlan": 2}}
        assert {f"router7-{svc}" for svc in SERVICES} <= set(router["services"])
        for lan in ("lan", "lan2"):
            if lan in nodes:
                assert nodes[lan]["interfaces"] == {"eth1": {"vlan": 2}}, (name, lan)
                assert nodes[lan]["vlans"] == [], (name, lan)


def test_renumbered_pool_is_the_scenarios(flake):
    text = (VM_TESTS / "default.nix").read_text()
    pool = re.search(r'renumberedPool = "([^"]+)"', text).group(1)
    scenario = VM_TESTS / "renumber.py"
    if not scenario.exists():
        pytest.skip("vm-tests/renumber.py is not there")
    assert f'NEW_POOL = ipaddress.ip_network("{pool}")' in scenario.read_text()


def test_router7_package_installs_the_shared_units(flake):
    post = flake["router7"]["postInstall"]
    assert "/lib/systemd/system" in post and "@bindir@|$out/bin" in post
    assert "router7.tmpfiles.conf $out/lib/tmpfiles.d/router7.conf" in post
    # The VM test shell runs NixOS's bash; its udev rule is installed for the appliance.
    assert "s|/bin/bash|/nix/store/" in post and "lib/udev/rules.d" in post


def test_netboot_and_image(flake):
    netboot = flake["netboot"]
    assert netboot["cmdline"].startswith("init=/nix/store/")
    assert "console=ttyS0,115200" in netboot["cmdline"].split()
    for name in ("vmlinuz", "initrd", "cmdline", "netboot.ipxe"):
        assert f"$out/{name}" in netboot["script"], name
    image = flake["image"]
    assert re.search(r"router7-image disk \\\s+--kernel \S+/vmlinuz", image["script"])
    assert "--out $out/disk.img" in image["script"]
    assert "for f in vmlinuz initrd cmdline netboot.ipxe" in image["script"]
    # The packer's tools (router7.image.tools.DISK_TOOLS) come from these.
    assert {"util-linux", "dosfstools", "mtools", "syslinux", "e2fsprogs"} <= set(
        image["nativeBuildInputs"]
    )


def test_appliance_systems_are_small(flake):
    for name, system in flake["systems"].items():
        assert system["router7"] is True, name
        assert system["nix"] is False and system["switch"] is False, name
        # netboot.nix's nix-store --load-db would pull Nix back in.
        assert system["postBootCommands"] == "", name
        assert system["forbidden"] == ["perl"], name
        assert system["documentation"]["enable"] is False, name
        assert system["includeDefaultModules"] is False, name
        assert "console=ttyS0,115200" in system["kernelParams"], name
        assert system["hostPlatform"] == "x86_64-linux", name
        assert system["udevPackages"] == [system["package"]], name


def test_appliance_modules_are_the_debian_legs(flake):
    text = (REPO / "pkgs" / "debian" / "modules.txt").read_text()
    initrd = [
        m
        for line in text.splitlines()
        if line.startswith("initrd:")
        for m in line.removeprefix("initrd:").split("#")[0].split()
    ]
    boot = [
        line.split("#")[0].strip()
        for line in (REPO / "pkgs/debian/rootfs/etc/modules-load.d/router7.conf")
        .read_text()
        .splitlines()
        if line.split("#")[0].strip()
    ]
    for name, system in flake["systems"].items():
        assert set(initrd) <= set(system["availableKernelModules"]), name
        assert system["kernelModules"] == boot, name


def test_dev_shell_has_the_image_and_vm_tools(flake):
    packages = set(flake["devShellPackages"])
    assert {"qemu_kvm", "squashfsTools", "mtools", "syslinux", "dosfstools", "e2fsprogs"} <= (
        packages
    )
    assert {"mmdebstrap", "util-linux", "kea", "radvd", "nix"} <= packages


# ---- the module against the unit files ----------------------------------------


def test_nix_reads_the_units_as_systemd_does(module):
    every = sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".target"))
    assert set(module["parsedUnits"]) == {p.name for p in every}
    for path in every:
        assert module["parsedUnits"][path.name] == parse_unit(path), path.name


def test_module_enables_exactly_the_units_of_pkgs_systemd(module):
    # Template units (router7-dhcp4@: a backup uplink's client) start from udev, not the module.
    services = {p.stem for p in unit_files() if p.suffix == ".service" and "@" not in p.stem}
    assert services == {f"router7-{svc}" for svc in SERVICES} | {TRIAL_GUARD}
    assert set(module["services"]) == services
    assert module["systemdPackages"] == [module["package"]]
    assert module["tmpfilesPackages"] == [module["package"]]
    for name, unit in module["services"].items():
        install = parse_unit(UNITS / f"{name}.service")["Install"]
        assert unit["enable"] is True, name
        assert unit["wantedBy"] == " ".join(install["WantedBy"]).split(), name
    target = parse_unit(UNITS / "router7.target")["Install"]["WantedBy"]
    assert module["targets"]["router7"]["wantedBy"] == target


def test_module_overrides_nothing_the_image_sets(module):
    """ExecStart, User, capabilities and ordering come only from the unit files:
    the NixOS drop-in (overrides.conf) carries wantedBy and nothing else."""
    for name, unit in module["services"].items():
        assert unit["serviceConfig"] == {}, (name, unit["serviceConfig"])
        for key in ("after", "before", "requires", "bindsTo", "path"):
            assert unit[key] == [], (name, key)
        extra = set(unit) - {
            "enable",
            "wantedBy",
            "serviceConfig",
            "after",
            "before",
            "requires",
            "bindsTo",
            "path",
        }
        assert not extra, (name, extra)


def test_effective_units_run_the_packages_scripts(module):
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    bindir = module["package"] + "/bin"
    for svc in SERVICES:
        unit = parse_unit(UNITS / f"router7-{svc}.service")
        exec_start = unit["Service"]["ExecStart"][0].replace("@bindir@", bindir)
        program = exec_start.split()[0]
        assert program == f"{bindir}/router7-{svc}", exec_start
        assert f"router7-{svc}" in scripts
        assert "--perm /perm" in exec_start and "--run-dir /run/router7" in exec_start


def test_units_user_is_the_modules_static_user(module):
    sysuser = module["sysuser"]
    assert module["users"] == {
        sysuser["name"]: {
            "isSystemUser": True,
            "uid": sysuser["uid"],
            "group": sysuser["name"],
            "home": "/perm",
            "description": "router7 services",
        }
    }
    assert module["groups"] == {sysuser["name"]: {"gid": sysuser["gid"]}}
    for svc in SERVICES:
        service = parse_unit(UNITS / f"router7-{svc}.service")["Service"]
        assert service["User"] == [sysuser["name"]] and service["Group"] == [sysuser["name"]]
        assert "DynamicUser" not in service


def test_env_files_are_the_ones_the_units_read(module):
    etc = module["etc"]
    used: set[str] = set()
    written_all: set[str] = set()
    for svc in SERVICES:
        unit = f"router7-{svc}"
        service = parse_unit(UNITS / f"{unit}.service")["Service"]
        files = [f.lstrip("-").replace("%N", unit) for f in service["EnvironmentFile"]]
        assert files == ["/etc/router7/router7.env", f"/etc/router7/{unit}.env"], unit
        for f in files:
            assert f.removeprefix("/etc/") in etc, f
        defaults = dict(v.split("=", 1) for v in " ".join(service["Environment"]).split())
        written = {
            line.split("=", 1)[0]
            for f in files
            for line in etc[f.removeprefix("/etc/")].splitlines()
        }
        # Every variable the module writes has a default in the unit, so both legs
        # run the same command line when nothing is configured.
        assert written <= set(defaults), (unit, written - set(defaults))
        written_all |= written
        used.update(var for var in written if re.search(rf"\$\{{?{var}\b", service["ExecStart"][0]))
    # ...and each one reaches some command line (dhcp4 takes no --lan, dnsd does).
    assert used == written_all, written_all - used
    assert etc["router7/router7.env"] == (
        "ROUTER7_LAN=lan0\nROUTER7_LOG_LEVEL=info\nROUTER7_UPLINK=uplink0\n"
    )
    assert etc["router7/router7-dnsd.env"] == "ROUTER7_EXTRA_ARGS=\n"


def test_module_defaults_match_the_units_defaults(module):
    defaults = dict(
        v.split("=", 1)
        for v in parse_unit(UNITS / "router7-dhcp4.service")["Service"]["Environment"][0].split()
    )
    written = dict(line.split("=", 1) for line in module["etc"]["router7/router7.env"].split())
    assert written == {k: defaults[k] for k in written}


def test_read_write_paths_exist(module):
    tmpfiles = (UNITS / "router7.tmpfiles.conf").read_text()
    for svc in SERVICES:
        service = parse_unit(UNITS / f"router7-{svc}.service")["Service"]
        for path in " ".join(service["ReadWritePaths"]).split():
            if path.startswith("-"):  # optional: a mount point the initrd makes (/boot)
                init = (REPO / "pkgs/debian/init").read_text()
                assert f"/newroot{path[1:]}" in init, path
                continue
            assert re.search(rf"^[dz] {re.escape(path)} ", tmpfiles, re.MULTILINE), path


def test_module_turns_off_what_fights_the_router(module):
    assert module["useDHCP"] is False and module["dhcpcd"] is False
    assert module["firewall"] is False and module["resolved"] is False
    assert module["useNetworkd"] is False
    # Not at boot: netconfigd switches forwarding on after its ruleset (netconfigd/apply.py).
    assert module["sysctl"] == {}


def test_module_options_reach_the_env_files():
    settings = {
        "uplink": "enp1s0",
        "lan": "enp2s0",
        "logLevel": "debug",
        "services": {"dnsd": {"extraArgs": ["--metrics-port=0", "--x=1"]}},
    }
    module = nix_eval(STUBS / "eval-module.nix", settings=json.dumps(settings))
    assert module["etc"]["router7/router7.env"] == (
        "ROUTER7_LAN=enp2s0\nROUTER7_LOG_LEVEL=debug\nROUTER7_UPLINK=enp1s0\n"
    )
    assert module["etc"]["router7/router7-dnsd.env"] == (
        "ROUTER7_EXTRA_ARGS=--metrics-port=0 --x=1\n"
    )


def test_disabled_service_is_masked_and_has_no_env_file():
    module = nix_eval(
        STUBS / "eval-module.nix",
        settings=json.dumps({"services": {"captured": {"enable": False}}}),
    )
    assert module["services"]["router7-captured"] == {
        **module["services"]["router7-captured"],
        "enable": False,
        "wantedBy": [],
    }
    assert "router7/router7-captured.env" not in module["etc"]
    assert module["services"]["router7-dhcp4"]["enable"] is True


def test_the_trial_guard_goes_with_updated():
    module = nix_eval(
        STUBS / "eval-module.nix",
        settings=json.dumps({"services": {"updated": {"enable": False}}}),
    )
    assert module["services"][TRIAL_GUARD]["enable"] is False
    assert module["services"]["router7-updated"]["enable"] is False


def test_other_perm_dir_is_bind_mounted_on_perm():
    module = nix_eval(STUBS / "eval-module.nix", settings=json.dumps({"permDir": "/data/r7"}))
    for name, unit in module["services"].items():
        want = {} if name == TRIAL_GUARD else {"BindPaths": ["/data/r7:/perm"]}  # no /perm
        assert unit["serviceConfig"] == want, name
    assert "d /data/r7 0755 router7 router7 -" in module["tmpfilesRules"]


@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"services": {"dnsd": {"extraArgs": ["two words"]}}}, "extraArgs"),
        ({"logLevel": "verbose"}, "logLevel"),
        ({"uplink": "a-name-longer-than-ifnamsiz"}, "uplink"),
        ({"permDir": "relative"}, "permDir"),
    ],
)
def test_bad_options_are_refused_by_name(settings, fragment):
    with pytest.raises(AssertionError, match=fragment):
        nix_eval(STUBS / "eval-module.nix", settings=json.dumps(settings))
