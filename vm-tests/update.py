# router7-vmtest: nix=none
# (The NixOS test node boots its own kernel from the Nix store, not a disk with the
# boot partition's slots A and B: under Nix this scenario has nothing to update.)
#
# Updates that undo themselves, on one VM (four kexec trials, three rollback resets):
#   bad input   a wrong token, a truncated initrd, a wrong digest: refused, slot B untouched
#   unhealthy   an update whose uplink is broken: the new system reboots itself into slot A
#   panic       an update whose kernel panics: panic=10 reboots into slot A; the old
#               system records the rollback
#   hang        an update that never starts systemd (its init is a shell waiting on
#               the console): the hardware watchdog, armed by the old system and
#               counting through the kexec, resets the VM into slot A
#   commit      a good update: the router runs it from slot B, committed; the LAN host's
#               outage (ping every 100 ms through the router) is printed
# The updates are variants of the running image made on the router itself
# (`router7-image variant --parts`: its kernel and initrd plus a small cpio, the initrd
# streamed from /boot/A rather than copied into RAM), uploaded to its
# own LAN address with the admin token from /perm: no image files needed on the host.
import json
import time

from router7.lab.addresses import ADDR
from router7.lab.scenario import (
    DIAGD, LAN_GW, LanPing, http_get, initramfs_unpack_seconds, wait_for, wait_online,
)  # fmt: skip

CLIENT = f"python3 -m router7.updated.client --router {LAN_GW} --token-file /perm/admin/token"
t_start = time.monotonic()


def status():
    return json.loads(router.succeed(f"{CLIENT} status"))


def boot_sha(*paths):
    return router.succeed("sha256sum " + " ".join(paths))


BOOTABLE = ("/boot/A/vmlinuz", "/boot/A/initrd", "/boot/A/cmdline", "/boot/default.cfg")


def variant(name, *extra):
    out = f"/tmp/{name}"
    router.succeed(
        f"router7-image variant --parts --from /boot/A --version {name} --out {out} "
        + " ".join(extra)
    )
    return out


def trial(deadline):
    """Start the trial in the background: the kexec ends this shell, reply or not."""
    router.succeed(f"{CLIENT} trial --deadline {deadline} >/tmp/trial.json 2>&1 &")


def kexec_into_b():
    """The trial's kexec: the next console lines are the new kernel's on slot B."""
    router.wait_for_console_text(r"Command line: .*router7\.slot=B router7\.trial=1", 600)
    router.connected = False


def back_in_a():
    """A reset through the firmware and syslinux: slot A (the default) boots again."""
    router.wait_for_console_text(r"Command line: .*router7\.slot=A\s", 900)
    router.connected = False
    router.wait_for_unit("router7-updated.service")


def settled():
    last = status()["last_update"]
    return last if last and last["result"] != "trial" else None


router.start(allow_reboot=True)  # the rollbacks reset the VM: it must boot again
start_all()
wait_online(router, lan)
# diagd probes the lab's internet host (a fresh /perm would probe www.google.ch).
diagd = {
    "targets": [f"{ADDR.internet_v4}:{ADDR.http_port}", f"[{ADDR.internet_v6}]:{ADDR.http_port}"],
    "dns_name": ADDR.www_name,
}
router.succeed(f"mkdir -p /perm/diagd && echo '{json.dumps(diagd)}' > /perm/diagd/config.json")
router.succeed("chown router7: /perm/diagd/config.json && systemctl restart router7-diagd")
router.wait_for_unit("router7-updated.service")
wait_for(
    lambda: json.loads(http_get(lan, f"http://{LAN_GW}:{DIAGD}/health.json"))["healthy"],
    "diagd to report healthy",
)
first = status()
assert (first["running_slot"], first["default_slot"]) == ("A", "A"), first
assert first["version"] != "unknown", first
# The trial's sh backstop waits only in a trial boot.
router.succeed("systemctl show -P ConditionResult router7-trial-guard | grep -qx no")
print(f"router: {first['version']} in slot A, healthy after {time.monotonic() - t_start:.0f} s")

