"""Lease validity: by the real end of the lease, never by the renew time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from router7.diagd.leases import dhcp4_status, dhcp6_status
from router7.diagd.tree import CheckFailed

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def lease4(tmp_path, **times):
    obj = {"address": "192.0.2.23/25", "router": "192.0.2.1", "dns": [], "server": "192.0.2.1"}
    obj["lease_time"] = 120
    obj.update({k: iso(v) for k, v in times.items()})
    path = tmp_path / "lease.json"
    path.write_text(json.dumps(obj))
    return path


def test_valid_past_renew_time_until_expiry(tmp_path):
    # router7's Go client wrote valid_until = T1; the original diagd called the
    # lease invalid from there on. The lease really lasts until expires_at.
    path = lease4(
        tmp_path,
        obtained_at=T0,
        renew_at=T0 + timedelta(seconds=60),
        valid_until=T0 + timedelta(seconds=60),
        expires_at=T0 + timedelta(seconds=120),
    )
    now = T0 + timedelta(seconds=90)
    assert dhcp4_status(path, now) == "192.0.2.23/25, expires in 30s"
    with pytest.raises(CheckFailed, match="expired 5s ago"):
        dhcp4_status(path, T0 + timedelta(seconds=125))


def test_expired_even_if_renew_time_is_in_the_future(tmp_path):
    # A nonsensical file, but it shows which field decides.
    path = lease4(tmp_path, renew_at=T0 + timedelta(hours=1), expires_at=T0)
    with pytest.raises(CheckFailed, match="expired"):
        dhcp4_status(path, T0 + timedelta(seconds=1))


def test_router7_go_file_falls_back_to_valid_until(tmp_path):
    path = tmp_path / "lease.json"
    path.write_text(
        json.dumps(
            {
                "client_ip": "85.195.207.62",
                "subnet_mask": "255.255.255.128",
                "valid_until": "2026-01-01T12:10:00.123456789+01:00",
            }
        )
    )
    assert dhcp4_status(path, datetime(2026, 1, 1, 11, 0, tzinfo=UTC)) == (
        "85.195.207.62/25, expires in 10m00s"
    )


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(CheckFailed, match="no lease"):
        dhcp4_status(tmp_path / "nope.json", T0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"expires_at": 5}')
    with pytest.raises(CheckFailed, match="expires_at"):
        dhcp4_status(bad, T0)


def test_dhcp6_prefix_validity(tmp_path):
    path = tmp_path / "lease.json"
    path.write_text(
        json.dumps(
            {
                "prefixes": [
                    {
                        "prefix": "2001:db8:100::/48",
                        "preferred_lifetime": 1800,
                        "valid_lifetime": 3600,
                        "valid_until": iso(T0 + timedelta(hours=1)),
                    }
                ],
                "obtained_at": iso(T0),
                "t1": 900,
                "t2": 1440,
            }
        )
    )
    assert dhcp6_status(path, T0 + timedelta(minutes=30)) == "2001:db8:100::/48 (valid 30m00s)"
    with pytest.raises(CheckFailed, match="2001:db8:100::/48 expired"):
        dhcp6_status(path, T0 + timedelta(hours=2))


def test_dhcp6_lifetime_without_absolute_time_and_go_ipnet(tmp_path):
    path = tmp_path / "lease.json"
    path.write_text(
        json.dumps(
            {
                "prefixes": [{"prefix": "2001:db8:100::/48", "valid_lifetime": 60}],
                "obtained_at": iso(T0),
            }
        )
    )
    assert "valid 30s" in dhcp6_status(path, T0 + timedelta(seconds=30))
    go = tmp_path / "go.json"
    go.write_text(
        json.dumps(
            {
                "valid_until": iso(T0 + timedelta(minutes=5)),
                "prefixes": [{"IP": "2a02:168:4a00::", "Mask": "////////AAAAAAAAAAAAAA=="}],
            }
        )
    )
    assert dhcp6_status(go, T0) == "2a02:168:4a00::/48 (valid 5m00s)"
    empty = tmp_path / "empty.json"
    empty.write_text('{"prefixes": []}')
    with pytest.raises(CheckFailed, match="no delegated prefix"):
        dhcp6_status(empty, T0)
