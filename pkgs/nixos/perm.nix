# /perm as on the Debian leg (pkgs/debian/init): the ext4 file system labelled "perm"
# if there is one, else a tmpfs, so the router boots and routes from a blank disk or
# from netboot alone (diagd then reports that nothing persists). Mounted by a
# oneshot before local-fs.target instead of fileSystems: a failed fstab mount would
# fail every unit with RequiresMountsFor=/perm, and there is no fallback in fstab.
{ lib, pkgs, ... }:
{
  systemd.services.router7-perm = {
    description = "Mount /perm (ext4 labelled perm, else a tmpfs)";
    wantedBy = [ "local-fs.target" ];
    before = [ "local-fs.target" ];
    after = [ "systemd-udev-trigger.service" ];
    unitConfig.DefaultDependencies = false;
    path = [
      pkgs.util-linux
      pkgs.coreutils
    ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
    };
    # router7.perm_wait=SECONDS on the kernel command line, as in the Debian initrd.
    script = ''
      if mountpoint -q /perm; then exit 0; fi
      wait=5
      for arg in $(cat /proc/cmdline); do
        case "$arg" in router7.perm_wait=*) wait="''${arg#router7.perm_wait=}" ;; esac
      done
      mkdir -p /perm
      tries=$((wait * 4))
      while [ "$tries" -gt 0 ]; do
        dev=$(findfs LABEL=perm 2>/dev/null) && break
        dev=""
        tries=$((tries - 1))
        sleep 0.25
      done
      if [ -n "$dev" ] && mount -t ext4 -o rw,noatime "$dev" /perm; then
        echo "/perm is $dev"
      else
        echo "no ext4 file system labelled perm: /perm is a tmpfs (nothing will persist)"
        mount -t tmpfs -o mode=0755,size=64m perm /perm
      fi
    '';
  };
}
