"""The Service base class without processes: flags and the runtime's /metrics listener."""

from twisted.internet.testing import MemoryReactor

from router7.runtime.service import Service


class WithRuntimeMetrics(Service):
    name = "withmetrics"
    metrics_port = 18069


class WithOwnMetrics(Service):
    """Like netconfigd: its own --metrics-port flag and its own registry."""

    name = "ownmetrics"

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--metrics-port", type=int, default=18066)


def started(cls, *argv):
    svc = cls(cls.parser().parse_args(["--perm", "/nonexistent", *argv]), MemoryReactor())
    svc._started()
    return svc


def test_runtime_serves_metrics_for_services_that_ask():
    svc = started(WithRuntimeMetrics)
    assert svc._metrics is not None
    ports = {port for port, *_ in svc.reactor.tcpServers}
    assert ports == {18069}  # one listener per private address, all on the port
    assert started(WithRuntimeMetrics, "--metrics-port", "0")._metrics is None


def test_runtime_leaves_a_service_own_metrics_flag_alone():
    svc = started(WithOwnMetrics)
    assert svc._metrics is None
    assert svc.reactor.tcpServers == []
