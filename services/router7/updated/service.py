"""router7-updated: receives an image into the inactive boot slot, kexecs into it on
trial, and — in the new system — commits once diagd says healthy, else reboots into
the old slot. LAN-only HTTP on :8078; uploads and the trial need the admin credential.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.internet import defer, threads
from twisted.web.client import Agent, readBody

from router7.runtime import auth, ports
from router7.runtime.service import Service
from router7.updated import history as hist
from router7.updated import system
from router7.updated.bootpart import BootError, BootPartition, cmdline_args
from router7.updated.http import root
from router7.updated.trial import DEFAULT_DEADLINE, Trial, classify
from router7.updated.updater import Updater

log = logging.getLogger(__name__)

KEXEC_DELAY = 0.5  # lets the trial request's response reach the host first


class UpdatedService(Service):
    name = "updated"
    description = "Updates that undo themselves: A/B boot slots, kexec trial, commit on health."
    uses_uplink = False

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--boot", default="/boot", help="where ROUTER7BOOT is mounted")
        parser.add_argument(
            "--health-url",
            default=None,
            help=f"diagd's verdict (default: http://LAN-ADDRESS:{ports.HTTP['diagd']}/health.json)",
        )
        parser.add_argument(
            "--cmdline", default="/proc/cmdline", help="the running kernel's command line"
        )
        parser.add_argument("--version-file", default="/etc/router7/version")

    def start(self):
        auth.load_or_create(self.perm)
        self.boot = BootPartition(Path(self.args.boot))
        self.history = hist.History(self.perm)
        self.args_cmdline = cmdline_args(system.proc_cmdline(self.args.cmdline))
        self.version = system.version(self.args.version_file)
        running = self.args_cmdline.get("router7.slot") or None
        self.updater = Updater(self.boot, self.history, running, self.version)
        self.trial: Trial | None = None
        self.state = "idle"
        try:
            default = self.boot.default_slot() if self.boot.present() else None
        except BootError as e:
            log.error("%s", e)
            default = None
        boot = classify(self.args_cmdline, default, self.history.pending())
        log.info(
            "version %s, running slot %s, boot default %s: %s",
            self.version, running, default, boot.action,
        )  # fmt: skip
        if boot.action == "settle-committed":
            self.history.settle(boot.pending["id"], hist.COMMITTED, boot.reason)
        elif boot.action == "settle-rolled-back":
            self.history.settle(boot.pending["id"], hist.ROLLED_BACK, boot.reason)
            log.error("the last update was rolled back: %s", boot.reason)
        elif boot.action == "trial":
            self._start_trial(boot)
        self.registry.register(self)

    def _start_trial(self, boot) -> None:
        pending = boot.pending or {}
        self.entry_id = pending.get("id")
        deadline = float(pending.get("deadline_seconds") or DEFAULT_DEADLINE)
        self.updater.in_trial = True
        self.state = "trial"
        if self.entry_id:
            self.history.step(self.entry_id, f"booted slot {boot.running_slot} ({self.version})")
        self.trial = Trial(
            self.reactor, self._probe, system.uptime, deadline, self._commit, self._rollback
        )
        self.trial.start()

    # --- the new system's acts ------------------------------------------------------

    def _commit(self, boot_to_healthy: float) -> None:
        slot = self.updater.running_slot
        try:
            self.boot.set_default(slot)
        except (BootError, OSError) as e:
            self._rollback(f"the commit failed: writing default.cfg: {e}")
            return
        self.updater.in_trial = False
        self.state = "idle"
        log.info("update committed: slot %s is the boot default (healthy %.0f s after boot)",
                 slot, boot_to_healthy)  # fmt: skip
        if self.entry_id:
            self.history.settle(
                self.entry_id, hist.COMMITTED, f"healthy; slot {slot} is the boot default",
                boot_to_healthy=round(boot_to_healthy, 1),
            )  # fmt: skip

    def _rollback(self, reason: str) -> None:
        self.state = "rolling back"
        if self.entry_id:
            try:
                self.history.settle(self.entry_id, hist.ROLLED_BACK, reason)
            except OSError as e:
                log.error("recording the rollback failed: %s", e)
        try:
            system.reboot()
        except OSError as e:
            log.error("%s: exiting so systemd restarts us and we try again", e)
            self.shutdown(1)

    def _health_url(self) -> str | None:
        if self.args.health_url:
            return self.args.health_url
        lan = self.net.ipv4(self.args.lan)
        return None if lan is None else f"http://{lan.ip}:{ports.HTTP['diagd']}/health.json"

    def _probe(self) -> defer.Deferred:
        url = self._health_url()
        if url is None:
            return defer.fail(RuntimeError(f"no IPv4 address on {self.args.lan} yet"))
        d = Agent(self.reactor, connectTimeout=5).request(b"GET", url.encode())
        d.addCallback(readBody)
        d.addCallback(json.loads)
        return d

    # --- the old system's act ---------------------------------------------------------

    def start_trial(self, entry: dict) -> defer.Deferred:
        slot = entry["to_slot"]
        d = self.boot.slot_dir(slot)
        # router7.deadline: for router7-trial-guard.service, the sh backstop that reboots
        # if this process never decides in the new system.
        cmdline = (
            f"{self.boot.slot_cmdline(slot)} router7.slot={slot} router7.trial=1 "
            f"router7.deadline={entry['deadline_seconds']:.0f}"
        )

        def loaded(_):
            self.state = "kexec"
            self.updater.in_trial = True  # no second upload while the kexec is under way
            self.reactor.callLater(KEXEC_DELAY, self._kexec, entry["id"])
            return {**entry, "kexec": cmdline}

        def failed(f):
            self.history.settle(entry["id"], "failed", f.getErrorMessage())
            return f

        dl = threads.deferToThread(system.kexec_load, d / "vmlinuz", d / "initrd", cmdline)
        return dl.addCallbacks(loaded, failed)

    def _kexec(self, entry_id: str) -> None:
        try:
            system.kexec_exec()
        except RuntimeError as e:
            log.error("%s", e)
            self.updater.in_trial = False
            self.state = "idle"
            self.history.settle(entry_id, "failed", str(e))

    # --- status -------------------------------------------------------------------------

    def status(self) -> dict:
        try:
            default = self.boot.default_slot() if self.boot.present() else None
        except BootError:
            default = None
        running = self.updater.running_slot
        out = {
            "version": self.version,
            "running_slot": running,
            "default_slot": default,
            "trial": self.args_cmdline.get("router7.trial") == "1",
            "state": self.state,
            "boot_partition": self.boot.present(),
            "slots": {s: {"version": self.boot.slot_version(s)} for s in ("A", "B")}
            if self.boot.present()
            else {},
            "last_update": self.history.last(),
        }
        if self.trial is not None and self.trial.state == "waiting":
            out["trial_deadline_uptime"] = self.trial.deadline
            out["trial_last_error"] = self.trial.last_error
        return out

    def collect(self):
        """Prometheus: updated_info and updated_updates_total (see docs/metrics.md)."""
        s = self.status()
        info = GaugeMetricFamily(
            "updated_info", "what runs and what boots next (always 1)",
            labels=["version", "running_slot", "default_slot", "state"],
        )  # fmt: skip
        info.add_metric(
            [s["version"], s["running_slot"] or "", s["default_slot"] or "", s["state"]], 1.0
        )
        yield info
        results = CounterMetricFamily(
            "updated_updates", "updates in the history by result", labels=["result"]
        )
        counts: dict[str, int] = {}
        for e in self.history.entries():
            counts[e.get("result", "")] = counts.get(e.get("result", ""), 0) + 1
        for result, n in sorted(counts.items()):
            results.add_metric([result], n)
        yield results

    def http_root(self):
        return root(self.perm, self.updater, self.status, self.start_trial)


main = UpdatedService.main

if __name__ == "__main__":
    main()
