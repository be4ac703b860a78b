"""The old system's side of an update: take the manifest and files, verify, write the slot.

No sockets here: the HTTP layer feeds ``begin``, ``receive`` and ``prepare_trial``
and maps UpdateError to its status code. Uploads go to the slot that is neither
running nor the boot default, so nothing a reboot picks is ever touched.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import secrets
import time
from typing import BinaryIO

from router7.updated import history as hist
from router7.updated.bootpart import FILES, BootError, BootPartition, other
from router7.updated.manifest import Manifest, ManifestError
from router7.updated.trial import DEFAULT_DEADLINE

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MIN_DEADLINE, MAX_DEADLINE = 30.0, 3600.0


class UpdateError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Updater:
    def __init__(
        self,
        boot: BootPartition,
        history: hist.History,
        running_slot: str | None,
        running_version: str,
        clock=time.monotonic,
    ):
        self.boot = boot
        self.history = history
        self.running_slot = running_slot
        self.running_version = running_version
        self.clock = clock
        self.manifest: Manifest | None = None
        self.received: set[str] = set()
        self.in_trial = False  # this system is itself an uncommitted trial
        self.started: float | None = None

    # --- checks ---------------------------------------------------------------

    def target(self) -> str:
        """The slot an update writes, or UpdateError saying why there is none."""
        if not self.boot.present():
            raise UpdateError(409, f"no boot partition at {self.boot.root}: updates need a "
                                   "disk install (netboot: update the files on the server)")  # fmt: skip
        if self.running_slot not in ("A", "B"):
            raise UpdateError(409, "the running slot is unknown (no router7.slot= on the "
                                   "kernel command line): not booted from a slot")  # fmt: skip
        if self.in_trial:
            raise UpdateError(409, "an update is on trial: wait for its commit or rollback")
        try:
            default = self.boot.default_slot()
        except BootError as e:
            raise UpdateError(409, str(e)) from None
        if default != self.running_slot:
            raise UpdateError(
                409,
                f"the running slot {self.running_slot} is not the boot default {default}: "
                "reboot first",
            )
        return other(self.running_slot)

    # --- steps ----------------------------------------------------------------

    def begin(self, raw: bytes) -> dict:
        """A new manifest: forget earlier uploads, make room in the target slot."""
        slot = self.target()
        try:
            manifest = Manifest.parse(raw)
        except ManifestError as e:
            raise UpdateError(400, str(e)) from None
        self.boot.discard_uploads(slot)
        self.manifest, self.received = None, set()
        room = self.boot.free_bytes() + self.boot.slot_bytes(slot)
        if manifest.total_bytes > room:
            raise UpdateError(
                507,
                f"boot partition full: the update needs {manifest.total_bytes} bytes, "
                f"slot {slot} can hold {room}",
            )
        for name in FILES:  # the inactive slot's old files make room for the new ones
            (self.boot.slot_dir(slot) / name).unlink(missing_ok=True)
        self.manifest = manifest
        self.started = self.clock()
        log.info("update to %s: manifest accepted, writing slot %s", manifest.version, slot)
        return {"slot": slot, "version": manifest.version, "expect": list(FILES)}

    def receive(self, name: str, body: BinaryIO) -> dict:
        """Stream one file into the target slot's staging name, checking size and sha256.
        Blocking (file I/O): the HTTP layer runs it in a thread."""
        if self.manifest is None:
            raise UpdateError(409, "send the manifest first (PUT /update/manifest.json)")
        if name not in FILES:
            raise UpdateError(404, f"no such file {name!r}: expected one of {', '.join(FILES)}")
        spec = self.manifest.files[name]
        slot = self.target()
        dest = self.boot.staging(slot, name)
        digest, size = hashlib.sha256(), 0
        try:
            with open(dest, "wb") as f:
                while block := body.read(CHUNK):
                    size += len(block)
                    if size > spec.size:
                        break
                    digest.update(block)
                    f.write(block)
        except OSError as e:
            dest.unlink(missing_ok=True)
            if e.errno == errno.ENOSPC:
                raise UpdateError(507, f"boot partition full while writing {name}") from None
            raise UpdateError(500, f"writing {name}: {e.strerror or e}") from None
        problem = None
        if size != spec.size:
            problem = f"{name}: {'more than' if size > spec.size else 'got'} {size} bytes, " \
                      f"the manifest says {spec.size} (truncated or wrong file)"  # fmt: skip
        elif digest.hexdigest() != spec.sha256:
            problem = (
                f"{name}: sha256 {digest.hexdigest()} does not match the manifest's {spec.sha256}"
            )
        if problem:
            dest.unlink(missing_ok=True)
            self.received.discard(name)
            log.warning("update refused: %s", problem)
            raise UpdateError(400, problem)
        self.received.add(name)
        log.info("update: %s verified (%d bytes)", name, size)
        return {"file": name, "bytes": size, "sha256": spec.sha256, "verified": True}

    def prepare_trial(self, deadline: float = DEFAULT_DEADLINE) -> dict:
        """Install the verified files as the target slot and record the trial.
        Returns the history entry; the caller then kexecs into the slot."""
        slot = self.target()
        if self.manifest is None or self.received != set(FILES):
            missing = sorted(set(FILES) - self.received)
            raise UpdateError(409, f"not everything was uploaded and verified: {missing or FILES}")
        if not MIN_DEADLINE <= deadline <= MAX_DEADLINE:
            raise UpdateError(
                400, f"deadline: {deadline:g} s is outside {MIN_DEADLINE:g}..{MAX_DEADLINE:g}"
            )
        m = self.manifest
        try:
            self.boot.install(slot, m.cmdline, m.version)
        except (BootError, OSError) as e:
            raise UpdateError(500, f"writing slot {slot}: {e}") from None
        entry = {
            "id": secrets.token_hex(6),
            "from_version": self.running_version,
            "to_version": m.version,
            "from_slot": self.running_slot,
            "to_slot": slot,
            "result": hist.TRIAL,
            "started": hist.now(),
            "deadline_seconds": deadline,
            "durations": {"upload": round(self.clock() - (self.started or self.clock()), 1)},
            "steps": [{"time": hist.now(), "what": f"slot {slot} written and verified; kexec"}],
        }
        self.history.append(entry)
        self.manifest, self.received = None, set()
        return entry
