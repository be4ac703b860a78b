"""netconfigd's config loading: router7's schemas, missing files, and last-good fallback."""

import ipaddress
import json
import logging

import pytest

from router7.netconfigd.config import (
    ConfigStore,
    Forwarding,
    Interfaces,
    parse_dhcp4_lease,
    parse_dhcp6_lease,
    parse_forwardings,
    parse_interfaces,
    parse_wireguard,
)
from router7.runtime.statefile import StateFileError

# The interfaces.json of router7's integration test (reference §12.2), verbatim schema.
ROUTER7_INTERFACES = {
    "interfaces": [
        {"hardware_addr": "02:73:53:00:ca:fe", "name": "uplink0"},
        {
            "hardware_addr": "02:73:53:00:b0:0c",
            "spoof_hardware_addr": "02:73:53:00:b0:aa",
            "name": "lan0",
            "addr": "192.168.42.1/24",
            "mtu": 1492,
        },
        {
            "name": "wg0",
            "addr": "fe80::1/64",
            "extra_addrs": ["10.22.100.1/24"],
            "extra_routes": [{"destination": "2a02:168:4a00:22::/64", "gateway": "fe80::2"}],
        },
    ],
    "bridges": [{"name": "br0", "interface_hardware_addrs": ["02:73:53:00:b0:0c"]}],
}


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))


def test_router7_interfaces_json_parses():
    i = parse_interfaces(ROUTER7_INTERFACES, "interfaces.json")
    lan = i.by_name("lan0")
    assert lan.hardware_addr == "02:73:53:00:b0:0c"
    assert lan.spoof_hardware_addr == "02:73:53:00:b0:aa"
    assert lan.addr == ipaddress.ip_interface("192.168.42.1/24")
    assert lan.mtu == 1492
    wg = i.by_name("wg0")
    assert wg.hardware_addr is None
    assert wg.extra_addrs == (ipaddress.ip_interface("10.22.100.1/24"),)
    assert wg.extra_routes[0].gateway == ipaddress.ip_address("fe80::2")
    assert i.bridges[0].interface_hardware_addrs == ("02:73:53:00:b0:0c",)


def test_go_omitempty_values_mean_unset():
    i = parse_interfaces(
        {"interfaces": [{"name": "lan0", "addr": "", "hardware_addr": "", "mtu": 0}]}, "x"
    )
    assert i.by_name("lan0").addr is None and i.by_name("lan0").hardware_addr is None


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"interfaces": [{"name": "lan0", "addr": "192.168.42.1"}]}, "interfaces[0].addr"),
        ({"interfaces": [{"name": "lan0", "addr": "nonsense/24"}]}, "interfaces[0].addr"),
        ({"interfaces": [{"name": "lan 0"}]}, "interfaces[0].name"),
        (
            {"interfaces": [{"name": "lan0", "hardware_addr": "02:00"}]},
            "interfaces[0].hardware_addr",
        ),
        ({"interfaces": [{"name": "lan0", "mtu": 20}]}, "interfaces[0].mtu"),
        ({"interfaces": [{"name": "lan0"}, {"name": "lan0"}]}, "interfaces[1].name"),
    ],
)
def test_bad_interfaces_name_the_field(obj, field):
    with pytest.raises(StateFileError) as e:
        parse_interfaces(obj, "/perm/interfaces.json")
    assert e.value.field == field
    assert e.value.path == "/perm/interfaces.json"


