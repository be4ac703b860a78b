"""Prometheus metrics of the DHCPv4 client (default registry; no listener of its own)."""

from prometheus_client import Counter, Enum, Gauge

from router7.dhcp4.client import State

PACKETS_RECEIVED = Counter(
    "dhcp4_packets_received",
    "DHCP messages received on the uplink, by message type",
    ["type"],
)
PACKETS_SENT = Counter(
    "dhcp4_packets_sent",
    "DHCP messages sent, by message type",
    ["type"],
)
PACKETS_DROPPED = Counter(
    "dhcp4_packets_dropped",
    "Packets to UDP port 68 that were dropped, by reason "
    "(malformed: truncated/options/...; not for us: xid/chaddr; unexpected in this state)",
    ["reason"],
)
SEND_ERRORS = Counter("dhcp4_send_errors", "Failed packet socket writes")
LEASES = Counter("dhcp4_leases", "ACKs accepted (new or renewed leases)")
LEASE_EXPIRIES = Counter("dhcp4_lease_expiries", "Leases that ran out without renewal")
LEASE_EXPIRY = Gauge(
    "dhcp4_lease_expiry_timestamp_seconds", "When the current lease expires (Unix time)"
)
LEASE_RENEW = Gauge(
    "dhcp4_lease_renew_timestamp_seconds",
    "When the current lease is renewed (T1, Unix time)",
)
STATE = Enum(
    "dhcp4_state",
    "The client's RFC 2131 state",
    states=[s.value for s in State],
)
