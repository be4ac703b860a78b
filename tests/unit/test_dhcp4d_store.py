"""leases.json persistence (ours and router7's format) and config.json."""

import json
from ipaddress import IPv4Address

import pytest

from router7.dhcp4d import config, store
from router7.dhcp4d.leases import Lease, LeaseTable, StaticLease
from router7.dhcp4d.pool import Pool
from router7.runtime.statefile import StateFileError

T0 = 1_700_000_000.0

# What router7 (Go) writes: tab-indented, nanosecond times with zone offsets, the
# zero time for a static lease, and (from old versions) no last_ack at all.
ROUTER7_LEASES = """[
\t{
\t\t"num": 74,
\t\t"addr": "192.168.42.76",
\t\t"hardware_addr": "02:73:53:00:ca:fe",
\t\t"hostname": "midna",
\t\t"hostname_override": "",
\t\t"expiry": "2023-11-14T23:33:20.429895261+01:00",
\t\t"last_ack": "2023-11-14T23:13:20.429895261+01:00"
\t},
\t{
\t\t"num": 8,
\t\t"addr": "192.168.42.10",
\t\t"hardware_addr": "02:73:53:00:b0:0c",
\t\t"hostname": "printer",
\t\t"hostname_override": "",
\t\t"expiry": "0001-01-01T00:00:00Z",
\t\t"last_ack": "0001-01-01T00:00:00Z"
\t},
\t{
\t\t"num": 248,
\t\t"addr": "192.168.42.250",
\t\t"hardware_addr": "02:73:53:00:b0:0d",
\t\t"hostname": "tv",
\t\t"hostname_override": "tv",
\t\t"expiry": "2023-11-14T22:33:20Z"
\t},
\t{"addr": "not an address", "hardware_addr": "02:73:53:00:b0:0e"}
]
"""


def test_round_trip_keeps_every_field(tmp_path):
    leases = [
        Lease(
            IPv4Address("192.168.42.23"),
            "02:73:53:00:00:01",
            "midna",
            "",
            T0 + 1200,
            T0,
            "android-dhcp-14",
        ),
        Lease(IPv4Address("192.168.42.10"), "02:73:53:00:00:02", "printer", "", None, None),
        Lease(IPv4Address("192.168.42.24"), "02:73:53:00:00:03", "tv", "tv", T0 - 5, T0 - 1205),
    ]
    path = tmp_path / "dhcp4d" / "leases.json"
    store.save(path, leases, IPv4Address("192.168.42.2"))
    text = path.read_text()
    assert text.startswith("[\n\t{")  # tab-indented like router7's
    raw = json.loads(text)
    assert [e["addr"] for e in raw] == ["192.168.42.10", "192.168.42.23", "192.168.42.24"]
    assert raw[0]["expiry"] == store.GO_ZERO_TIME and raw[1]["num"] == 21
    assert raw[1]["expiry"] == "2023-11-14T22:33:20Z"
    assert {"hostname", "addr", "hardware_addr", "expiry", "hostname_override", "last_ack"} <= set(
        raw[0]
    )
    assert sorted(store.load(path), key=lambda x: x.addr) == sorted(leases, key=lambda x: x.addr)


def test_router7_leases_json_is_imported(tmp_path):
    path = tmp_path / "leases.json"
    path.write_text(ROUTER7_LEASES)
    leases = {str(lease.addr): lease for lease in store.load(path)}
    assert set(leases) == {"192.168.42.76", "192.168.42.10", "192.168.42.250"}
    midna = leases["192.168.42.76"]
    assert midna.expiry == pytest.approx(T0 + 1200.43) and midna.hostname == "midna"
    assert midna.last_ack == pytest.approx(T0 + 0.43)
    printer = leases["192.168.42.10"]
    assert printer.static and printer.last_ack is None
    tv = leases["192.168.42.250"]
    assert tv.last_ack == tv.expiry == T0 + 1200 and tv.hostname_override == "tv"

    # Loaded into a table, the leases are honoured: the previous owner gets its
    # address back, the imported static lease (outside the pool) stays static.
    table = LeaseTable(Pool.for_interface("192.168.42.1/24", "192.168.42.20", "192.168.42.240"))
    dropped = table.load(list(leases.values()))
    assert [str(d.addr) for d in dropped] == ["192.168.42.250"]  # outside the range, dynamic
    assert table.choose("02:73:53:00:ca:fe", None, T0 + 7200) == IPv4Address("192.168.42.76")
    assert not table.can_lease(IPv4Address("192.168.42.76"), "02:00:00:00:00:09", T0 - 1)
    assert table.choose("02:73:53:00:b0:0c", None, T0) == IPv4Address("192.168.42.10")
    assert table.lease_of("02:73:53:00:b0:0c").static


def test_corrupt_leases_file_is_moved_aside(tmp_path):
    path = tmp_path / "leases.json"
    path.write_text("{not json")
    assert store.load(path) == []
    assert not path.exists() and (tmp_path / "leases.json.corrupt").read_text() == "{not json"


def test_declined_round_trip(tmp_path):
    path = tmp_path / "declined.json"
    store.save_declined(path, {IPv4Address("192.168.42.9"): T0})
    assert store.load_declined(path) == {IPv4Address("192.168.42.9"): T0}
    assert store.load_declined(tmp_path / "absent.json") == {}


def test_config_defaults_when_absent(tmp_path):
    cfg = config.load(tmp_path / "config.json")
    assert cfg.lease_time == 1200 and cfg.domain == "lan" and cfg.static_leases == {}


def test_config_full(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "pool": {"start": "192.168.42.100", "end": "192.168.42.199"},
                "lease_time": 3600,
                "domain": "home.arpa",
                "static_leases": {
                    "02-73-53-00-CA-FE": {"addr": "192.168.42.10", "hostname": "Printer"}
                },
                "hostname_overrides": {"02:73:53:00:b0:0c": "TV"},
            }
        )
    )
    cfg = config.load(path)
    assert cfg.pool_start == IPv4Address("192.168.42.100") and cfg.pool_end == IPv4Address(
        "192.168.42.199"
    )
    assert cfg.lease_time == 3600 and cfg.domain == "home.arpa"
    assert cfg.static_leases == {
        "02:73:53:00:ca:fe": StaticLease(IPv4Address("192.168.42.10"), "printer")
    }
    assert cfg.hostname_overrides == {"02:73:53:00:b0:0c": "tv"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"lease_time": -5}, "lease_time"),
        ({"pool": {"start": "nope"}}, "pool.start"),
        ({"static_leases": {"zz": {"addr": "192.168.42.2"}}}, "static_leases"),
        ({"domain": "bad domain"}, "domain"),
    ],
)
def test_config_errors_name_the_field(tmp_path, body, field):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(body))
    with pytest.raises(StateFileError) as e:
        config.load(path)
    assert e.value.field == field
