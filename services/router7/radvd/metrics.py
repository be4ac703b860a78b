"""radvd's Prometheus metrics (default registry, served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RAS_SENT = Counter(
    "radvd_router_advertisements_sent", "Router advertisements sent", ["destination"]
)
RS_RECEIVED = Counter("radvd_router_solicitations_received", "Router solicitations received")
RS_DROPPED = Counter(
    "radvd_router_solicitations_dropped",
    "Router solicitations dropped: malformed (RFC 4861 §6.1.1) or over the rate limit",
    ["reason"],
)
SEND_ERRORS = Counter("radvd_send_errors", "Router advertisements the kernel refused to send")
ROUTER_LIFETIME = Gauge(
    "radvd_router_lifetime_seconds", "Router lifetime in the last RA (0: not a default router)"
)
PREFIX_PREFERRED = Gauge(
    "radvd_prefix_preferred_lifetime_seconds",
    "Preferred lifetime of each prefix in the last RA (0: deprecated, RFC 9096)",
    ["prefix"],
)
PREFIX_VALID = Gauge(
    "radvd_prefix_valid_lifetime_seconds",
    "Valid lifetime of each prefix in the last RA",
    ["prefix"],
)


def record_advert(advert) -> None:
    ROUTER_LIFETIME.set(advert.router_lifetime)
    PREFIX_PREFERRED.clear()
    PREFIX_VALID.clear()
    for p in advert.prefixes:
        PREFIX_PREFERRED.labels(str(p.prefix)).set(p.preferred)
        PREFIX_VALID.labels(str(p.prefix)).set(p.valid)
