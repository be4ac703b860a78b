"""radvd's files: the dhcp6 lease contract, config.json, prefixes.json, its memory."""

import ipaddress
import json
from datetime import UTC, datetime

import pytest

from router7.radvd import inputs
from router7.radvd.plan import Config, Delegated
from router7.runtime.statefile import StateFileError

NET = ipaddress.IPv6Network


def epoch(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp()


def write(perm, rel, obj):
    path = perm / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def test_lease_lifetimes_count_from_obtained_at(tmp_path):
    write(
        tmp_path,
        inputs.LEASE,
        {
            "prefixes": [
                {"prefix": "2001:db8:100::/48", "preferred_lifetime": 3600, "valid_lifetime": 7200}
            ],
            "obtained_at": "2026-11-23T20:00:00Z",
            "dns": ["2001:db8::53"],
        },
    )
    lease = inputs.read_lease(tmp_path)
    t0 = epoch("2026-11-23T20:00:00Z")
    assert lease.prefixes == (Delegated(NET("2001:db8:100::/48"), t0 + 3600, t0 + 7200),)
    assert lease.previous == () and lease.obtained_at == t0


def test_lease_absolute_times_win_and_previous_prefixes_are_read(tmp_path):
    write(
        tmp_path,
        inputs.LEASE,
        {
            "prefixes": [
                {
                    "prefix": "2001:db8:200::/48",
                    "preferred_lifetime": 3600,
                    "valid_lifetime": 7200,
                    "preferred_until": "2026-11-23T21:30:00Z",
                    "valid_until": "2026-11-23T22:30:00.123456789Z",
                }
            ],
            "previous_prefixes": [
                {
                    "prefix": "2001:db8:100::/48",
                    "preferred_until": "2026-11-23T20:00:00Z",
                    "valid_until": "2026-11-23T21:00:00Z",
                }
            ],
            "obtained_at": "2026-11-23T20:00:00Z",
        },
    )
    lease = inputs.read_lease(tmp_path)
    assert lease.prefixes[0].preferred_until == epoch("2026-11-23T21:30:00Z")
    assert int(lease.prefixes[0].valid_until) == int(epoch("2026-11-23T22:30:00Z"))
    assert lease.previous == (
        Delegated(
            NET("2001:db8:100::/48"), epoch("2026-11-23T20:00:00Z"), epoch("2026-11-23T21:00:00Z")
        ),
    )


def test_go_router7_lease_is_understood(tmp_path):
    write(
        tmp_path,
        inputs.LEASE,
        {
            "valid_until": "2018-05-18T23:46:04.429895261+02:00",
            "prefixes": [{"IP": "2a02:168:4a00::", "Mask": "////////AAAAAAAAAAAAAA=="}],
            "dns": ["2001:1620:2777:1::10"],
        },
    )
    assert inputs.read_lease(tmp_path).prefixes == (Delegated(NET("2a02:168:4a00::/48")),)


def test_missing_lease_is_none_and_broken_lease_names_the_field(tmp_path):
    assert inputs.read_lease(tmp_path) is None
    write(
        tmp_path, inputs.LEASE, {"prefixes": [{"prefix": "2001:db8::/48", "valid_lifetime": "x"}]}
    )
    with pytest.raises(StateFileError, match="prefixes\\[0\\].valid_lifetime"):
        inputs.read_lease(tmp_path)
    write(tmp_path, inputs.LEASE, {"prefixes": [{"prefix": "192.0.2.0/24"}]})
    with pytest.raises(StateFileError, match="IPv6"):
        inputs.read_lease(tmp_path)
    write(tmp_path, inputs.LEASE, "{not json")
    with pytest.raises(StateFileError, match="JSON"):
        inputs.read_lease(tmp_path)


def test_config_defaults_and_overrides(tmp_path):
    assert inputs.read_config(tmp_path) == Config()
    write(
        tmp_path,
        inputs.CONFIG,
        {"subnet_id": 3, "max_interval": 30, "rdnss": ["fd00::53"], "dnssl": ["lan", "home.arpa"]},
    )
    c = inputs.read_config(tmp_path)
    assert (c.subnet_id, c.max_interval, c.effective_min_interval) == (3, 30.0, 9.9)
    assert c.rdnss == (ipaddress.IPv6Address("fd00::53"),) and c.dnssl == ("lan", "home.arpa")
    assert c.effective_router_lifetime == 90 and c.option_lifetime == 90


@pytest.mark.parametrize(
    "config, match",
    [
        ({"max_interval": 2}, "max_interval"),
        ({"max_interval": 10, "min_interval": 9}, "min_interval"),
        ({"router_lifetime": 9001}, "router_lifetime"),
        ({"rdnss": ["192.0.2.1"]}, "IPv6"),
        ({"subnet_id": "one"}, "subnet_id"),
    ],
)
def test_bad_config_is_rejected(tmp_path, config, match):
    write(tmp_path, inputs.CONFIG, config)
    with pytest.raises(StateFileError, match=match):
        inputs.read_config(tmp_path)


def test_extra_prefixes_in_router7_and_plain_form(tmp_path):
    assert inputs.read_extra_prefixes(tmp_path) == ()
    write(
        tmp_path,
        inputs.EXTRA_PREFIXES,
        [{"IP": "fd12:3456:789a::", "Mask": "//////////8AAAAAAAAAAA=="}, "fd00:1::/64"],
    )
    assert inputs.read_extra_prefixes(tmp_path) == (NET("fd12:3456:789a::/64"), NET("fd00:1::/64"))


def test_memory_round_trip(tmp_path):
    memory = {NET("2001:db8:100::/64"): 1_800_000_000.0, NET("2001:db8:200::/64"): 1_800_003_600.0}
    inputs.write_memory(tmp_path, memory)
    assert inputs.read_memory(tmp_path) == memory
    text = (tmp_path / inputs.MEMORY).read_text()
    assert "2027-01-15T08:00:00Z" in text  # human-readable times
