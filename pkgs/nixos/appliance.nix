# The router as a small, read-only appliance booted from a kernel + initrd that holds
# the whole system (netboot or the disk image's slot A/B): no Nix daemon, no
# documentation, no perl. Hardware comes from apu2c4.nix or qemu.nix.
{
  config,
  lib,
  modulesPath,
  ...
}:
let
  inherit (lib) filter hasPrefix removePrefix splitString concatMap;
  # The lines of a list file, without comments and blanks.
  lines =
    file:
    filter (l: builtins.match "[[:space:]]*" l == null) (
      map (l: lib.head (splitString "#" l)) (splitString "\n" (builtins.readFile file))
    );
  words = l: filter (w: w != "") (splitString " " l);
  debianInitrdModules = concatMap (l: words (removePrefix "initrd:" l)) (
    filter (hasPrefix "initrd:") (lines ../debian/modules.txt)
  );
  debianBootModules = concatMap words (lines ../debian/rootfs/etc/modules-load.d/router7.conf);
in
{
  imports = [
    ./perm.nix
    # fileSystems (tmpfs root, squashfs store in the initrd), system.build.
    # {netbootRamdisk,netbootIpxeScript,squashfsStore}.
    "${modulesPath}/installer/netboot/netboot.nix"
    # documentation.*, environment.defaultPackages = [ ] (perl is a default package).
    "${modulesPath}/profiles/minimal.nix"
    # Activation without perl: systemd initrd, /etc overlay, userborn; and
    # system.forbiddenDependenciesRegexes = [ "perl" ] fails the build if perl
    # creeps back into the closure.
    "${modulesPath}/profiles/perlless.nix"
  ];

  services.router7.enable = true;
  # The VM test shell's udev rule (pkgs/systemd/99-router7-testshell.rules), as in the
  # Debian image: it starts router7-testshell.service only when qemu offers the
  # org.router7.testshell port, which real hardware never has.
  services.udev.packages = [ config.services.router7.package ];

  # As pkgs/debian/rootfs/etc/systemd/journald.conf.d/router7-console.conf: warnings
  # reach the serial console, where the owner reads the admin credential on first boot.
  services.journald.extraConfig = ''
    ForwardToConsole=yes
    MaxLevelConsole=warning
  '';

  # From profiles/image-based-appliance.nix, without its networking.useNetworkd:
  # the system is replaced whole (slot A/B or netboot), never rebuilt in place.
  nix.enable = false;
  system.switch.enable = false;
  users.mutableUsers = false;

  # netboot.nix registers the store in the Nix database after boot (nix-store
  # --load-db, nix-env), which pulls Nix back into the closure.
  boot.postBootCommands = lib.mkForce "";

  # The Debian leg's kernel module lists (pkgs/debian/modules.txt, "initrd:" lines;
  # pkgs/debian/rootfs/etc/modules-load.d/router7.conf), read here so both legs load
  # the same modules. NixOS ships every module in the system; only the initrd is
  # restricted (the default list would add every disk and USB HID driver).
  boot.initrd.includeDefaultModules = false;
  boot.initrd.availableKernelModules = debianInitrdModules;
  boot.kernelModules = debianBootModules;

  # /perm: perm.nix (the disk's ext4 "perm" partition, else a tmpfs).

  # Updates (router7-updated), as on the Debian leg (pkgs/debian/init mounts /boot;
  # rootfs/etc/systemd/system.conf.d/router7-watchdog.conf): the boot partition with
  # slots A/B on /boot, owned by the router7 user; systemd keeps the hardware watchdog;
  # the image's version string in /etc/router7/version.
  fileSystems."/boot" = {
    device = "/dev/disk/by-label/ROUTER7BOOT";
    fsType = "vfat";
    options = [
      "rw" "noatime" "nofail" "iocharset=utf8" "uid=400" "gid=400" "fmask=0022" "dmask=0022" "flush"
      "x-systemd.device-timeout=5min"
    ];
  };
  systemd.watchdog = {
    runtimeTime = "3min"; # as the Debian leg (router7-watchdog.conf says why)
    rebootTime = "10min";
  };
  environment.etc."router7/version".text =
    "${lib.getVersion config.services.router7.package}+nixos\n";

  # The serial console is the only console (apu2c4 and the qemu variant alike);
  # the console= arguments are also in the disk image's cmdline (pkgs/image.nix).
  # transparent_hugepage=madvise as in the Debian leg (services/router7/image/build.py):
  # no 2 MiB pages behind every Python heap.
  # watchdog.stop_on_reboot=0 as there too: the watchdog keeps counting through the
  # kexec of an update's trial, so a new system that hangs early is reset.
  boot.kernelParams = [
    "console=ttyS0,115200"
    "transparent_hugepage=madvise"
    "watchdog.stop_on_reboot=0"
  ];
  boot.loader.timeout = lib.mkForce 0;

  networking.hostName = lib.mkDefault "router7";
  time.timeZone = "UTC";
  system.stateVersion = "26.05";
}
