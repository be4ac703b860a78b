"""Running a router7 Service's lifecycle on Twisted's MemoryReactorClock."""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock

from router7.runtime.netlink import NetState


def started(cls, argv: list[str], net: NetState | None = None, **kw):
    """``cls`` parsed from ``argv``, started as the runtime starts it (netlink view
    ``net`` instead of the kernel's); the reactor is ``service.reactor``."""
    args = cls.parser().parse_args(argv)
    service = cls(
        args, kw.pop("reactor", None) or MemoryReactorClock(), net=net or NetState(), **kw
    )
    service._started()
    return service


def listening(reactor) -> list[tuple[int, str]]:
    """(port, address) of every TCP listener a MemoryReactor holds open."""
    return sorted((port, interface) for port, _, _, interface in reactor.tcpServers)


def net_event(service, data: bytes) -> None:
    """Deliver netlink bytes to ``service`` as its NetlinkMonitor would."""
    changes = service.net.feed(data)
    if changes:
        service._net_changed(changes)
