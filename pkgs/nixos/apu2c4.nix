# PC Engines apu2c4: x86_64, coreboot + SeaBIOS (legacy BIOS), three Intel i210 NICs,
# mSATA/SATA or SD card storage, serial console at 115200 baud (no VGA).
{ ... }:
{
  nixpkgs.hostPlatform = "x86_64-linux";

  boot.initrd.availableKernelModules = [
    "ahci" # mSATA / SATA
    "sdhci_pci" # SD card reader
    "mmc_block"
    "ehci_pci" # USB sticks (recovery)
    "xhci_pci"
    "usb_storage"
  ];
  boot.kernelModules = [
    "igb" # i210 NICs: uplink0, lan0 (netconfigd names them in PCI order)
    "sp5100_tco" # the FCH watchdog
  ];
}
