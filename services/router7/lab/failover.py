"""Failover drills in the lab (Lab(isp2=True)): break the primary ISP, watch a LAN
host's traffic move to the backup, restore it, watch it come back.

Shared by the integration test (tests/integration/test_failover.py) and the
benchmark (bench/failover.py): ``Stopwatch`` runs pathprobe's echo on the internet
host and its sender on a LAN host; ``break_primary``/``restore_primary`` make the
two failures of the issue: ``link`` (the access link loses carrier) and
``silent`` (the ISP stops forwarding while its link and its router stay up).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from router7.lab import pathprobe
from router7.lab.addresses import ISP2_ADDR
from router7.lab.netns import LabError, ip

HOW = ("link", "silent")
PRIMARY_V4 = "192.0.2."  # the router's NAT address on uplink0 (ADDR.access_v4_subnet)
BACKUP_V4 = ISP2_ADDR.access_v4_subnet.split("0/")[0]  # "100.64.0."


def break_primary(lab, how: str) -> None:
    if how == "link":
        ip(lab.ns("isp"), "link", "set", "down0", "down")
    elif how == "silent":
        lab.set_forwarding("isp", False)
    else:
        raise LabError(f"unknown failure {how!r}: one of {', '.join(HOW)}")


def restore_primary(lab, how: str) -> None:
    if how == "link":
        ip(lab.ns("isp"), "link", "set", "down0", "up")
    else:
        lab.set_forwarding("isp", True)


class Stopwatch:
    """pathprobe's echo on the internet host and a sender on ``node`` to ``target``."""

    def __init__(self, lab, node: str = "lan1", target: str | None = None, interval=0.05):
        self.lab = lab
        self.node = node
        self.target = target or lab.addr.internet_v4
        self.interval = interval
        self.server: subprocess.Popen | None = None
        self.sender: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.v6: Stopwatch | None = None  # a second sender, to the IPv6 target

    def start_server(self) -> None:
        a = self.lab.addr
        self.server = self.lab.popen(
            "internet", sys.executable, "-m", "router7.lab.pathprobe", "serve",
            "--bind", a.internet_v4, "--bind", a.internet_v6,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        if self.server.stdout.readline().strip() != "serving":
            raise LabError("pathprobe serve did not start")

    def start(self, duration: float = 600) -> None:
        self.lines = []
        self.sender = self.lab.popen(
            self.node, sys.executable, "-m", "router7.lab.pathprobe", "send",
            "--to", self.target, "--interval", str(self.interval), "--duration", str(duration),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
        )  # fmt: skip

        def read():
            for line in self.sender.stdout:
                self.lines.append(line)

        threading.Thread(target=read, daemon=True).start()

    def records(self) -> list[dict]:
        return pathprobe.parse(list(self.lines))

    def latest_via(self) -> str | None:
        r = self.records()
        return r[-1]["via"] if r else None

    def now(self) -> float:
        return time.monotonic()

    def stop(self) -> None:
        for p in (self.sender, self.server):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        self.sender = self.server = None
