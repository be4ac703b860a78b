"""Prometheus metrics of the DHCPv6 client (default registry, scraped via --metrics-port)."""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge

STATES = ["init", "solicit", "request", "bound", "renew", "rebind", "release", "stopped"]

received = Counter(
    "dhcp6_packets_received", "DHCPv6 messages received and decoded, by message type", ["type"]
)
sent = Counter("dhcp6_packets_sent", "DHCPv6 messages sent, by message type", ["type"])
dropped = Counter(
    "dhcp6_packets_dropped",
    "DHCPv6 datagrams ignored, by reason (malformed, wrong TID, ...)",
    ["reason"],
)
send_errors = Counter("dhcp6_send_errors", "sendto() failures on the uplink socket")
state = Enum("dhcp6_state", "state of the DHCPv6 client", states=STATES)
prefix_valid_until = Gauge(
    "dhcp6_prefix_valid_until_seconds",
    "Unix time at which the delegated prefix's valid lifetime ends (0: no prefix)",
)
