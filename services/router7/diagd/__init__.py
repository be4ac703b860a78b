"""router7-diagd: a dependency tree of connectivity checks, served on the LAN (:7733)."""
