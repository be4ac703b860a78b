"""statusd's reading of state files: values, missing files, broken files, pid files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router7.runtime import notify
from router7.runtime.statefile import write_json_atomic
from router7.statusd import collect

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)


def lease4(**over):
    lease = {
        "address": "192.0.2.23/25",
        "router": "192.0.2.1",
        "dns": ["198.51.100.53", "198.51.100.54"],
        "server": "192.0.2.1",
        "lease_time": 3600,
        "obtained_at": NOW - H / 2,
        "renew_at": NOW,
        "rebind_at": NOW + H / 4,
        "expires_at": NOW + H / 2,
    }
    lease.update(over)
    return lease


def lease6(**over):
    lease = {
        "prefixes": [
            {
                "prefix": "2001:db8:100::/48",
                "preferred_lifetime": 1800,
                "valid_lifetime": 3600,
                "preferred_until": NOW + H / 2,
                "valid_until": NOW + H,
            }
        ],
        "addresses": [],
        "dns": ["2001:db8:1::53"],
        "server_duid": "000100",
        "t1": 900,
        "t2": 1440,
        "obtained_at": NOW,
        "renew_at": NOW + H / 4,
        "rebind_at": NOW + H / 2,
        "previous_prefixes": [
            {"prefix": "2001:db8:200::/48", "preferred_until": NOW - H, "valid_until": NOW + H}
        ],
    }
    lease.update(over)
    return lease


LAN = [
    {
        "num": 3,
        "addr": "192.168.42.23",
        "hardware_addr": "02:72:37:00:01:02",
        "hostname": "laptop",
        "hostname_override": "",
        "expiry": "2026-11-23T12:20:00Z",
        "last_ack": "2026-11-23T11:50:00Z",
        "vendor_class": "android-dhcp-13",
    },
    {
        "addr": "192.168.42.5",
        "hardware_addr": "98:B6:E9:00:00:01",  # a Nintendo OUI, upper case as some files have
        "hostname": "switch",
        "hostname_override": "kids-switch",
        "expiry": "2026-11-23T11:00:00Z",
    },
    {
        "addr": "192.168.42.2",
        "hardware_addr": "02:00:00:00:00:09",
        "hostname": "printer",
        "expiry": "0001-01-01T00:00:00Z",  # Go's zero time: a static lease
    },
]


def perm_tree(tmp_path: Path) -> Path:
    perm = tmp_path / "perm"
    write_json_atomic(perm / "dhcp4/wire/lease.json", lease4())
    write_json_atomic(perm / "dhcp6/wire/lease.json", lease6())
    write_json_atomic(perm / "dhcp4d/leases.json", LAN)
    return perm


def test_uplink4_values(tmp_path):
    s = collect.uplink4(perm_tree(tmp_path), NOW)
    assert s["state"] == "ok"
    assert s["address"] == "192.0.2.23/25"
    assert s["gateway"] == "192.0.2.1"
    assert s["dns"] == ["198.51.100.53", "198.51.100.54"]
    assert s["expires_at"] == "2026-11-23T12:30:00Z"
    assert s["expires_in"] == 1800 and s["expired"] is False
    assert s["renew_in"] == 0


def test_uplink4_expired_and_router7_file_without_expires_at(tmp_path):
    perm = tmp_path
    # A Go router7 file: nanoseconds, a zone offset, valid_until instead of expires_at.
    go = {
        "address": "85.195.207.62/25",
        "router": "85.195.207.1",
        "dns": ["77.109.128.2"],
        "valid_until": "2026-11-23T12:40:00.123456789+01:00",
    }
    write_json_atomic(perm / "dhcp4/wire/lease.json", go)
    s = collect.uplink4(perm, NOW)
    assert s["state"] == "ok"
    assert s["expires_at"] == "2026-11-23T11:40:00Z"
    assert s["expired"] is True and s["expires_in"] == -1200
    assert s["obtained_at"] is None and s["server"] is None


def test_uplink6_prefixes_lifetimes_and_previous(tmp_path):
    s = collect.uplink6(perm_tree(tmp_path), NOW)
    assert s["state"] == "ok"
    [p] = s["prefixes"]
    assert p["prefix"] == "2001:db8:100::/48"
    assert (p["preferred_in"], p["valid_in"]) == (1800, 3600)
    assert p["expired"] is False
    [old] = s["previous_prefixes"]
    assert old["prefix"] == "2001:db8:200::/48"
    assert old["preferred_in"] == -3600 and old["valid_in"] == 3600
    assert s["dns"] == ["2001:db8:1::53"]


def test_uplink6_lifetimes_from_obtained_at_when_no_absolute_times(tmp_path):
    prefix = {"prefix": "2001:db8:100::/48", "preferred_lifetime": 600, "valid_lifetime": 1200}
    write_json_atomic(
        tmp_path / "dhcp6/wire/lease.json",
        lease6(prefixes=[prefix], obtained_at=NOW - timedelta(seconds=900)),
    )
    [p] = collect.uplink6(tmp_path, NOW)["prefixes"]
    assert p["preferred_in"] == -300 and p["valid_in"] == 300
    assert p["valid_until"] == "2026-11-23T12:05:00Z"


def test_lan_leases_active_expired_static_vendor(tmp_path):
    s = collect.lan_leases(perm_tree(tmp_path), NOW)
    assert s["state"] == "ok" and "errors" not in s
    by_addr = {x["addr"]: x for x in s["leases"]}
    assert [x["addr"] for x in s["leases"]] == ["192.168.42.2", "192.168.42.23", "192.168.42.5"]
    laptop = by_addr["192.168.42.23"]
    assert laptop["active"] and laptop["expires_in"] == 1200
    assert laptop["hostname"] == "laptop" and laptop["vendor"] == "android-dhcp-13"
    switch = by_addr["192.168.42.5"]
    assert not switch["active"] and switch["hostname"] == "kids-switch"
    assert switch["hardware_addr"] == "98:b6:e9:00:00:01" and switch["vendor"] == "Nintendo"
    printer = by_addr["192.168.42.2"]
    assert printer["static"] and printer["active"] and printer["expiry"] is None


def test_lan_vendor_from_the_oui_cache(tmp_path):
    perm = perm_tree(tmp_path)
    oui = perm / "dhcp4d/oui/oui.csv"
    oui.parent.mkdir(parents=True)
    oui.write_text("Registry,Assignment,Organization Name,Organization Address\n")
    oui.write_text(oui.read_text() + "MA-L,020000,Example Printers AG,Somewhere\n")
    s = collect.lan_leases(perm, NOW)
    assert {x["addr"]: x["vendor"] for x in s["leases"]}["192.168.42.2"] == "Example Printers AG"


def test_missing_files_are_missing_not_errors(tmp_path):
    status = collect.collect(tmp_path, tmp_path / "run", NOW)
    for key in ("uplink4", "uplink6", "lan"):
        assert status[key]["state"] == "missing", key
    assert status["lan"]["leases"] == []
    assert status["uplink4"]["file"] == str(tmp_path / "dhcp4/wire/lease.json")


@pytest.mark.parametrize(
    ("relpath", "content", "field", "reason"),
    [
        ("dhcp4/wire/lease.json", lease4(address="192.0.2.300/25"), "address", "not an address"),
        ("dhcp4/wire/lease.json", lease4(dns="198.51.100.53"), "dns", "expected a list"),
        (
            "dhcp6/wire/lease.json",
            lease6(prefixes=[{"prefix": "2001:db8:100::1/48"}]),
            "prefixes[0].prefix",
            "not a network prefix",
        ),
        ("dhcp6/wire/lease.json", lease6(obtained_at="yesterday"), "obtained_at", "ISO 8601"),
        ("dhcp4d/leases.json", {"not": "a list"}, None, "expected a list of leases"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path, relpath, content, field, reason):
    write_json_atomic(tmp_path / relpath, content)
    status = collect.collect(tmp_path, tmp_path / "run", NOW)
    key = {"dhcp4": "uplink4", "dhcp6": "uplink6", "dhcp4d": "lan"}[relpath.split("/")[0]]
    s = status[key]
    assert s["state"] == "error"
    assert s["error"]["file"] == str(tmp_path / relpath)
    assert s["error"]["field"] == field
    assert reason in s["error"]["reason"]
    # the other sections are unaffected
    assert all(status[k]["state"] == "missing" for k in ("uplink4", "uplink6", "lan") if k != key)


def test_not_json_is_an_error_without_field(tmp_path):
    path = tmp_path / "dhcp4/wire/lease.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"address": ')
    s = collect.uplink4(tmp_path, NOW)
    assert s["state"] == "error" and s["error"]["field"] is None
    assert "not valid JSON" in s["error"]["reason"]


def test_one_broken_lan_lease_is_reported_the_others_shown(tmp_path):
    leases = [dict(LAN[0]), {"addr": "192.168.42.999", "hardware_addr": "02:00:00:00:00:01"}]
    leases.append({"addr": "192.168.42.7"})  # no hardware_addr
    write_json_atomic(tmp_path / "dhcp4d/leases.json", leases)
    s = collect.lan_leases(tmp_path, NOW)
    assert s["state"] == "ok"
    assert [x["addr"] for x in s["leases"]] == ["192.168.42.23"]
    assert [(e["field"], e["file"]) for e in s["errors"]] == [
        ("[1].addr", str(tmp_path / "dhcp4d/leases.json")),
        ("[2].hardware_addr", str(tmp_path / "dhcp4d/leases.json")),
    ]
    assert s["errors"][1]["reason"] == "missing"


def test_services_state_from_pid_files(tmp_path):
    run = tmp_path / "run"
    notify.register(run, "dhcp4")  # this test process plays router7-dhcp4
    # dnsd's pid file names a live pid with the wrong start time: a recycled pid
    write_json_atomic(run / "dnsd.pid", {"pid": os.getpid(), "start_time": 1})
    (run / "radvd.pid").write_text("garbage")
    got = {s["name"]: s for s in collect.services(run)}
    assert [s["name"] for s in collect.services(run)] == list(collect.SERVICES)
    assert got["dhcp4"]["running"] and got["dhcp4"]["pid"] == os.getpid()
    assert got["dhcp4"]["uptime_seconds"] is not None and got["dhcp4"]["uptime_seconds"] >= 0
    for name in ("dnsd", "radvd", "netconfigd"):
        assert not got[name]["running"] and got[name]["pid"] is None, name
        assert got[name]["uptime_seconds"] is None


def test_process_uptime_from_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(collect, "_clock_ticks", lambda: 100)
    (tmp_path / "42").mkdir()
    # field 22 (start time in ticks) = 50000 -> started 500 s after boot
    fields = ["S"] + ["0"] * 18 + ["50000"] + ["0"] * 5
    (tmp_path / "42/stat").write_text(f"42 (my (odd) name) {' '.join(fields)}\n")
    (tmp_path / "uptime").write_text("1234.56 9999.00\n")
    assert collect.process_uptime(42, tmp_path) == pytest.approx(734.56)
    assert collect.process_uptime(43, tmp_path) is None


def test_collect_is_json_serialisable(tmp_path):
    status = collect.collect(perm_tree(tmp_path), tmp_path / "run", NOW)
    assert json.loads(json.dumps(status)) == status
    assert status["generated_at"] == "2026-11-23T12:00:00Z"
