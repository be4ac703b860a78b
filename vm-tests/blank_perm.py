# A blank disk: the perm partition has no file system. The router still boots and
# routes, with /perm on a tmpfs, and diagd reports the missing persistence as a
# failed check so the owner learns that nothing will survive a reboot.
import json

from router7.lab.scenario import DIAGD, LAN_GW, http_get, wait_online

start_all()
router.wait_for_unit("router7.target")

with subtest("the perm partition loses its file system"):
    device = router.succeed("findmnt -n -o SOURCE /perm").strip()
    assert device.startswith("/dev/"), f"/perm is not on a disk: {device}"
    # Zero the superblock and group descriptors, then pull the plug: no clean unmount
    # could write the superblock back.
    router.succeed(f"sync && dd if=/dev/zero of={device} bs=1M count=8 oflag=direct conv=fsync")
    router.crash()

with subtest("the router boots with /perm on tmpfs and still routes"):
    router.start()
    router.wait_for_unit("router7.target")
    assert router.succeed("findmnt -n -o FSTYPE /perm").strip() == "tmpfs"
    wait_online(router, lan)

with subtest("diagd reports /perm as a failed check"):

    def perm_checks():
        health = json.loads(http_get(lan, f"http://{LAN_GW}:{DIAGD}/health.json"))
        return health, [c for c in health["checks"] if "perm" in c["name"]]

    health, checks = perm_checks()
    assert checks, f"diagd has no check about /perm: {[c['name'] for c in health['checks']]}"
    assert not any(c["ok"] for c in checks), checks
    assert health["healthy"] is False
    assert "perm" in health["first_error"] or any("perm" in c["status"] for c in checks), health
