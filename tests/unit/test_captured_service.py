"""The service's wiring, on a MemoryReactor: listeners per port, a broken host key."""

from router7.captured import service as svc
from tests.helpers import netlink
from tests.helpers.service import listening, started

NET = {"lan0": ["192.168.42.1/24"], "uplink0": ["192.0.2.23/24"]}


def start(tmp_path, *flags):
    # Capture interfaces that do not exist: the sniffers just keep retrying.
    argv = [f"--perm={tmp_path}", f"--run-dir={tmp_path}/run", "--uplink=nosuch0", "--lan=nosuch1"]
    return started(svc.CapturedService, [*argv, *flags], netlink.state(NET))


def test_ssh_and_http_on_lan_addresses_only(tmp_path):
    service = start(tmp_path)
    assert listening(service.reactor) == [(5022, "192.168.42.1"), (5080, "192.168.42.1")]
    assert (tmp_path / "captured" / "ssh_host_ed25519_key").exists()
    assert [s.capturing for s in service.sniffers.sniffers] == [False, False]
    service.reload()
    service._stopping()
    assert service.listeners.listeners == {}


def test_a_broken_host_key_disables_only_ssh(tmp_path):
    (tmp_path / "captured").mkdir()
    (tmp_path / "captured" / "ssh_host_ed25519_key").write_bytes(b"garbage")
    service = start(tmp_path)
    assert listening(service.reactor) == [(5080, "192.168.42.1")]
    service._stopping()


def test_ports_can_be_turned_off(tmp_path):
    service = start(tmp_path, "--ssh-port=0", "--http-port=0")
    assert listening(service.reactor) == []
    service._stopping()


def test_ssh_is_loaded_at_the_first_connection(tmp_path):
    from twisted.conch.ssh.transport import SSHServerTransport

    service = start(tmp_path)
    factory = service.checker
    assert factory.rejected == 0 and factory._factory is None  # conch not built yet
    transport = factory.buildProtocol(("192.168.42.23", 40000))
    assert isinstance(transport, SSHServerTransport)
    assert factory.buildProtocol(("192.168.42.23", 40001)).factory is transport.factory
    factory.doStop()
    service._stopping()


def test_a_key_broken_after_start_refuses_the_connection_only(tmp_path):
    service = start(tmp_path)
    (tmp_path / "captured" / "ssh_host_ed25519_key").write_bytes(
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
    )
    assert service.checker.buildProtocol(("192.168.42.23", 40000)) is None
    service._stopping()
