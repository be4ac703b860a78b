# PC Engines apu2c4: x86_64, coreboot + SeaBIOS (legacy BIOS), Intel i211 NICs (igb),
# mSATA/SATA or SD card storage, serial console at 115200 baud (no VGA). The initrd's
# disk drivers and the modules loaded at boot come from the Debian leg's lists
# (appliance.nix); udev loads the NIC, GPIO and sensor drivers.
{ ... }:
{
  nixpkgs.hostPlatform = "x86_64-linux";
}
