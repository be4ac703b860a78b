# packages.netboot: what a PXE/iPXE server hands the router, from a NixOS system that
# imports netboot.nix (pkgs/nixos/appliance.nix): the kernel, the initrd holding the
# whole system (squashfs store, nixos/modules/installer/netboot/netboot.nix:
# system.build.netbootRamdisk), the kernel command line and netboot.ipxe. Same file
# names as the Debian leg's build/image/ (vmlinuz, initrd, cmdline, netboot.ipxe);
# the disk image (pkgs/image.nix) boots these very files from its slots.
{
  lib,
  runCommand,
  nixos, # the evaluated system, e.g. self.nixosConfigurations.router
}:
let
  inherit (nixos.config.system) build;
  # nixos/modules/system/boot/kernel.nix: system.boot.loader.kernelFile (bzImage).
  kernelFile = nixos.config.system.boot.loader.kernelFile;
  # What netboot.nix's iPXE script passes, minus iPXE's own initrd= argument.
  cmdline = "init=${build.toplevel}/init ${toString nixos.config.boot.kernelParams}";
in
runCommand "router7-netboot"
  {
    passthru = { inherit cmdline; };
  }
  ''
    mkdir $out
    ln -s ${build.kernel}/${kernelFile} $out/vmlinuz
    ln -s ${build.netbootRamdisk}/initrd $out/initrd
    printf '%s\n' ${lib.escapeShellArg cmdline} >$out/cmdline
    # netboot.nix names the kernel after the platform's kernel target (bzImage).
    sed 's/^kernel [^ ]*/kernel vmlinuz/' ${build.netbootIpxeScript}/netboot.ipxe >$out/netboot.ipxe
  ''
