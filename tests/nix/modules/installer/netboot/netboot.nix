# Stand-in for nixpkgs' nixos/modules/installer/netboot/netboot.nix: the options it
# sets that pkgs/nixos/appliance.nix relies on or overrides, and the system.build
# attributes pkgs/netboot.nix reads.
{ config, lib, pkgs, ... }:
{
  boot.loader.grub.enable = false;
  fileSystems."/" = {
    fsType = "tmpfs";
    options = [ "mode=0755" ];
  };
  boot.initrd.availableKernelModules = [ "squashfs" "overlay" ];
  boot.initrd.kernelModules = [ "loop" "overlay" ];
  system.build.toplevel = pkgs.stubDrv "nixos-system" { };
  system.build.kernel = pkgs.stubDrv "linux" { };
  system.build.netbootRamdisk = pkgs.stubDrv "initrd" { };
  system.build.netbootIpxeScript = pkgs.stubDrv "netboot.ipxe" { };
  boot.loader.timeout = 10;
  # The real one runs nix-store --load-db with config.nix.package.
  boot.postBootCommands = ''
    nix-store --load-db < /nix/store/nix-path-registration
  '';
}
