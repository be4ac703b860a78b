# flake.nix's outputs evaluated against the stub package set (stub-pkgs.nix) and a
# stub nixpkgs.lib.nixosSystem (lib.evalModules with nixos-stubs.nix, modulesPath =
# ./modules). Returns the facts tests/unit/test_nix_eval.py checks.
{ root, libPath }:
let
  lib = import libPath;
  mkPkgs = system: import ./stub-pkgs.nix { inherit lib system; };
  evalNixos =
    modules:
    lib.evalModules {
      # As nixos/lib/eval-config.nix: modulesPath is a special argument (imports use it).
      specialArgs.modulesPath = toString ./modules; # a string: no store copy
      modules = [
        ./nixos-stubs.nix
        { _module.args.pkgs = mkPkgs "x86_64-linux"; }
      ] ++ modules;
    };
  nixpkgs = {
    lib = lib // {
      # nixpkgs' flake.nix: lib.nixosSystem = args: import ./nixos/lib/eval-config.nix …
      nixosSystem = args: evalNixos args.modules;
    };
    legacyPackages = lib.genAttrs [
      "x86_64-linux"
      "aarch64-linux"
    ] mkPkgs;
  };
  flake = import (root + "/flake.nix");
  outputs = flake.outputs {
    self = outputs;
    inherit nixpkgs;
  };
  x86 = outputs.packages.x86_64-linux;
  names = builtins.attrNames;
  nameOf = p: p.name;

  system = cfg: {
    kernelParams = cfg.boot.kernelParams;
    availableKernelModules = cfg.boot.initrd.availableKernelModules;
    kernelModules = cfg.boot.kernelModules;
    includeDefaultModules = cfg.boot.initrd.includeDefaultModules;
    postBootCommands = cfg.boot.postBootCommands;
    nix = cfg.nix.enable;
    switch = cfg.system.switch.enable;
    hostPlatform = cfg.nixpkgs.hostPlatform;
    router7 = cfg.services.router7.enable;
    package = cfg.services.router7.package.outPath;
    fileSystems = names cfg.fileSystems;
    forbidden = cfg.system.forbiddenDependenciesRegexes;
    documentation = cfg.documentation;
    udevPackages = map (p: p.outPath) cfg.services.udev.packages;
  };

  node =
    module:
    let
      cfg = (evalNixos [ module ]).config;
    in
    {
      services = lib.mapAttrs (_: s: s.serviceConfig.ExecStart or null) cfg.systemd.services;
      interfaces = cfg.virtualisation.interfaces;
      vlans = cfg.virtualisation.vlans;
      kea = cfg.services.kea;
      router7 = cfg.services.router7.enable or false;
    };

  vmTests = lib.filterAttrs (n: _: lib.hasPrefix "vm-" n) outputs.checks.x86_64-linux;
in
{
  nixpkgsUrl = flake.inputs.nixpkgs.url;
  packages = lib.mapAttrs (_: names) outputs.packages;
  checks = lib.mapAttrs (_: names) outputs.checks;
  nixosModules = names outputs.nixosModules;
  nixosConfigurations = names outputs.nixosConfigurations;
  devShells = lib.mapAttrs (_: names) outputs.devShells;
  devShellPackages = map nameOf outputs.devShells.x86_64-linux.default.stubArgs.packages;
  overlay = names (outputs.overlays.default (mkPkgs "x86_64-linux") { });
  router7 = {
    inherit (x86.router7) name;
    postInstall = x86.router7.stubArgs.postInstall;
    dependencies = map nameOf x86.router7.dependencies;
  };
  netboot = {
    inherit (x86.netboot) cmdline;
    script = x86.netboot.stubArgs.script;
  };
  image = {
    script = x86.image.stubArgs.script;
    nativeBuildInputs = map nameOf x86.image.stubArgs.nativeBuildInputs;
  };
  systems = lib.mapAttrs (_: c: system c.config) outputs.nixosConfigurations;
  vmTests = lib.mapAttrs (_: t: {
    inherit (t.stubArgs) name skipTypeCheck testScript;
    nodes = lib.mapAttrs (_: node) t.stubArgs.nodes;
    extraPythonPackages = map nameOf (t.stubArgs.extraPythonPackages (mkPkgs "x86_64-linux").python3Packages);
  }) vmTests;
}
