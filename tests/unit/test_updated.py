"""router7-updated's core without sockets: the slot writer, the manifest check, the
start-up decision and the trial's commit/rollback on a task.Clock."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from twisted.internet import defer, task

from router7.updated import history as hist
from router7.updated.bootpart import BootPartition, cmdline_args
from router7.updated.manifest import Manifest, ManifestError
from router7.updated.trial import HEALTHY_IN_A_ROW, NO_COMMIT, Trial, classify
from router7.updated.updater import UpdateError, Updater

KERNEL = b"kernel " * 1000
INITRD = b"initrd " * 3000


def manifest(kernel=KERNEL, initrd=INITRD, version="2.0", cmdline="console=ttyS0 panic=10"):
    return json.dumps(
        {
            "version": version,
            "cmdline": cmdline,
            "files": {
                "vmlinuz": {"bytes": len(kernel), "sha256": hashlib.sha256(kernel).hexdigest()},
                "initrd": {"bytes": len(initrd), "sha256": hashlib.sha256(initrd).hexdigest()},
            },
        }
    ).encode()


@pytest.fixture
def boot(tmp_path):
    root = tmp_path / "boot"
    root.mkdir()
    (root / "syslinux.cfg").write_text("INCLUDE default.cfg\n")
    (root / "default.cfg").write_text("DEFAULT A\n")
    for slot in "AB":
        (root / slot).mkdir()
        (root / slot / "vmlinuz").write_bytes(b"old kernel")
        (root / slot / "initrd").write_bytes(b"old initrd")
        (root / slot / "cmdline").write_text("console=ttyS0\n")
    return BootPartition(root)


@pytest.fixture
def updater(boot, tmp_path):
    return Updater(boot, hist.History(tmp_path / "perm"), "A", "1.0")


def test_a_verified_update_lands_in_the_other_slot_and_is_recorded(updater, boot, tmp_path):
    assert updater.begin(manifest())["slot"] == "B"
    updater.receive("vmlinuz", io.BytesIO(KERNEL))
    updater.receive("initrd", io.BytesIO(INITRD))
    entry = updater.prepare_trial(120)
    assert (boot.root / "B" / "vmlinuz").read_bytes() == KERNEL
    assert (boot.root / "B" / "initrd").read_bytes() == INITRD
    assert (boot.root / "B" / "cmdline").read_text() == "console=ttyS0 panic=10\n"
    assert "APPEND console=ttyS0 panic=10 router7.slot=B" in (boot.root / "B/slot.cfg").read_text()
    assert boot.slot_version("B") == "2.0"
    # The trial does not touch the bootloader's default: a reboot returns to A.
    assert boot.default_slot() == "A"
    assert (boot.root / "A" / "vmlinuz").read_bytes() == b"old kernel"
    assert not list(boot.root.glob("B/.*"))
    saved = hist.History(tmp_path / "perm").pending()
    assert saved["id"] == entry["id"]
    assert (saved["from_version"], saved["to_version"], saved["to_slot"]) == ("1.0", "2.0", "B")
    assert saved["deadline_seconds"] == 120


@pytest.mark.parametrize(
    "body, message",
    [
        (KERNEL[:-10], "got 6990 bytes, the manifest says 7000 (truncated"),
        (KERNEL + b"x", "more than"),
        (KERNEL[:-1] + b"X", "does not match the manifest"),
    ],
)
def test_a_truncated_or_altered_file_is_refused_and_not_kept(updater, boot, body, message):
    updater.begin(manifest())
    with pytest.raises(UpdateError) as e:
        updater.receive("vmlinuz", io.BytesIO(body))
    assert e.value.code == 400 and message in e.value.message
    assert not boot.staging("B", "vmlinuz").exists()
    updater.receive("initrd", io.BytesIO(INITRD))
    with pytest.raises(UpdateError, match="not everything was uploaded"):
        updater.prepare_trial()
    assert not (boot.root / "B" / "vmlinuz").exists()
    assert boot.default_slot() == "A"


def test_no_room_on_the_boot_partition_is_507(updater, boot, monkeypatch):
    monkeypatch.setattr(boot, "free_bytes", lambda: 100)
    with pytest.raises(UpdateError) as e:
        updater.begin(manifest())
    assert e.value.code == 507 and "boot partition full" in e.value.message
    # Nothing was removed either.
    assert (boot.root / "B" / "vmlinuz").read_bytes() == b"old kernel"


def test_files_before_the_manifest_and_unknown_names_are_refused(updater):
    with pytest.raises(UpdateError, match="manifest first"):
        updater.receive("vmlinuz", io.BytesIO(KERNEL))
    updater.begin(manifest())
    with pytest.raises(UpdateError) as e:
        updater.receive("../default.cfg", io.BytesIO(b"DEFAULT B\n"))
    assert e.value.code == 404


def test_no_update_while_the_running_slot_is_not_the_default(boot, tmp_path):
    boot.set_default("B")
    u = Updater(boot, hist.History(tmp_path), "A", "1.0")
    with pytest.raises(UpdateError, match="not the boot default B"):
        u.begin(manifest())
    u = Updater(boot, hist.History(tmp_path), None, "1.0")
    with pytest.raises(UpdateError, match="running slot is unknown"):
        u.begin(manifest())


def test_no_boot_partition_is_a_clear_409(tmp_path):
    u = Updater(BootPartition(tmp_path / "none"), hist.History(tmp_path), "A", "1.0")
    with pytest.raises(UpdateError) as e:
        u.begin(manifest())
    assert e.value.code == 409 and "no boot partition" in e.value.message


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda m: m.pop("version"), "version"),
        (lambda m: m["files"].pop("initrd"), "files.initrd"),
        (lambda m: m["files"]["vmlinuz"].update(sha256="abc"), "files.vmlinuz.sha256"),
        (lambda m: m["files"]["vmlinuz"].update(bytes=-1), "files.vmlinuz.bytes"),
        (lambda m: m.update(cmdline="quiet router7.slot=A"), "cmdline"),
    ],
)
def test_manifest_errors_name_the_field(change, field):
    m = json.loads(manifest())
    change(m)
    with pytest.raises(ManifestError, match=f"manifest: {field}"):
        Manifest.parse(json.dumps(m).encode())
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.parse(b"{")


def test_set_default_rewrites_only_default_cfg(boot):
    before = {p: p.read_bytes() for p in boot.root.rglob("*") if p.is_file()}
    boot.set_default("B")
    assert boot.default_slot() == "B"
    after = {p: p.read_bytes() for p in boot.root.rglob("*") if p.is_file()}
    assert {p for p in after if after[p] != before.get(p)} == {boot.root / "default.cfg"}


# --- start-up decision ----------------------------------------------------------


def test_classify():
    pending = {"id": "x", "to_slot": "B", "result": "trial"}
    trial = cmdline_args("console=ttyS0 router7.slot=B router7.trial=1")
    assert classify(trial, "A", pending).action == "trial"
    # Any reboot before the commit boots A: the old system settles the entry.
    old = classify(cmdline_args("router7.slot=A"), "A", pending)
    assert (old.action, old.reason) == ("settle-rolled-back", NO_COMMIT)
    # Committed but the record was not written (power cut right after default.cfg).
    assert classify(cmdline_args("router7.slot=B"), "B", pending).action == "settle-committed"
    assert classify(cmdline_args("router7.slot=A"), "A", None).action == "idle"
    # A trial flag on the default slot (kexec of the same slot by hand) is no trial.
    assert classify(cmdline_args("router7.slot=A router7.trial=1"), "A", None).action == "idle"


# --- the trial on a clock -------------------------------------------------------


class Acts:
    def __init__(self, clock, verdicts):
        self.clock = clock
        self.verdicts = list(verdicts)
        self.committed: list[float] = []
        self.rolled_back: list[str] = []

    def probe(self):
        v = self.verdicts.pop(0) if self.verdicts else {"healthy": False, "first_error": "x"}
        if isinstance(v, Exception):
            return defer.fail(v)
        return defer.succeed(v)

    def trial(self, deadline=60.0):
        return Trial(
            self.clock, self.probe, self.clock.seconds, deadline,
            self.committed.append, self.rolled_back.append, interval=5,
        )  # fmt: skip


def test_trial_commits_after_consecutive_healthy_verdicts():
    clock = task.Clock()
    clock.advance(20)  # uptime at start
    unhealthy = {"healthy": False, "first_error": "ping4: default gateway: timeout"}
    acts = Acts(clock, [ConnectionRefusedError("refused"), unhealthy, {"healthy": True},
                        unhealthy, *[{"healthy": True}] * HEALTHY_IN_A_ROW])  # fmt: skip
    t = acts.trial()
    t.start()
    clock.pump([5] * 4)
    assert acts.committed == [] and t.state == "waiting"
    clock.pump([5] * HEALTHY_IN_A_ROW)
    assert acts.committed == [20 + 5 * (4 + HEALTHY_IN_A_ROW - 1)]
    assert acts.rolled_back == [] and t.state == hist.COMMITTED
    assert not clock.getDelayedCalls()


def test_trial_rolls_back_at_the_deadline_naming_the_last_error():
    clock = task.Clock()
    clock.advance(10)
    acts = Acts(clock, [{"healthy": False, "first_error": "link/uplink0: does not exist"}] * 100)
    t = acts.trial(deadline=60)
    t.start()
    clock.pump([5] * 9)  # 55 s of uptime: still waiting
    assert acts.rolled_back == []
    clock.pump([5] * 2)
    assert acts.committed == []
    assert len(acts.rolled_back) == 1
    assert "not healthy within 60 s" in acts.rolled_back[0]
    assert "link/uplink0: does not exist" in acts.rolled_back[0]
    assert not clock.getDelayedCalls()


def test_trial_past_its_deadline_at_start_rolls_back_at_once():
    clock = task.Clock()
    clock.advance(100)  # updated restarted late in the trial: the deadline counts from boot
    acts = Acts(clock, [{"healthy": False, "first_error": "dns: timeout"}, {"healthy": True}])
    acts.trial(deadline=60).start()
    # One probe, for the reason only: a late verdict never commits.
    clock.advance(0)
    assert acts.committed == [] and len(acts.rolled_back) == 1
    assert "dns: timeout" in acts.rolled_back[0]
    acts = Acts(clock, [{"healthy": True}] * 5)
    acts.trial(deadline=60).start()
    clock.advance(0)
    assert acts.committed == [] and len(acts.rolled_back) == 1
    assert "not healthy within 60 s: diagd: healthy only at 100 s" in acts.rolled_back[0]


def test_trial_past_its_deadline_waits_for_diagd_to_name_the_reason():
    clock = task.Clock()
    clock.advance(80)  # a short deadline, and diagd still starting
    refused = ConnectionRefusedError("refused")
    unhealthy = {"healthy": False, "first_error": "link/uplink9: uplink9 does not exist"}
    acts = Acts(clock, [refused] * 3 + [unhealthy, {"healthy": True}])
    acts.trial(deadline=60).start()
    clock.pump([5] * 2)
    assert acts.rolled_back == []  # 10 s past the start: diagd refused three times
    clock.pump([5])
    assert acts.committed == [] and len(acts.rolled_back) == 1
    assert "uplink9 does not exist" in acts.rolled_back[0]
    # diagd never answers: rolled back once the grace is over, naming that.
    clock = task.Clock()
    clock.advance(70)
    acts = Acts(clock, [refused] * 100)
    acts.trial(deadline=60).start()
    clock.pump([5] * 9)  # uptime 115: still inside the grace (60 + REASON_GRACE)
    assert acts.rolled_back == []
    clock.pump([5] * 2)
    assert len(acts.rolled_back) == 1 and "diagd unreachable" in acts.rolled_back[0]
    assert not clock.getDelayedCalls()


def test_history_settle_keeps_steps(tmp_path):
    h = hist.History(tmp_path)
    h.append({"id": "a", "result": hist.TRIAL})
    h.step("a", "booted slot B")
    h.settle("a", hist.ROLLED_BACK, "unhealthy", boot_to_healthy=3.0)
    e = h.last()
    assert e["result"] == hist.ROLLED_BACK and e["reason"] == "unhealthy"
    assert [s["what"] for s in e["steps"]] == ["booted slot B", "rolled back: unhealthy"]
    assert h.pending() is None
    (tmp_path / hist.PATH).write_text("{broken")
    assert h.entries() == []  # a damaged history never blocks a rollback


def test_statusd_shows_version_slot_and_the_last_update(tmp_path):
    from router7.statusd import collect, render

    (tmp_path / "version").write_text("2.0\n")
    (tmp_path / "cmdline").write_text("console=ttyS0 router7.slot=B\n")
    h = hist.History(tmp_path / "perm")
    h.append({"id": "a", "result": hist.TRIAL, "from_version": "1.0", "to_version": "2.0"})
    h.settle("a", hist.ROLLED_BACK, "not healthy within 60 s: <uplink9>")
    info = collect.system(tmp_path / "perm", tmp_path / "version", tmp_path / "cmdline")
    assert (info["version"], info["slot"], info["trial"]) == ("2.0", "B", False)
    assert info["last_update"]["result"] == "rolled back"
    html = render.system(info)
    assert 'data-k="slot">B<' in html and "rolled back: 1.0 → 2.0" in html
    assert "&lt;uplink9&gt;" in html  # escaped


def test_a_variant_is_the_image_plus_an_overlay_cpio(tmp_path):
    from router7.image import cpio, variant

    src = tmp_path / "src"
    src.mkdir()
    (src / "vmlinuz").write_bytes(b"K" * 100)
    (src / "initrd").write_bytes(b"compressed archive" + b"x")  # 19 bytes: padded to 20
    (src / "cmdline").write_text("console=ttyS0 panic=10\n")
    m = variant.make(
        src, tmp_path / "v", "v2", {"etc/router7/router7.env": b"ROUTER7_UPLINK=uplink9\n"},
        append="rdinit=/nope",
    )  # fmt: skip
    initrd = (tmp_path / "v/initrd").read_bytes()
    assert initrd.startswith(b"compressed archivex\0")
    files = {p: d for p, mode, d in cpio.read(initrd[20:]) if d}
    assert files == {
        "overlay/etc/router7/version": b"v2\n",
        "overlay/etc/router7/router7.env": b"ROUTER7_UPLINK=uplink9\n",
    }
    assert m["cmdline"] == "console=ttyS0 panic=10 rdinit=/nope"
    assert m["files"]["initrd"]["sha256"] == hashlib.sha256(initrd).hexdigest()
    # What updated accepts: the variant's manifest as it is.
    assert Manifest.parse((tmp_path / "v/manifest.json").read_bytes()).version == "v2"


# ping -D -n -O -i 0.1 through a router that went away (recorded in the update VM
# scenario, shortened): while the LAN host's ARP for the router fails, its requests
# go out about four a second, not ten, so counting them would halve the outage.
PING_THROUGH_A_KEXEC = """\
PING 203.0.113.10 (203.0.113.10) 56(84) bytes of data.
[1796019514.984101] 64 bytes from 203.0.113.10: icmp_seq=64 ttl=62 time=5.02 ms
[1796019515.084196] 64 bytes from 203.0.113.10: icmp_seq=65 ttl=62 time=6.77 ms
[1796019515.280131] no answer yet for icmp_seq=66
[1796019515.384074] no answer yet for icmp_seq=67
[1796019521.896152] From 192.168.42.17 icmp_seq=101 Destination Host Unreachable
[1796019521.896173] From 192.168.42.17 icmp_seq=102 Destination Host Unreachable
[1796019578.536237] From 192.168.42.17 icmp_seq=328 Destination Host Unreachable
[1796019578.609362] no answer yet for icmp_seq=328
[1796019578.618238] 64 bytes from 203.0.113.10: icmp_seq=329 ttl=62 time=8.79 ms
[1796019578.712377] 64 bytes from 203.0.113.10: icmp_seq=330 ttl=62 time=1.94 ms
"""


def test_outage_is_the_longest_time_between_two_replies():
    from router7.updated.outage import measure

    outage = measure(PING_THROUGH_A_KEXEC, interval=0.1)
    assert (outage.sent, outage.answered) == (330, 4)
    assert abs(outage.seconds - (1796019578.618238 - 1796019515.084196 - 0.1)) < 1e-6
    # Not the 263 requests in a row (26.3 s) that went unanswered.
    assert outage.seconds > 60
    assert measure("", 0.1).seconds == 0.0


def test_safe_update_refuses_an_image_not_matching_its_manifest(tmp_path, monkeypatch):
    from router7.updated import client, safe_update

    d = tmp_path / "img"
    d.mkdir()
    (d / "vmlinuz").write_bytes(KERNEL)
    (d / "initrd").write_bytes(INITRD)
    (d / "manifest.json").write_bytes(manifest())
    assert safe_update.check_image(d)["version"] == "2.0"
    (d / "initrd").write_bytes(INITRD[:-1])
    with pytest.raises(client.ClientError, match="initrd does not match"):
        safe_update.check_image(d)
    monkeypatch.delenv("ROUTER7_ADMIN_TOKEN", raising=False)
    args = type("Args", (), {"token_file": None})()
    with pytest.raises(client.ClientError, match="no admin credential"):
        safe_update.token_from(args)
    monkeypatch.setenv("ROUTER7_ADMIN_TOKEN", "t0ken\n")
    assert safe_update.token_from(args) == "t0ken"


def test_client_names_an_unreachable_router():
    import socket

    from router7.updated import client

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(client.Unreachable, match=f"http://127.0.0.1:{port}/status.json"):
        client.Router("127.0.0.1", "t").json("GET", port, "/status.json")


def test_a_parts_variant_uploads_the_same_bytes(tmp_path):
    from router7.image import variant
    from router7.updated.client import _Concat

    src = tmp_path / "src"
    src.mkdir()
    (src / "vmlinuz").write_bytes(b"K" * 100)
    (src / "initrd").write_bytes(b"base initrd" * 1000)
    (src / "cmdline").write_text("console=ttyS0\n")
    whole = variant.make(src, tmp_path / "whole", "v2")
    parts = variant.make(src, tmp_path / "parts", "v2", parts=True)
    assert parts["files"] == whole["files"]
    assert not (tmp_path / "parts/initrd").exists()
    with _Concat(variant.initrd_parts(tmp_path / "parts")) as f:
        data = b"".join(iter(lambda: f.read(333), b""))
    assert data == (tmp_path / "whole/initrd").read_bytes()
