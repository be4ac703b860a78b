# The router as a small, read-only appliance booted from a kernel + initrd that holds
# the whole system (netboot or the disk image's slot A/B): no Nix daemon, no
# documentation, no perl. Hardware comes from apu2c4.nix or qemu.nix.
{
  lib,
  modulesPath,
  ...
}:
{
  imports = [
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

  # From profiles/image-based-appliance.nix, without its networking.useNetworkd:
  # the system is replaced whole (slot A/B or netboot), never rebuilt in place.
  nix.enable = false;
  system.switch.enable = false;
  users.mutableUsers = false;

  # netboot.nix registers the store in the Nix database after boot (nix-store
  # --load-db, nix-env), which pulls Nix back into the closure.
  boot.postBootCommands = lib.mkForce "";

  # Only the modules the router needs (hardware modules come from apu2c4.nix or
  # qemu.nix); the default list would add every disk and USB HID driver to the initrd.
  boot.initrd.includeDefaultModules = false;
  boot.initrd.availableKernelModules = [
    # netboot.nix adds squashfs, overlay and loop for the store.
    "ext4" # /perm
    "vfat" # the boot partition (slots A/B)
    "nls_cp437"
    "nls_iso8859_1"
    "sd_mod"
  ];
  boot.kernelModules = [
    "nf_tables" # netconfigd: NAT, firewall, port forwarding
    "nft_masq"
    "nft_nat"
    "nft_ct"
    "nft_chain_nat"
  ];

  # /perm: the second partition of the disk image (ext4, label "perm"), as on the
  # Debian leg. nofail: netboot recovery boots without a disk.
  fileSystems."/perm" = {
    device = "/dev/disk/by-label/perm";
    fsType = "ext4";
    options = [
      "nofail"
      "x-systemd.device-timeout=10s"
    ];
  };

  # The serial console is the only console (apu2c4 and the qemu variant alike);
  # the console= arguments are also in the disk image's cmdline (pkgs/image.nix).
  boot.kernelParams = [ "console=ttyS0,115200" ];
  boot.loader.timeout = lib.mkForce 0;

  networking.hostName = lib.mkDefault "router7";
  time.timeZone = "UTC";
  system.stateVersion = "26.05";
}
