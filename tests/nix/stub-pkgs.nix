# A stub package set: just enough of nixpkgs for the project's Nix files, checking the
# argument names they pass. Packages are attribute sets with type = "derivation" and a
# fake outPath; builders return their arguments (`stubArgs`) so tests can read them.
{ lib, system ? "x86_64-linux" }:
let
  inherit (lib) attrNames concatStringsSep filter functionArgs;

  stubDrv =
    name: attrs:
    {
      type = "derivation";
      inherit name system;
      outPath = "/nix/store/00000000000000000000000000000000-${name}";
      outputName = "out";
    }
    // attrs;

  # callPackage as in nixpkgs (lib/customisation.nix): arguments without a default
  # come from the package set or the explicit overrides; anything else is an error.
  callPackageWith =
    autoArgs: fn: args:
    let
      f = if builtins.isFunction fn then fn else import fn;
      wanted = functionArgs f;
      missing = filter (n: !wanted.${n} && !(autoArgs ? ${n}) && !(args ? ${n})) (attrNames wanted);
      unknown = filter (n: !(wanted ? ${n})) (attrNames args);
    in
    if missing != [ ] then
      throw "callPackage ${toString fn}: no value for ${concatStringsSep ", " missing}"
    else if unknown != [ ] then
      throw "callPackage ${toString fn}: unexpected ${concatStringsSep ", " unknown}"
    else
      f (builtins.intersectAttrs wanted autoArgs // args);

  # pkgs/development/interpreters/python/mk-python-derivation.nix takes these (and
  # more); an argument outside the list is likely a typo.
  pythonArgs = [
    "pname"
    "version"
    "pyproject"
    "src"
    "build-system"
    "dependencies"
    "makeWrapperArgs"
    "doCheck"
    "nativeCheckInputs"
    "enabledTestPaths"
    "pytestFlags"
    "preCheck"
    "postInstall"
    "pythonImportsCheck"
    "meta"
  ];

  pyPkg = name: extra: stubDrv "python3-${name}" ({ pythonModule = true; } // extra);

  python3Packages = rec {
    buildPythonApplication =
      args:
      let
        unknown = filter (n: !(lib.elem n pythonArgs)) (attrNames args);
      in
      if unknown != [ ] then
        throw "buildPythonApplication: unexpected ${concatStringsSep ", " unknown}"
      else
        stubDrv "${args.pname}-${args.version}" {
          stubArgs = args;
          inherit (args) dependencies;
        };
    toPythonModule = drv: drv // { pythonModule = true; };
    setuptools = pyPkg "setuptools" { };
    twisted = pyPkg "twisted" {
      optional-dependencies.conch = [ (pyPkg "pyasn1" { }) ];
    };
    dnslib = pyPkg "dnslib" { };
    # pkgs/development/python-modules/scapy/default.nix arguments.
    scapy = pyPkg "scapy" {
      override =
        args:
        let
          known = [
            "withOptionalDeps"
            "withPlottingSupport"
            "withVoipSupport"
            "withCryptography"
            "withManufDb"
          ];
          unknown = filter (n: !(lib.elem n known)) (attrNames args);
        in
        if unknown != [ ] then throw "scapy.override: unexpected ${toString unknown}" else scapy;
    };
    pyroute2 = pyPkg "pyroute2" { };
    pyserial = pyPkg "pyserial" { };
    prometheus-client = pyPkg "prometheus-client" { };
    pytestCheckHook = stubDrv "pytest-check-hook" { };
    hypothesis = pyPkg "hypothesis" { };
    pytest = pyPkg "pytest" { };
    supervisor = pyPkg "supervisor" { };
  };

  python3 = stubDrv "python3" {
    sitePackages = "lib/python3.13/site-packages";
    interpreter = "/nix/store/00000000000000000000000000000000-python3/bin/python3";
    pkgs = python3Packages;
    withPackages = f: stubDrv "python3-env" { packages = f python3Packages; };
  };

  tools = lib.genAttrs [
    "iproute2"
    "nftables"
    "kea"
    "dnsmasq"
    "radvd"
    "dhcpcd"
    "ndisc6"
    "dnsutils"
    "wireshark-cli"
    "curl"
    "nmap"
    "mmdebstrap"
    "squashfsTools"
    "util-linux"
    "dosfstools"
    "mtools"
    "syslinux"
    "e2fsprogs"
    "cpio"
    "zstd"
    "qemu_kvm"
    "nix"
    "ruff"
    "coreutils"
    "gawk"
    "gnugrep"
    "bash"
  ] (name: stubDrv name { });

  pkgs = tools // {
    inherit
      lib
      stubDrv
      python3
      python3Packages
      ;
    stdenv.hostPlatform.system = system;
    callPackage = callPackageWith pkgs;
    # pkgs/build-support/trivial-builders/default.nix
    runCommand =
      name: env: script:
      stubDrv name (
        (env.passthru or { })
        // {
          stubArgs = env // {
            inherit script;
          };
        }
      );
    mkShell = args: stubDrv "nix-shell" { stubArgs = args; };
    # pkgs/build-support/testers/default.nix: runNixOSTest takes a test module.
    testers.runNixOSTest = test: stubDrv "vm-test-run-${test.name}" { stubArgs = test; };
  };
in
pkgs
