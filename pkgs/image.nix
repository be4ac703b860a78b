# packages.image: the disk image, with the same layout as the Debian leg's
# (docs/image.md): MBR; partition 1 FAT "ROUTER7BOOT" with syslinux and slots A/ and
# B/ (vmlinuz, initrd, cmdline each); partition 2 ext4 "perm". Written by the same
# disk packer (`router7-image disk`) from the NixOS kernel and initrd of
# packages.netboot, so the two legs cannot differ in layout.
#
# Not image.repart (nixos/modules/image/repart.nix): it builds GPT images without a
# BIOS bootloader, and the apu2c4 boots through coreboot + SeaBIOS (legacy BIOS).
# Not make-disk-image.nix either: one root filesystem, and it needs a VM to build.
{
  runCommand,
  router7,
  netboot,
  util-linux, # sfdisk
  dosfstools, # mkfs.vfat
  mtools,
  syslinux,
  e2fsprogs, # mkfs.ext4
}:
runCommand "router7-disk-image"
  {
    nativeBuildInputs = [
      router7
      util-linux
      dosfstools
      mtools
      syslinux
      e2fsprogs
    ];
  }
  ''
    mkdir $out
    router7-image disk \
      --kernel ${netboot}/vmlinuz \
      --initrd ${netboot}/initrd \
      --cmdline "$(cat ${netboot}/cmdline)" \
      --out $out/disk.img
    # The boot files too, so the output has the Debian leg's build/image/ names
    # (vmlinuz, initrd, cmdline, netboot.ipxe, disk.img) for ROUTER7_IMAGE_DIR.
    for f in vmlinuz initrd cmdline netboot.ipxe; do
      ln -s ${netboot}/$f $out/$f
    done
  ''
