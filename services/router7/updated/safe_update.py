"""router7-safe-update: update a router7 over the LAN, safely.

1. checks the router answers and is healthy (diagd), and the image matches its manifest;
2. downloads a backup of /perm (backupd) and writes, beside it, a record of the update
   with the exact command that reinstalls the old image and this backup by PXE;
3. uploads the image (with progress) into the router's inactive boot slot;
4. starts the trial (kexec into the new slot) and waits for the commit or the rollback,
   pinging through the router every 100 ms to measure the outage.

The router rolls back by itself: this tool only watches. Exit status: 0 committed,
3 rolled back or failed on the router, 2 refused or unreachable before anything changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from router7.updated import client as cl
from router7.updated.outage import Pinger


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def check_image(image: Path) -> dict:
    """The image's manifest, after checking its files against it."""
    try:
        manifest = json.loads((image / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise cl.ClientError(f"{image / 'manifest.json'}: {e}") from None
    for name in ("vmlinuz", "initrd"):
        spec = manifest.get("files", {}).get(name, {})
        path = image / name
        if not path.is_file():
            raise cl.ClientError(f"{path}: missing")
        if path.stat().st_size != spec.get("bytes") or sha256(path) != spec.get("sha256"):
            raise cl.ClientError(
                f"{path} does not match {image / 'manifest.json'} (size or sha256)"
            )
    if not manifest.get("version") or not manifest.get("cmdline"):
        raise cl.ClientError(f"{image / 'manifest.json'}: no version or cmdline")
    return manifest


def token_from(args) -> str:
    if args.token_file:
        try:
            return args.token_file.read_text().strip()
        except OSError as e:
            raise cl.ClientError(f"--token-file {args.token_file}: {e.strerror}") from None
    token = os.environ.get("ROUTER7_ADMIN_TOKEN", "").strip()
    if not token:
        raise cl.ClientError(
            "no admin credential: pass --token-file FILE or set ROUTER7_ADMIN_TOKEN "
            "(the router's /perm/admin/token, shown on its console and status page)"
        )
    return token


def recovery_command(args, backup: Path) -> str:
    old = str(args.old_image.resolve()) if args.old_image else "OLD_IMAGE_DIR"
    return shlex.join(
        ["router7-recover", "--interface", args.recover_interface or "LAPTOP_NIC",
         "--image-dir", old, "--backup", str(backup.resolve())]
    )  # fmt: skip


def say(msg: str) -> None:
    print(f"router7-safe-update: {msg}", flush=True)


def run(args) -> int:
    token = token_from(args)
    router = cl.Router(args.router, token)
    manifest = check_image(args.image)
    try:
        status = router.status()
    except cl.Unreachable as e:
        raise cl.ClientError(f"router unreachable: {e}") from None
    say(f"router {args.router}: version {status['version']}, slot {status['running_slot']} "
        f"(boot default {status['default_slot']}); updating to {manifest['version']}")  # fmt: skip
    if status.get("state") != "idle":
        raise cl.ClientError(f"the router is busy: {status.get('state')}")
    health = router.health()
    if not health.get("healthy") and not args.force:
        raise cl.ClientError(
            f"the router is not healthy before the update: {health.get('first_error')} "
            "(an unhealthy update rolls back; fix this first or pass --force)"
        )

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.backup_dir.mkdir(parents=True, exist_ok=True)
    backup = args.backup_dir / f"router7-backup-{stamp}.tar.gz"
    size = router.backup(backup)
    record_path = args.backup_dir / f"router7-update-{stamp}.json"
    record = {
        "time": stamp,
        "router": args.router,
        "from_version": status["version"],
        "from_slot": status["running_slot"],
        "to_version": manifest["version"],
        "image": str(args.image.resolve()),
        "backup": str(backup.resolve()),
        "recover": recovery_command(args, backup),
    }
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    say(f"backup {backup} ({size / 1e3:.0f} kB); record {record_path}")
    say(f"if all else fails, reinstall the old image and this backup:\n  {record['recover']}")

    t0 = time.monotonic()
    router.upload(args.image, progress=cl.bar if not args.quiet else None)
    say(f"uploaded and verified in {time.monotonic() - t0:.1f} s")

    pinger = Pinger(args.ping or args.router, interval=0.1)
    time.sleep(1)  # a baseline of replies before the trial
    entry = router.trial(args.deadline)
    say(f"trial: slot {entry['to_slot']} kexec'd; it must be healthy within "
        f"{args.deadline:g} s of its boot, or the router returns to slot {entry['from_slot']}")  # fmt: skip
    try:
        outcome = router.wait_outcome(entry["id"], timeout=args.deadline + args.boot_margin)
    finally:
        time.sleep(1)
        outage = pinger.stop()
    record.update(result=outcome.get("result"), reason=outcome.get("reason", ""),
                  outage_seconds=outage.seconds)  # fmt: skip
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    say(f"outage (ping {args.ping or args.router} every 100 ms): {outage}")
    if outcome.get("result") == "committed":
        say(f"committed: the router runs {manifest['version']} from slot {entry['to_slot']}")
        return 0
    say(f"{outcome.get('result')}: {outcome.get('reason', 'no reason given')}; "
        f"the router runs {status['version']} again")  # fmt: skip
    return 3


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="router7-safe-update", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--router", default="192.168.42.1", help="the router's LAN address")
    p.add_argument("--image", type=Path, default=Path("build/image"),
                   help="directory with manifest.json, vmlinuz, initrd")  # fmt: skip
    p.add_argument("--token-file", type=Path, help="file with the admin token "
                   "(default: $ROUTER7_ADMIN_TOKEN)")  # fmt: skip
    p.add_argument("--backup-dir", type=Path, default=Path("router7-backups"))
    p.add_argument("--old-image", type=Path, help="the running image, for the recovery command")
    p.add_argument("--recover-interface", help="this machine's NIC cabled to the router")
    p.add_argument("--deadline", type=float, default=600.0,
                   help="seconds from the new system's boot to be healthy")  # fmt: skip
    p.add_argument("--boot-margin", type=float, default=300.0,
                   help="extra seconds to wait for a rollback's reboot")  # fmt: skip
    p.add_argument("--ping", help="host pinged through the router (default: the router)")
    p.add_argument("--force", action="store_true", help="update even if unhealthy now")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        sys.exit(run(args))
    except cl.WrongCredentials as e:
        sys.exit(f"router7-safe-update: wrong credentials: {e}")
    except cl.Refused as e:
        sys.exit(f"router7-safe-update: the router refused: {e}")
    except cl.ClientError as e:
        sys.exit(f"router7-safe-update: {e}")


if __name__ == "__main__":
    main()