with subtest("bad input: wrong token, truncated initrd, wrong digest; nothing written"):
    good = variant("update-good")
    before, slot_b = boot_sha(*BOOTABLE), boot_sha("/boot/B/vmlinuz", "/boot/B/initrd")
    out = router.fail(
        f"python3 -m router7.updated.client --router {LAN_GW} --token wrong "
        f"put manifest.json {good}/manifest.json 2>&1"
    )
    assert "401" in out, out
    assert boot_sha("/boot/B/vmlinuz", "/boot/B/initrd") == slot_b  # a 401 changes nothing
    # An accepted manifest clears the inactive slot B for the upload; A and default.cfg,
    # what any boot uses, are never touched.
    router.succeed(f"{CLIENT} put manifest.json {good}/manifest.json")
    router.succeed("head -c 1000000 /boot/A/initrd > /tmp/short-initrd")
    out = router.fail(f"{CLIENT} put initrd /tmp/short-initrd 2>&1")
    assert "400" in out and "truncated" in out, out
    router.succeed(f"cp {good}/vmlinuz /tmp/other-kernel")  # same size, one byte changed
    router.succeed("printf 'Z' | dd of=/tmp/other-kernel bs=1 seek=1000 conv=notrunc")
    out = router.fail(f"{CLIENT} put vmlinuz /tmp/other-kernel 2>&1")
    assert "400" in out and "does not match the manifest" in out, out
    out = router.fail(f"{CLIENT} trial --deadline 120 2>&1")
    assert "409" in out, out
    router.succeed("! ls -a /boot/B | grep -q '^\\.[a-z]'")  # no half-written file left
    assert boot_sha(*BOOTABLE) == before
    assert status()["default_slot"] == "A"
    # The VM has 1 GiB: every image (~80 MB) in /tmp is RAM.
    router.succeed(f"rm -rf {good} /tmp/short-initrd /tmp/other-kernel")

with subtest("unhealthy update: the new system rolls back to slot A by itself"):
    t0 = time.monotonic()
    broken = variant("update-broken", "--file", "etc/router7/router7.env=ROUTER7_UPLINK=uplink9")
    router.succeed(f"{CLIENT} upload {broken} && rm -rf {broken}")
    # The broken system can never be healthy: a deadline shorter than its boot is fine
    # (past it at start, updated probes once for the reason, then rolls back).
    trial(90)
    kexec_into_b()
    back_in_a()
    last = wait_for(settled, "the rollback to be recorded")
    assert last["result"] == "rolled back" and "not healthy within 90 s" in last["reason"], last
    # The new system did run (slot B, its own version) and judged itself.
    assert any("booted slot B (update-broken)" in s["what"] for s in last["steps"]), last
    now = status()
    assert (now["running_slot"], now["default_slot"], now["version"]) == (
        "A", "A", first["version"],
    ), now  # fmt: skip
    router.succeed("test -s /perm/dhcp4/wire/lease.json && test -s /perm/admin/token")
    wait_online(router, lan)
    print(f"unhealthy update rolled back in {time.monotonic() - t0:.0f} s: {last['reason']}")

with subtest("panicking kernel: panic=10 resets into slot A; the old system records it"):
    t0 = time.monotonic()
    panics = variant("update-panic", "--append", "rdinit=/no-such-init")
    router.succeed(f"{CLIENT} upload {panics} && rm -rf {panics}")
    trial(300)
    kexec_into_b()
    router.wait_for_console_text(r"Kernel panic", 600)
    back_in_a()
    last = wait_for(settled, "the rollback to be recorded")
    assert last["result"] == "rolled back" and "before it committed" in last["reason"], last
    assert status()["running_slot"] == "A"
    print(f"panicking update rolled back in {time.monotonic() - t0:.0f} s")

with subtest("hanging system: the watchdog resets it into slot A; the old system records it"):
    t0 = time.monotonic()
    hangs = variant("update-hang", "--append", "rdinit=/bin/sh")
    router.succeed(f"{CLIENT} upload {hangs} && rm -rf {hangs}")
    trial(300)
    kexec_into_b()
    # No systemd, so nothing pings the watchdog, nor loads its driver: the old system's
    # timeout (3 min) runs out, watchdog.stop_on_reboot=0 having kept it going.
    router.wait_for_console_text(r"Run /bin/sh as init process", 600)
    back_in_a()
    last = wait_for(settled, "the rollback to be recorded")
    assert last["result"] == "rolled back" and "before it committed" in last["reason"], last
    assert status()["running_slot"] == "A"
    print(f"hanging update rolled back in {time.monotonic() - t0:.0f} s")

with subtest("good update: committed in slot B; the LAN host's outage is measured"):
    wait_online(router, lan)
    t0 = time.monotonic()
    good = variant("update-good")
    router.succeed(f"{CLIENT} upload {good} && rm -rf {good}")
    ping = LanPing(lan, ADDR.internet_v4)
    ping.start()
    trial(600)
    kexec_into_b()
    router.wait_for_unit("router7-updated.service")
    # The backstop waits for the deadline (+300 s) of the trial's command line.
    router.succeed("systemctl is-active router7-trial-guard && grep -q 'router7.deadline=600' /proc/cmdline")
    last = wait_for(settled, "the commit")
    assert last["result"] == "committed", last
    outage = ping.outage()
    now = status()
    assert (now["running_slot"], now["default_slot"], now["version"]) == (
        "B", "B", "update-good",
    ), now  # fmt: skip
    router.succeed("grep -qx 'DEFAULT B' /boot/default.cfg")
    print(
        f"update committed {last['durations'].get('boot_to_healthy')} s after its boot; "
        f"LAN host outage {outage} (initramfs unpack {initramfs_unpack_seconds(router):.1f} s)"
    )

print(f"update scenario: {time.monotonic() - t_start:.0f} s")
