"""Prometheus metrics: router7's nftables counters plus netconfigd's own.

router7 reset the kernel counters on every scrape and summed the deltas in the
process. We read them without resetting instead: the ruleset rebuild carries
their values over (firewall.transaction), so they are monotonic on their own,
a second scraper does not steal increments, and `nft list counters` shows the
same numbers as /metrics.

Packets that take the flowtable fast path skip the forward hook, so
``nftables_filter_forward_*`` counts only the first packets of such flows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import Metric

from router7.netconfigd import firewall

log = logging.getLogger(__name__)

_HOOK_METRIC = {"fwded": "forward", "inputc": "input", "outputc": "output"}


class NftCounterCollector:
    """Exports nftables_filter_{forward,input,output}_{packets,bytes}{family=...}."""

    def __init__(self, read: Callable[[], dict[tuple[str, str, str], tuple[int, int]]]):
        self.read = read

    def collect(self):
        try:
            values = self.read()
        except Exception as e:  # noqa: BLE001 - a scrape must not fail because nft did
            log.warning("cannot read nftables counters: %s", e)
            values = {}
        by_name = {name: pb for (_, _, name), pb in values.items()}
        for hook, metric in _HOOK_METRIC.items():
            for i, unit in enumerate(("packets", "bytes")):
                # The names router7's Grafana dashboard (id 8288) queries. prometheus_client
                # insists on a _total suffix for the counter type, so these are exported
                # untyped (rate() does not care; the values are monotonic).
                name = f"nftables_filter_{metric}_{unit}"
                m = Metric(name, f"{unit} seen by router7's {metric} hook (a counter)", "unknown")
                for family in firewall.FAMILIES:
                    pb = by_name.get(f"{hook}_{family}")
                    if pb is not None:
                        m.add_sample(name, {"family": family}, pb[i])
                yield m


class Metrics:
    def __init__(
        self, read_counters: Callable[[], dict], registry: CollectorRegistry | None = None
    ):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(NftCounterCollector(read_counters))
        self.applies = Counter("netconfigd_applies", "apply runs", registry=self.registry)
        self.apply_errors = Counter(
            "netconfigd_apply_errors", "apply steps that failed", registry=self.registry
        )
        self.config_errors = Counter(
            "netconfigd_config_errors",
            "malformed input files seen (last good kept)",
            registry=self.registry,
        )
