"""failoverd's Prometheus metrics (in the service's registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class Metrics:
    def __init__(self, registry: CollectorRegistry):
        self.active = Gauge(
            "failover_active", "1 for the uplink that carries the default route", ["uplink"],
            registry=registry,
        )  # fmt: skip
        self.healthy = Gauge(
            "failover_uplink_up", "1 while the uplink passes its probes", ["uplink"],
            registry=registry,
        )  # fmt: skip
        self.transitions = Counter(
            "failover_transitions", "Changes of the active uplink", ["from_uplink", "to_uplink"],
            registry=registry,
        )  # fmt: skip
        self.rounds = Counter(
            "failover_probe_rounds", "Probe rounds through each uplink, by outcome",
            ["uplink", "result"], registry=registry,
        )  # fmt: skip
        self.flushed = Counter(
            "failover_conntrack_flushed", "Connections flushed from conntrack after a switch",
            registry=registry,
        )  # fmt: skip
