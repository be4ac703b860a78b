import json
import os
import random
import signal
import time
from datetime import UTC, datetime

import pytest

from router7.runtime.statefile import (
    Optional,
    StateFileError,
    format_time,
    ip_interface,
    ip_network,
    ip_prefix,
    iso_time,
    read_json,
    write_json_atomic,
)

LEASE6 = {
    "prefixes": [{"prefix": ip_network, "valid_lifetime": int}],
    "dns": [str],
    "t1": Optional(int, 0),
}


def test_round_trip_converts_values(tmp_path):
    path = tmp_path / "dhcp6" / "wire" / "lease.json"
    write_json_atomic(
        path, {"prefixes": [{"prefix": "2a02:168:4a00::/48", "valid_lifetime": 86400}], "dns": []}
    )
    lease = read_json(path, LEASE6)
    assert str(lease["prefixes"][0]["prefix"]) == "2a02:168:4a00::/48"
    assert lease["t1"] == 0  # optional field defaulted
    assert path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["lease.json"]  # no temp file left


def test_schema_error_names_file_and_field(tmp_path):
    path = tmp_path / "lease.json"
    path.write_text(
        json.dumps(
            {"prefixes": [{"prefix": "2a02:168:4a00::1/48", "valid_lifetime": 1}], "dns": []}
        )
    )
    with pytest.raises(StateFileError) as e:
        read_json(path, LEASE6)
    assert e.value.path == str(path)
    assert e.value.field == "prefixes[0].prefix"
    assert str(path) in str(e.value) and "prefixes[0].prefix" in str(e.value)


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"dns": []}, "prefixes"),  # missing
        (
            {"prefixes": [{"prefix": "::/0", "valid_lifetime": "1"}], "dns": []},
            "prefixes[0].valid_lifetime",
        ),
        (
            {"prefixes": [{"prefix": "::/0", "valid_lifetime": True}], "dns": []},
            "prefixes[0].valid_lifetime",
        ),
        ({"prefixes": [], "dns": [1]}, "dns[0]"),
        ({"prefixes": {}, "dns": []}, "prefixes"),
    ],
)
def test_schema_errors(tmp_path, doc, field):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(StateFileError) as e:
        read_json(path, LEASE6)
    assert e.value.field == field


def test_broken_json_and_missing_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"prefixes": [')
    with pytest.raises(StateFileError, match="not valid JSON") as e:
        read_json(path, LEASE6)
    assert e.value.field is None
    with pytest.raises(StateFileError, match="does not exist"):
        read_json(tmp_path / "absent.json")


def test_go_timestamps_with_nanoseconds():
    t = iso_time("2018-05-18T23:46:04.429895261+02:00")
    assert t == datetime(2018, 5, 18, 21, 46, 4, 429895, tzinfo=UTC)
    assert format_time(t) == "2018-05-18T21:46:04Z"
    assert iso_time("0001-01-01T00:00:00Z").year == 1
    with pytest.raises(ValueError):
        iso_time("2018-05-18T23:46:04")  # no zone: ambiguous
    assert str(ip_interface("85.195.207.62/25").network) == "85.195.207.0/25"


def test_sigkill_never_leaves_a_partial_file(tmp_path):
    """Kill a writer at random moments; the file is always one complete version."""
    path = tmp_path / "state.json"
    versions = [{"n": i, "pad": "x" * (i * 9000)} for i in range(1, 4)]  # sizes span many pages
    write_json_atomic(path, versions[0])
    rng = random.Random(7)
    runs = 300
    for _ in range(runs):
        pid = os.fork()
        if pid == 0:  # child: rewrite the file as fast as it can until killed
            try:
                i = 0
                while True:
                    write_json_atomic(path, versions[i % 3])
                    i += 1
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 0.004))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert json.loads(path.read_text()) in versions
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.json"]
    # A killed writer may leave its hidden temp file, never a visible one.
    assert all(name.startswith(".state.json.") for name in leftovers)


def test_go_ipnet_is_decoded_once_with_its_mask_checked():
    v6 = ip_prefix({"IP": "2a02:168:4a00::", "Mask": "////////AAAAAAAAAAAAAA=="})
    assert str(v6) == "2a02:168:4a00::/48"
    assert str(ip_prefix({"IP": "10.0.0.0", "Mask": "////AA=="})) == "10.0.0.0/24"
    assert str(ip_prefix("fd00::/64")) == "fd00::/64"
    for bad in (
        {"IP": "2a02:168:4a00::", "Mask": "/w8AAAAAAAAAAAAAAAAAAA=="},  # not contiguous
        {"IP": "2a02:168:4a00::", "Mask": "////AA=="},  # an IPv4 mask
        {"IP": "2a02:168:4a00::", "Mask": "not base64!"},
        {"IP": "2a02:168:4a00::"},
    ):
        with pytest.raises(ValueError, match="Mask|IPNet"):
            ip_prefix(bad)
