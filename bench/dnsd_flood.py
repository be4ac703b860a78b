#!/usr/bin/env python3
"""router7-dnsd under a flood of questions its upstreams never answer (issue 16, case 1).

Not a test: it prints the figures the hostile-LAN integration test bounds. A LAN
host sends COUNT distinct questions about ``slow.test`` (the upstream dnsmasqs
forward that zone to an address nobody holds) at RATE per second, while this
script asks for a cached name and a local name every 0.2 s and samples dnsd's
descriptors and RSS. Same namespaces as tests/integration/test_dnsd.py.

    sudo .venv/bin/python bench/dnsd_flood.py [--count 40000] [--rate 4000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import dnsflood  # noqa: E402
from tests.integration.test_dnsd import (
    MIDNA,
    ROUTER_LAN,
    UP1,
    UP2,
    Topology,
    write_perm,
)  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=40000)
    ap.add_argument("--rate", type=float, default=4000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dnsd-flood-"))
    topo = Topology(tmp).up()
    try:
        for up in (UP1, UP2):
            topo.start_upstream(up, "--server=/slow.test/198.51.100.99")
        perm = write_perm(tmp / "perm", [MIDNA])
        topo.start_dnsd(perm)
        topo.dig(topo.client, ROUTER_LAN, "www.example.test", "+short")  # now cached
        pid = topo.procs["dnsd"].pid

        def probe():
            out = topo.dig(topo.client, ROUTER_LAN, "www.example.test", "+short", timeout=10)
            return out == "203.0.113.10"

        fig = dnsflood.flood(
            topo.client, ROUTER_LAN, pid, args.count, args.rate, "slow.test", probe
        )
        time.sleep(5)  # the last questions' 4 s budget ends
        settled = dnsflood.rss_mib(pid)
        m = topo.metrics()
        answered = [s for s in fig.answer_seconds if s != float("inf")]
        print(f"dnsd flood: {args.count} distinct slow questions at {args.rate:.0f}/s")
        print(f"  descriptors: max {fig.max_descriptors}")
        print(
            f"  RSS MiB: before {fig.rss_before:.1f}, max {fig.max_rss:.1f}, "
            f"end of flood {fig.rss_after:.1f}, 5 s later {settled:.1f}"
        )
        if answered:
            print(
                f"  cached name during the flood: {fig.probes_answered}/{len(fig.answer_seconds)} "
                f"answered, median {sorted(answered)[len(answered) // 2] * 1000:.0f} ms, "
                f"worst {max(answered) * 1000:.0f} ms (dig included)"
            )
        print(f"  shed (SERVFAIL at once): {m.get('dnsd_shed_total', 0):.0f}")
    finally:
        topo.down()


if __name__ == "__main__":
    main()
