"""The service's wiring, on a MemoryReactor: listeners per port, a broken host key."""

import ipaddress

from twisted.internet.testing import MemoryReactorClock

from router7.captured import service as svc
from router7.runtime.mgmt import InterfaceAddress


def start(tmp_path, monkeypatch, *flags):
    # Interfaces that do not exist: the sniffers just keep retrying.
    args = svc.CapturedService.parser().parse_args(
        [f"--perm={tmp_path}", "--uplink=nosuch0", "--lan=nosuch1", *flags]
    )
    monkeypatch.setattr(
        svc,
        "kernel_addresses",
        lambda: [
            InterfaceAddress("lan0", ipaddress.ip_address("192.168.42.1")),
            InterfaceAddress("uplink0", ipaddress.ip_address("192.0.2.23")),
        ],
    )
    reactor = MemoryReactorClock()
    service = svc.CapturedService(args, reactor)
    service.start()
    return service, reactor


def listening(reactor):
    return sorted((port, interface) for port, _, _, interface in reactor.tcpServers)


def test_ssh_and_http_on_lan_addresses_only(tmp_path, monkeypatch):
    service, reactor = start(tmp_path, monkeypatch)
    assert listening(reactor) == [(5022, "192.168.42.1"), (5080, "192.168.42.1")]
    assert (tmp_path / "captured" / "ssh_host_ed25519_key").exists()
    assert [s.capturing for s in service.sniffers.sniffers] == [False, False]
    service.reload()
    service.stop()


def test_a_broken_host_key_disables_only_ssh(tmp_path, monkeypatch):
    (tmp_path / "captured").mkdir()
    (tmp_path / "captured" / "ssh_host_ed25519_key").write_bytes(b"garbage")
    service, reactor = start(tmp_path, monkeypatch)
    assert listening(reactor) == [(5080, "192.168.42.1")]
    service.stop()


def test_ports_can_be_turned_off(tmp_path, monkeypatch):
    _, reactor = start(tmp_path, monkeypatch, "--ssh-port=0", "--http-port=0")
    assert listening(reactor) == []
