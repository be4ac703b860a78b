"""Prometheus metrics of the DHCPv6 client (default registry, scraped via --metrics-port).

The client core reports events to its edge; ``MetricsListener`` is the part of the
edge that counts them (the service extends it with the sockets and the lease file).
"""

from __future__ import annotations

from prometheus_client import Counter, Enum, Gauge

from router7.dhcp6 import wire
from router7.dhcp6.client import Listener, State, Transmit
from router7.dhcp6.lease import Lease
from router7.dhcp6.wire import Message

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


class MetricsListener(Listener):
    """Counts the core's events. Subclasses do the sending and call ``count_sent`` on success."""

    def count_sent(self, tx: Transmit) -> None:
        sent.labels(wire.MESSAGE_NAMES[tx.msg_type]).inc()

    def lease_changed(self, lease: Lease) -> None:
        valid = [h.valid_until.timestamp() for h in lease.prefixes if h.known]
        prefix_valid_until.set(max(valid, default=0))

    def state_changed(self, new: State) -> None:
        state.state(new.value)

    def received(self, msg: Message) -> None:
        received.labels(msg.type_name).inc()

    def dropped(self, reason: str, detail: str) -> None:
        dropped.labels(reason).inc()