def test_forwardings_router7_syntax():
    f = parse_forwardings(
        {
            "forwardings": [
                {"proto": "tcp", "port": "8080", "dest_addr": "192.168.42.23", "dest_port": "9999"},
                {
                    "proto": "",
                    "port": "8040-8060",
                    "dest_addr": "192.168.42.22",
                    "dest_port": "8040-8060",
                },
                {"proto": "tcp,udp", "port": "53", "dest_addr": "192.168.42.99", "dest_port": "53"},
            ]
        },
        "x",
    )
    assert f[0] == Forwarding(
        ("tcp",), (8080, 8080), ipaddress.ip_address("192.168.42.23"), (9999, 9999)
    )
    assert f[1].protos == ("tcp",)  # router7: empty means tcp
    assert f[1].port == (8040, 8060)
    assert f[2].protos == ("tcp", "udp")


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"proto": "icmp", "port": "1", "dest_addr": "192.168.42.2"}, "forwardings[0].proto"),
        ({"port": "70000", "dest_addr": "192.168.42.2"}, "forwardings[0].port"),
        ({"port": "90-80", "dest_addr": "192.168.42.2"}, "forwardings[0].port"),
        ({"port": "80", "dest_addr": "192.168.42"}, "forwardings[0].dest_addr"),
        (
            {"port": "80-90", "dest_addr": "192.168.42.2", "dest_port": "80-85"},
            "forwardings[0].dest_port",
        ),
        (
            {"port": "22", "dest_addr": "2001:db8::5", "dest_port": "2222"},
            "forwardings[0].dest_port",
        ),
        ({"dest_addr": "192.168.42.2"}, "forwardings[0].port"),
    ],
)
def test_bad_forwardings_name_the_field(entry, field):
    with pytest.raises(StateFileError) as e:
        parse_forwardings({"forwardings": [entry]}, "/perm/portforwardings.json")
    assert e.value.field == field


def test_wireguard_json():
    key = "YNqHwpcAmVj0lVzPSt3oUnL7cRPKB/geVU+X5ytKLjI="
    w = parse_wireguard(
        {
            "interfaces": [
                {
                    "name": "wg0",
                    "private_key": key,
                    "port": 51820,
                    "peers": [
                        {
                            "public_key": key,
                            "endpoint": "[::1]:12345",
                            "allowed_ips": ["fe80::/64", "10.0.137.0/24"],
                        }
                    ],
                }
            ]
        },
        "x",
    )
    assert w[0].port == 51820
    assert w[0].peers[0].allowed_ips[1] == ipaddress.ip_network("10.0.137.0/24")
    with pytest.raises(StateFileError) as e:
        parse_wireguard({"interfaces": [{"name": "wg0", "private_key": "short"}]}, "x")
    assert e.value.field == "interfaces[0].private_key"


def test_dhcp4_lease_both_formats():
    router7 = parse_dhcp4_lease(
        {
            "valid_until": "2018-05-18T23:46:04.429895261+02:00",
            "client_ip": "85.195.207.62",
            "subnet_mask": "255.255.255.128",
            "router": "85.195.207.1",
            "dns": [],
        },
        "x",
    )
    ours = parse_dhcp4_lease(
        {"address": "85.195.207.62/25", "router": "85.195.207.1", "dns": []}, "x"
    )
    assert router7 == ours
    assert ours.address == ipaddress.ip_interface("85.195.207.62/25")
    with pytest.raises(StateFileError) as e:
        parse_dhcp4_lease({"client_ip": "85.195.207.62", "router": "85.195.207.1"}, "x")
    assert e.value.field == "subnet_mask"  # router7: "a missing subnet mask is an error"


def test_dhcp6_lease_both_formats():
    router7 = parse_dhcp6_lease(
        {
            "valid_until": "2018-05-18T23:46:04.429895261+02:00",
            "prefixes": [{"IP": "2a02:168:4a00::", "Mask": "////////AAAAAAAAAAAAAA=="}],
            "dns": [],
        },
        "x",
    )
    ours = parse_dhcp6_lease(
        {
            "prefixes": [{"prefix": "2a02:168:4a00::/48", "valid_lifetime": 3600}],
            "addresses": [{"address": "2001:db8:1::1000"}],
        },
        "x",
    )
    assert router7.prefixes == ours.prefixes == (ipaddress.ip_network("2a02:168:4a00::/48"),)
    assert ours.addresses == (ipaddress.ip_address("2001:db8:1::1000"),)
    with pytest.raises(StateFileError) as e:
        parse_dhcp6_lease({"prefixes": [{"prefix": "10.0.0.0/8"}]}, "x")
    assert e.value.field == "prefixes[0].prefix"


