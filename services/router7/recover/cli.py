"""router7-recover: reinstall a router over its LAN port from this machine.

    router7-recover --interface eth0 [--image-dir build/image] [--backup FILE | --wipe]
                    [--serial URL] [--rebootor /dev/hidrawN] [--timeout SECONDS]

Exits 0 when the router reports it installed and reboots, 1 when it reports a
failure (a refusal included) or nothing arrives before the timeout, 2 on bad
arguments or setup.
"""

from __future__ import annotations

import argparse
import logging
import sys
from ipaddress import IPv4Address
from pathlib import Path

from router7.recover import progress as prog
from router7.recover.served import ImageError, Served
from router7.recover.server import HTTP_PORT, Ports, Servers, SetupError, interface_address

log = logging.getLogger("router7.recover")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="router7-recover", description=__doc__.split("\n\n")[0])
    p.add_argument("--interface", required=True, help="the laptop's NIC cabled to the router")
    p.add_argument("--image-dir", type=Path, default=Path("build/image"))
    what = p.add_mutually_exclusive_group()
    what.add_argument("--backup", type=Path, help="backup.tar.gz from router7-backupd to restore")
    what.add_argument(
        "--wipe", action="store_true", help="overwrite a disk holding a router7 /perm"
    )
    p.add_argument("--client-ip", type=IPv4Address, help="address for the router (default: next)")
    p.add_argument("--http-port", type=int, default=HTTP_PORT)
    p.add_argument("--timeout", type=float, default=1800, help="give up after SECONDS")
    p.add_argument("--serial", help="pyserial URL of the router's console, e.g. /dev/ttyUSB0")
    p.add_argument("--serial-log", type=Path, default=Path("router7-console.log"))
    p.add_argument(
        "--rebootor", help="reset the router through a Teensy rebootor: /dev/hidrawN or auto"
    )
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


class Printer:
    """Progress lines: a new line per stage, the bar redrawn in place on a tty."""

    def __init__(self, out=sys.stdout):
        self.out = out
        self.tty = out.isatty()
        self.last: tuple[str, int] | None = None

    def __call__(self, report: prog.Report) -> None:
        pct = int(report.done * 20 / report.total) if report.total else 0
        key = (report.stage, pct)
        if key == self.last:
            return  # the bar moves in 5% steps: no line per 4 MiB written
        previous, self.last = self.last, key
        line = prog.render(report)
        if self.tty and previous is not None and previous[0] == report.stage:
            self.out.write("\r" + line)  # the same stage: redraw its bar in place
        elif self.tty:
            self.out.write(("\n" if previous is not None else "") + line)
        else:
            self.out.write(line + "\n")
        self.out.flush()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(name)s: %(message)s")
    from twisted.internet import reactor

    try:
        address = interface_address(args.interface)
        served = Served(
            image_dir=args.image_dir,
            base_url=f"http://{address.ip}:{args.http_port}",
            backup=args.backup,
            wipe=args.wipe,
        )
        served.check()
    except (SetupError, ImageError) as e:
        print(f"router7-recover: {e}", file=sys.stderr)
        return 2

    state = prog.Progress()
    printer = Printer()

    def on_report(report: prog.Report) -> None:
        printer(report)
        state.add(report)
        if state.result is not None:
            # Let the router read our "ok" before the servers go away.
            reactor.callLater(1.0, reactor.stop)

    try:
        servers = Servers(
            args.interface, address, served, on_report, Ports(http=args.http_port), args.client_ip
        )
    except (OSError, SetupError) as e:
        print(f"router7-recover: cannot listen on {args.interface}: {e}", file=sys.stderr)
        return 2
    print(
        f"router7-recover: serving {args.image_dir} on {args.interface} ({address.ip}), "
        f"offering {servers.dhcp.offer.client} to PXE clients only; "
        + (f"backup {args.backup}" if args.backup else "wipe" if args.wipe else "no backup")
    )
    console = None
    if args.serial:
        from router7.recover.console import Console, ConsoleError

        console = Console(args.serial, args.serial_log)
        try:
            console.start()
        except ConsoleError as e:
            print(f"router7-recover: {e}", file=sys.stderr)
            return 2
        print(f"router7-recover: console {args.serial} logged to {args.serial_log}")
    if args.rebootor:
        from router7.recover.rebootor import RebootorError, reset

        try:
            reset(args.rebootor)
            print(f"router7-recover: reset the router through {args.rebootor}")
        except RebootorError as e:
            print(f"router7-recover: {e}", file=sys.stderr)
            return 2
    timed_out = []

    def give_up() -> None:
        timed_out.append(True)
        reactor.stop()

    timer = reactor.callLater(args.timeout, give_up)
    reactor.run()
    if timer.active():
        timer.cancel()
    if console is not None:
        console.stop()
    print()
    if state.result:
        took = state.reports[-1][0] - state.started
        print(f"router7-recover: the router is installed and reboots ({took:.0f}s)")
        return 0
    if timed_out:
        print(
            f"router7-recover: FAILED: no result after {args.timeout:.0f}s "
            f"(last stage: {state.stage})",
            file=sys.stderr,
        )
    else:
        print(f"router7-recover: FAILED: {state.failure}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
