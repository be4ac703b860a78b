# Stub declarations of the NixOS options set by pkgs/nixos/*.nix, vm-tests/default.nix
# and the stand-ins in modules/. Types are loose (the real ones are in the nixpkgs file
# named on each line), but a name that is not declared here is an error, and list
# options concatenate as in NixOS.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  anything = mkOption {
    type = types.anything;
    default = null;
  };
  list = mkOption {
    type = types.listOf types.anything;
    default = [ ];
  };
  attrs = mkOption {
    type = types.lazyAttrsOf types.anything;
    default = { };
  };
  bool = default: mkOption {
    type = types.bool;
    inherit default;
  };
  lines = mkOption {
    type = types.lines;
    default = "";
  };
  # nixos/lib/systemd-unit-options.nix
  unit = types.submodule {
    freeformType = types.lazyAttrsOf types.anything;
    options = {
      enable = bool true;
      wantedBy = list;
      after = list;
      before = list;
      requires = list;
      bindsTo = list;
      path = list;
      serviceConfig = attrs;
    };
  };
  units = mkOption {
    type = types.attrsOf unit;
    default = { };
  };
in
{
  options = {
    # nixos/modules/system/boot/systemd.nix
    systemd.packages = list;
    systemd.services = units;
    systemd.targets = units;
    # nixos/modules/system/boot/systemd/tmpfiles.nix
    systemd.tmpfiles.packages = list;
    systemd.tmpfiles.rules = list;
    # nixos/modules/config/users-groups.nix
    users.users = mkOption {
      type = types.attrsOf (types.lazyAttrsOf types.anything);
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf (types.lazyAttrsOf types.anything);
      default = { };
    };
    users.mutableUsers = bool true;
    # nixos/modules/system/etc/etc.nix
    environment.etc = mkOption {
      type = types.attrsOf (types.lazyAttrsOf types.anything);
      default = { };
    };
    # nixos/modules/config/system-path.nix
    environment.systemPackages = list;
    environment.defaultPackages = list;
    # nixos/modules/tasks/network-interfaces.nix
    networking.useDHCP = bool true;
    networking.useNetworkd = bool false;
    networking.hostName = anything;
    networking.interfaces = attrs;
    # nixos/modules/services/networking/dhcpcd.nix
    networking.dhcpcd.enable = bool true;
    networking.dhcpcd.extraConfig = lines;
    # nixos/modules/services/networking/firewall.nix
    networking.firewall.enable = bool true;
    # nixos/modules/system/boot/resolved.nix
    services.resolved.enable = bool true;
    # nixos/modules/services/networking/kea.nix
    services.kea = attrs;
    # nixos/modules/services/networking/radvd.nix
    services.radvd = attrs;
    # nixos/modules/services/system/userborn.nix
    services.userborn.enable = bool false;
    # nixos/modules/system/boot/systemd/journald.nix
    services.journald.extraConfig = lines;
    # nixos/modules/services/hardware/udev.nix
    services.udev.packages = list;
    # nixos/modules/config/sysctl.nix
    boot.kernel.sysctl = attrs;
    # nixos/modules/system/boot/kernel.nix
    boot.kernelParams = list;
    # nixos/modules/system/boot/systemd.nix
    systemd.watchdog.runtimeTime = anything;
    systemd.watchdog.rebootTime = anything;
    boot.kernelModules = list;
    boot.initrd.availableKernelModules = list;
    boot.initrd.kernelModules = list;
    boot.initrd.includeDefaultModules = bool true;
    # nixos/modules/system/boot/systemd/initrd.nix
    boot.initrd.systemd.enable = bool false;
    # nixos/modules/system/boot/stage-2.nix
    boot.postBootCommands = lines;
    # nixos/modules/system/boot/loader/loader.nix, grub/grub.nix
    boot.loader.timeout = anything;
    boot.loader.grub.enable = bool true;
    system.boot.loader.kernelFile = mkOption {
      type = types.str;
      default = "bzImage";
    };
    # nixos/modules/tasks/filesystems.nix
    fileSystems = attrs;
    # nixos/modules/config/nix.nix
    nix.enable = bool true;
    # nixos/modules/system/activation/switchable-system.nix
    system.switch.enable = bool true;
    # nixos/modules/system/etc/etc-activation.nix
    system.etc.overlay.enable = bool false;
    # nixos/modules/system/activation/top-level.nix
    system.build = attrs;
    system.forbiddenDependenciesRegexes = list;
    system.stateVersion = anything;
    # nixos/modules/misc/documentation.nix
    documentation = attrs;
    # nixos/modules/config/locale.nix
    time.timeZone = anything;
    # nixos/modules/misc/nixpkgs.nix
    nixpkgs.hostPlatform = anything;
    # nixos/modules/programs/less.nix, nixos/modules/installer/tools/tools.nix
    programs.less.lessopen = anything;
    system.tools.nixos-generate-config.enable = bool true;
    # nixos/modules/virtualisation/qemu-vm.nix
    virtualisation.interfaces = attrs;
    virtualisation.vlans = list;
    virtualisation.memorySize = anything;
    virtualisation.emptyDiskImages = list;
    # nixos/modules/system/activation/specialisation.nix
    specialisation = attrs;
  };
}