def test_missing_files_are_fine(tmp_path):
    inputs, errors = ConfigStore(tmp_path).load()
    assert errors == []
    assert inputs.interfaces == Interfaces()
    assert inputs.forwardings == () and inputs.dhcp4 is None and inputs.dhcp6 is None


def test_bad_file_keeps_the_last_good_version(tmp_path, caplog):
    pf = tmp_path / "perm" / "portforwardings.json"
    write(pf, {"forwardings": [{"port": "8080", "dest_addr": "192.168.42.23", "dest_port": "80"}]})
    store = ConfigStore(tmp_path / "perm")
    good, errors = store.load()
    assert errors == [] and len(good.forwardings) == 1

    write(pf, {"forwardings": [{"port": "8080", "dest_addr": "192.168.42.300"}]})
    with caplog.at_level(logging.ERROR):
        inputs, errors = store.load()
    assert inputs.forwardings == good.forwardings
    assert [(e.path, e.field) for e in errors] == [(str(pf), "forwardings[0].dest_addr")]
    assert str(pf) in caplog.text and "forwardings[0].dest_addr" in caplog.text
    assert "last good" in caplog.text

    write(pf, "{not json")
    inputs, errors = store.load()
    assert inputs.forwardings == good.forwardings and errors[0].field is None

    # Other files are unaffected by one bad file.
    write(tmp_path / "perm" / "interfaces.json", ROUTER7_INTERFACES)
    inputs, _ = store.load()
    assert inputs.interfaces.by_name("lan0") is not None


def test_last_good_survives_a_restart_through_the_cache(tmp_path):
    pf = tmp_path / "perm" / "portforwardings.json"
    write(pf, {"forwardings": [{"port": "8080", "dest_addr": "192.168.42.23"}]})
    cache = tmp_path / "run" / "last-good"
    good, _ = ConfigStore(tmp_path / "perm", cache).load()
    write(pf, {"forwardings": "oops"})
    inputs, errors = ConfigStore(tmp_path / "perm", cache).load()  # a new process
    assert errors[0].field == "forwardings"
    assert inputs.forwardings == good.forwardings


def test_bad_file_without_any_good_version_counts_as_absent(tmp_path):
    write(tmp_path / "dhcp4" / "wire" / "lease.json", {"address": "garbage"})
    inputs, errors = ConfigStore(tmp_path).load()
    assert inputs.dhcp4 is None and errors[0].field == "address"


def test_interfaces_reader_keeps_the_last_good_version(tmp_path):
    """Issue 16, case 7: dnsd reads interfaces.json through this, never raising."""
    from router7.netconfigd.config import InterfacesReader

    perm, run_dir = tmp_path / "perm", tmp_path / "run"
    perm.mkdir()
    path = perm / "interfaces.json"
    reader = InterfacesReader(perm, run_dir)
    assert reader.read().by_name("lan0") is None  # absent: no interfaces
    path.write_text('{"interfaces": [{"name": "lan0", "addr": "192.168.42.1/24"}]}')
    assert str(reader.read().by_name("lan0").addr) == "192.168.42.1/24"
    for bad in ('{"interfaces": [{"name": "lan0", "addr": 42}]}', '{"interfaces": 5}', "{"):
        path.write_text(bad)
        assert str(reader.read().by_name("lan0").addr) == "192.168.42.1/24"
    # A fresh process with a bad file uses netconfigd's cached copy, else nothing.
    assert InterfacesReader(perm, run_dir).read().by_name("lan0") is None
    (run_dir / "netconfigd-last-good").mkdir(parents=True)
    (run_dir / "netconfigd-last-good/interfaces.json").write_text(
        '{"interfaces": [{"name": "lan0", "addr": "10.0.0.1/24"}]}'
    )
    assert str(InterfacesReader(perm, run_dir).read().by_name("lan0").addr) == "10.0.0.1/24"
