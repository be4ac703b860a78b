"""The isp VM node's files (vm-tests/default.nix) come from the lab's own configs."""

from __future__ import annotations

import json
from pathlib import Path

from router7.lab import configs, nixos_isp
from router7.lab.addresses import ADDR
from router7.lab.scenario import SHORT_LEASES


def test_render_writes_every_file_the_nix_glue_reads(tmp_path):
    nixos_isp.main(
        [str(tmp_path), "--kea-hooks", "/k/hooks", "--path", "/t/bin", "--python", "/p/python3"]
    )
    # vm-tests/default.nix refers to these names.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "internet-dns.sh",
        "internet-http.sh",
        "isp-addresses.sh",
        "isp-dns1.sh",
        "isp-dns2.sh",
        "kea-dhcp4.json",
        "kea-dhcp6.json",
        "kea-pd-route.sh",
        "radvd.conf",
    ]
    assert (tmp_path / "kea-pd-route.sh").stat().st_mode & 0o111
    assert (tmp_path / "radvd.conf").read_text() == configs.radvd(ADDR, "down0")


def test_kea_paths_are_the_nixos_modules(tmp_path):
    v4 = json.loads(nixos_isp.kea_dhcp4(ADDR))["Dhcp4"]
    assert v4["lease-database"]["name"] == "/var/lib/kea/dhcp4.leases"
    assert "control-socket" not in v4
    assert v4["interfaces-config"]["interfaces"] == ["down0"]
    assert v4["subnet4"][0]["subnet"] == ADDR.access_v4_subnet

    hook = Path("/store/kea-pd-route.sh")
    v6 = json.loads(nixos_isp.kea_dhcp6(ADDR, Path("/k/hooks"), hook))["Dhcp6"]
    assert v6["lease-database"]["name"] == "/var/lib/kea/dhcp6.leases"
    assert "data-directory" not in v6
    assert v6["hooks-libraries"] == [
        {
            "library": "/k/hooks/libdhcp_run_script.so",
            "parameters": {"name": str(hook), "sync": False},
        }
    ]
    pd = v6["subnet6"][0]["pd-pools"][0]
    assert f"{pd['prefix']}/{pd['prefix-len']}" == ADDR.pd_pool
    assert pd["delegated-len"] == ADDR.pd_delegated_len
    assert all(o["output_options"] == [{"output": "stdout"}] for o in v6["loggers"])


def test_pd_hook_gets_the_nix_path_and_a_writable_log():
    text = nixos_isp.pd_route_hook("/nix/store/x-iproute2/bin:/nix/store/y-coreutils/bin")
    assert "PATH=/nix/store/x-iproute2/bin:/nix/store/y-coreutils/bin\n" in text
    assert "/usr/sbin" not in text
    assert "LOG='/run/kea/kea-pd-route.log'" in text
    assert "DEV='down0'" in text


def test_addresses_put_internet_and_resolvers_on_the_isp():
    script = nixos_isp.addresses_script(ADDR)
    assert f"ip addr replace {ADDR.internet_v4}/32 dev lo" in script
    assert f"ip addr replace {ADDR.isp_access_v4}/25 dev down0" in script
    for v6 in ADDR.isp_dns_v6:
        assert f"ip addr replace {v6}/128 dev down0 nodad" in script
    assert f"unreachable {ADDR.pd_pool}" in script


def test_http_serves_the_lab_body():
    script = nixos_isp.http_script(ADDR, "/p/python3")
    assert "exec /p/python3 -m twisted" in script
    assert "router7 lab internet host" in script


def test_renumbered_isp_has_another_pool_and_fresh_leases(tmp_path):
    nixos_isp.render(tmp_path, Path("/k"), "/t/bin", "/p/python3", pd_pool="2001:db8:200::/40")
    v6 = json.loads((tmp_path / "kea-dhcp6.json").read_text())["Dhcp6"]
    pd = v6["subnet6"][0]["pd-pools"][0]
    assert (pd["prefix"], pd["prefix-len"]) == ("2001:db8:200::", 40)
    assert v6["lease-database"]["name"] == "/var/lib/kea/dhcp6-renumbered.leases"
    assert "unreachable 2001:db8:200::/40" in (tmp_path / "isp-addresses.sh").read_text()


def test_short_leases_are_the_scenarios(tmp_path):
    nixos_isp.main([str(tmp_path), "--kea-hooks=/k", "--path=/t", "--python=/p", "--short-leases"])
    v4 = json.loads((tmp_path / "kea-dhcp4.json").read_text())["Dhcp4"]
    v6 = json.loads((tmp_path / "kea-dhcp6.json").read_text())["Dhcp6"]
    assert v4["valid-lifetime"] == SHORT_LEASES["dhcp4_valid_lifetime"]
    assert v6["preferred-lifetime"] == SHORT_LEASES["dhcp6_preferred_lifetime"]
    assert v6["valid-lifetime"] == SHORT_LEASES["dhcp6_valid_lifetime"]
