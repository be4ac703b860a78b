# The router in qemu (x86_64, virtio NICs and disk, serial console): the system behind
# packages.image-qemu / netboot-qemu, for `router7-lab up --vm`. The same module lists
# as the apu2c4 (appliance.nix), which include the virtio drivers; the VM test shell's
# virtio-serial port needs virtio_console, loaded by udev.
{ ... }:
{
  nixpkgs.hostPlatform = "x86_64-linux";
}
