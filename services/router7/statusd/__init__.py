"""router7-statusd: the LAN-side status page (services, leases, diagnostics, tools)."""
