"""dnsd's Prometheus metrics, in a registry of its own (served on :8053/metrics).

The counters touched on every query are plain integers exported by a collector
at scrape time: a prometheus_client Counter takes a lock and checks its labels
on each inc(), ~3 µs, which is a tenth of a cache hit.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector


class Count:
    """A counter for the hot path: an int and nothing else (the reactor is single-threaded)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


# attribute, metric name (without _total), help, label pair or None
_HOT = [
    ("udp", "dnsd_queries", "DNS queries received", ("transport", "udp")),
    ("tcp", "dnsd_queries", "DNS queries received", ("transport", "tcp")),
    ("local", "dnsd_local_answers", "queries answered from local names", None),
    ("cache_hits", "dnsd_cache_hits", "queries answered from the cache", None),
    ("cache_misses", "dnsd_cache_misses", "queries that needed an upstream", None),
    ("refused", "dnsd_refused", "queries refused: source not on the LAN", None),
    ("malformed", "dnsd_malformed", "malformed queries dropped or answered FORMERR/NOTIMP", None),
    ("truncated", "dnsd_truncated", "UDP answers truncated to the client's limit", None),
    ("servfail", "dnsd_servfail", "queries no upstream could answer", None),
    (
        "shed",
        "dnsd_shed",
        "queries answered SERVFAIL at once: too many upstream queries in flight",
        None,
    ),
    ("upstream_refused", "dnsd_upstream_refused", "REFUSED answers from upstreams", None),
    (
        "deduplicated",
        "dnsd_inflight_joins",
        "queries that joined an identical query in flight",
        None,
    ),
    (
        "upstream_tcp",
        "dnsd_upstream_tcp_retries",
        "truncated upstream answers retried over TCP",
        None,
    ),
]


class _HotCollector(Collector):
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self):
        families: dict[str, CounterMetricFamily] = {}
        for attr, name, help_text, label in _HOT:
            if name not in families:
                families[name] = CounterMetricFamily(
                    name, help_text, labels=[label[0]] if label else None
                )
            value = getattr(self.metrics, attr).value
            families[name].add_metric([label[1]] if label else [], value)
        yield from families.values()


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        for attr, *_ in _HOT:
            setattr(self, attr, Count())
        r.register(_HotCollector(self))
        self.upstream_answers = Counter(
            "dnsd_upstream_answers", "answers received from an upstream", ["upstream"], registry=r
        )
        self.upstream_failures = Counter(
            "dnsd_upstream_failures",
            "upstream attempts that failed",
            ["upstream", "reason"],
            registry=r,
        )
        self.cache_entries = Gauge("dnsd_cache_entries", "answers in the cache", registry=r)
        self.inflight = Gauge(
            "dnsd_inflight", "distinct questions waiting for an upstream", registry=r
        )
        self.upstream_srtt = Gauge(
            "dnsd_upstream_srtt_seconds",
            "smoothed round-trip time per upstream",
            ["upstream"],
            registry=r,
        )
