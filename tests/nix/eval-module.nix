# services.router7 (pkgs/nixos/module.nix) evaluated with the stub NixOS options;
# `settings` (JSON) is merged into services.router7. Returns what the module sets.
{
  root,
  libPath,
  settings ? "{}",
}:
let
  lib = import libPath;
  pkgs = import ./stub-pkgs.nix { inherit lib; };
  package = pkgs.stubDrv "router7-0.1.0" { };
  evaluated = lib.evalModules {
    modules = [
      ./nixos-stubs.nix
      (root + "/pkgs/nixos/module.nix")
      {
        _module.args.pkgs = pkgs;
        services.router7 = {
          enable = true;
          inherit package;
        } // builtins.fromJSON settings;
      }
    ];
  };
  c = evaluated.config;
  units = import (root + "/pkgs/nixos/units.nix") { inherit lib; };
  unitFiles = lib.filterAttrs (
    name: type: type == "regular" && (lib.hasSuffix ".service" name || lib.hasSuffix ".target" name)
  ) (builtins.readDir (root + "/pkgs/systemd"));
in
{
  package = package.outPath;
  systemdPackages = map (p: p.outPath) c.systemd.packages;
  tmpfilesPackages = map (p: p.outPath) c.systemd.tmpfiles.packages;
  tmpfilesRules = c.systemd.tmpfiles.rules;
  services = c.systemd.services;
  targets = c.systemd.targets;
  etc = lib.mapAttrs (_: e: e.text) c.environment.etc;
  users = c.users.users;
  groups = c.users.groups;
  useDHCP = c.networking.useDHCP;
  useNetworkd = c.networking.useNetworkd;
  dhcpcd = c.networking.dhcpcd.enable;
  firewall = c.networking.firewall.enable;
  resolved = c.services.resolved.enable;
  sysctl = c.boot.kernel.sysctl;
  # The module's own reading of the unit files (pkgs/nixos/units.nix).
  parsedUnits = lib.mapAttrs (name: _: units.parseUnitFile (root + "/pkgs/systemd/${name}")) unitFiles;
  sysuser = units.sysuser (root + "/pkgs/systemd/router7.sysusers.conf");
}
