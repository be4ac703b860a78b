# The router7 Python package: every service daemon and the lab CLI as console
# scripts (see [project.scripts] in pyproject.toml), built from this checkout.
#
# Used by flake.nix (packages, checks, overlay). Call it with
# `pkgs.callPackage ./pkgs/router7.nix { }`.
#
# tests/unit/test_nix_files.py keeps `dependencies` below in step with
# [project].dependencies in pyproject.toml: add a runtime dependency in both.
{
  lib,
  python3Packages,
  bash,
  iproute2,
  nftables,
}:

let
  fs = lib.fileset;

  # Name, version and description come from pyproject.toml, so there is one
  # place to bump the version.
  project = (lib.importTOML ../pyproject.toml).project;

  # A directory of Python code without stray bytecode from local runs.
  pythonTree = dir: fs.difference dir (fs.fileFilter (file: file.hasExt "pyc") dir);
in
python3Packages.buildPythonApplication {
  pname = project.name;
  inherit (project) version;
  pyproject = true;

  # Only what the build and the unit tests read: editing docs/, the Nix files
  # or the lab scripts does not rebuild the package. README.md is the
  # project's readme (pyproject.toml) and may not exist yet in a fresh tree.
  src = fs.toSource {
    root = ../.;
    fileset = fs.unions [
      ../pyproject.toml
      (fs.maybeMissing ../README.md)
      (fs.difference (pythonTree ../services) (fs.maybeMissing ../services/router7.egg-info))
      (pythonTree ../tests)
    ];
  };

  build-system = with python3Packages; [ setuptools ];

  dependencies =
    with python3Packages;
    [
      twisted
      dnslib
      # The default scapy pulls tcpdump, ipython, matplotlib and sox into the
      # closure; the daemons only build and parse packets. BPF filters are
      # compiled through libpcap, which scapy keeps in every variant.
      (scapy.override {
        withOptionalDeps = false;
        withPlottingSupport = false;
        withVoipSupport = false;
      })
      pyroute2
      prometheus-client
    ]
    # captured streams packet captures over SSH (Twisted conch).
    ++ twisted.optional-dependencies.conch;

  # The daemons call `ip` (and later `nft`); the wrappers of the console
  # scripts put them first on PATH so the system's copies do not matter.
  makeWrapperArgs = [
    "--prefix PATH : ${
      lib.makeBinPath [
        iproute2
        nftables
      ]
    }"
  ];

  # The systemd units both legs share (pkgs/systemd/, see its README), with @bindir@
  # pointing at the wrapped console scripts; the NixOS module enables them through
  # systemd.packages and systemd.tmpfiles.packages. The VM test shell (unit and udev
  # rule, started only when qemu offers its virtio port) gets NixOS's bash and PATH
  # instead of /bin/bash; the appliance installs its rule (pkgs/nixos/appliance.nix).
  postInstall = ''
    mkdir -p $out/lib/systemd/system $out/lib/tmpfiles.d $out/lib/sysusers.d $out/lib/udev/rules.d
    for unit in ${./systemd}/router7*.service ${./systemd}/router7.target; do
      dest=$out/lib/systemd/system/$(basename "$unit")
      sed -e "s|@bindir@|$out/bin|g" \
        -e "s|/bin/bash|${bash}/bin/bash|g" \
        -e "s|^Environment=PATH=.*|Environment=PATH=/run/current-system/sw/bin:/run/wrappers/bin|" \
        "$unit" >"$dest"
      if grep -q '@[a-z]*@' "$dest"; then
        echo "unsubstituted placeholder in $dest" >&2
        exit 1
      fi
    done
    cp ${./systemd}/router7.tmpfiles.conf $out/lib/tmpfiles.d/router7.conf
    cp ${./systemd}/router7.sysusers.conf $out/lib/sysusers.d/router7.conf
    cp ${./systemd}/*.rules $out/lib/udev/rules.d/
  '';

  # Unit tests only. Integration tests need root, network namespaces and the
  # lab daemons; they skip themselves without root, and the build sandbox
  # must not even collect them.
  doCheck = true;
  nativeCheckInputs = with python3Packages; [
    pytestCheckHook
    pytest-xdist # ./scripts/test runs the VM tests in parallel; unused here
    hypothesis
  ];
  enabledTestPaths = [ "tests/unit" ];
  pytestFlags = [ "--ignore=tests/integration" ];
  # Let the tests import shared helpers as `tests.…` whatever pytest's import
  # mode. The code under test stays the installed package: the source root
  # holds no router7/ (it lives under services/), so nothing shadows it.
  preCheck = ''
    export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
  '';

  pythonImportsCheck = [ "router7" ];

  meta = {
    inherit (project) description;
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    # No mainProgram: there is one console script per service, plus the lab.
  };
}
