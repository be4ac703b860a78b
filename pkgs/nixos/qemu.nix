# The router in qemu (x86_64, virtio NICs and disk, serial console): what
# `router7-lab up --vm` boots from packages.image, and a small system to try the
# module on. The NixOS VM tests use the module with qemu-vm.nix instead.
{ ... }:
{
  nixpkgs.hostPlatform = "x86_64-linux";

  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_blk"
    "virtio_scsi"
    "ahci"
  ];
  boot.kernelModules = [
    "virtio_net"
    "virtio_console" # the VM test shell's virtio-serial port (vm-tests)
  ];
}
