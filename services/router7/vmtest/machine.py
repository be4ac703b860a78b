"""Machines with the NixOS test-driver API (nixos/lib/test-driver, machine/__init__.py).

Same method names, signatures, defaults, return values and exceptions, so a
scenario in vm-tests/ runs unchanged here and under `runNixOSTest`:
`execute` returns (status, stdout) and runs under `set -euo pipefail`;
`succeed`/`fail` raise RequestedAssertionFailed; `wait_until_*` retry every
second and raise after `timeout` (default 900 s). Our messages say more than
NixOS's: machine, command, exit code, stdout and stderr, because a scenario
that fails in CI must be understood from its log alone.

`VmMachine` is the image in qemu (commands through the test shell, monitor
through QMP); `NamespaceMachine` is one of the lab's namespaces, where
`systemctl` on the ISP's daemons maps to the lab's peers.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from router7.vmtest import qemu
from router7.vmtest.logger import Logger
from router7.vmtest.qmp import QMP, QMPError
from router7.vmtest.shell import ShellClosed, ShellTimeout, TestShell

BOOT_TIMEOUT = 600  # TCG on a shared 2-core machine: generous


class MachineError(Exception):
    """The machine could not do what was asked (not a failed assertion)."""


class RequestedAssertionFailed(AssertionError):
    """A check in the scenario failed (NixOS: test_driver.errors)."""


def retry(fn: Callable[[bool], bool], timeout_seconds: int = 900) -> None:
    """Call fn(last_try) every second until it returns True; raise on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_seconds:
        if fn(False):
            return
        time.sleep(1)
    elapsed = time.monotonic() - start
    if not fn(True):
        raise RequestedAssertionFailed(
            f"action timed out after {elapsed:.2f} seconds (timeout={timeout_seconds})"
        )


def _retry(machine: str, what: str, fn: Callable[[bool], bool], timeout: int) -> None:
    """retry(), with the machine and what it waited for in the failure."""
    try:
        retry(fn, timeout)
    except RequestedAssertionFailed as e:
        raise RequestedAssertionFailed(f"{machine}: {what}: {e}") from None


def make_command(args: list) -> str:
    return " ".join(map(shlex.quote, map(str, args)))


def _clip(text: str, limit: int = 4000) -> str:
    text = text.rstrip()
    return text if len(text) <= limit else "…" + text[-limit:]


class BaseMachine:
    """What every node offers; subclasses provide _run, start, shutdown, ..."""

    def __init__(self, name: str, out_dir: Path, logger: Logger) -> None:
        self.name = name
        self.out_dir = out_dir
        self.logger = logger
        self.last_stderr = ""

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} '{self.name}'>"

    def log(self, msg: str) -> None:
        self.logger.log(msg, self.name)

    # ---- running commands ----------------------------------------------

    def _run(self, command: str, timeout: int | None) -> tuple[int, str, str]:
        raise NotImplementedError

    def is_up(self) -> bool:
        raise NotImplementedError

    def start(self, allow_reboot: bool = False) -> None:
        raise NotImplementedError

    def execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: int | None = 900,
    ) -> tuple[int, str]:
        """Run a shell command (`set -euo pipefail`); return (status, stdout).

        Like NixOS: check_return=False returns -1 as the status, check_output=False
        does not wait at all and returns (-2, ""). A guest-side `timeout` ends the
        command after `timeout` seconds (status 124).
        """
        if not check_output:
            self._send_nowait(command)
            return (-2, "")
        status, out, err = self._run(command, timeout)
        self.last_stderr = err
        self.logger.command(self.name, command, status, out, err)
        return (-1 if not check_return else status, out)

    def _send_nowait(self, command: str) -> None:
        raise NotImplementedError

    def _failure(self, what: str, command: str, status: int, out: str) -> RequestedAssertionFailed:
        return RequestedAssertionFailed(
            f"{self.name}: command `{command}` {what} (exit code {status})\n"
            f"--- stdout ---\n{_clip(out) or '(empty)'}\n"
            f"--- stderr ---\n{_clip(self.last_stderr) or '(empty)'}"
        )

    def succeed(self, *commands: str, timeout: int | None = None) -> str:
        """Run each command; raise if one exits non-zero; return their stdout."""
        output = ""
        for command in commands:
            with self.logger.nested(f"must succeed: {command}", self.name):
                status, out = self.execute(command, timeout=timeout)
                if status != 0:
                    raise self._failure("failed", command, status, out)
                output += out
        return output

    def fail(self, *commands: str, timeout: int | None = None) -> str:
        """Like succeed, but each command must exit non-zero."""
        output = ""
        for command in commands:
            with self.logger.nested(f"must fail: {command}", self.name):
                status, out = self.execute(command, timeout=timeout)
                if status == 0:
                    raise self._failure("unexpectedly succeeded", command, status, out)
                output += out
        return output

    def wait_until_succeeds(self, command: str, timeout: int = 900) -> str:
        return self._wait_until(command, timeout, succeed=True)

    def wait_until_fails(self, command: str, timeout: int = 900) -> str:
        return self._wait_until(command, timeout, succeed=False)

    def _wait_until(self, command: str, timeout: int, *, succeed: bool) -> str:
        """Run ``command`` until it succeeds (or fails); its last output."""
        output = ""
        status = -1 if succeed else 0
        word = "succeed" if succeed else "fail"

        def check(last_try: bool) -> bool:
            nonlocal output, status
            status, output = self.execute(command, timeout=timeout)
            return (status == 0) == succeed

        with self.logger.nested(
            f"waiting for {'success' if succeed else 'failure'}: {command}", self.name
        ):
            try:
                retry(check, timeout)
            except RequestedAssertionFailed as e:
                raise self._failure(
                    f"did not {word} in {timeout}s: {e}", command, status, output
                ) from None
            return output

    def sleep(self, secs: int) -> None:
        self.succeed(f"sleep {secs}")

    def wait_for_file(self, filename: str, timeout: int = 900) -> None:
        with self.logger.nested(f"waiting for file '{filename}'", self.name):
            _retry(
                self.name,
                f"waiting for file {filename}",
                lambda _l: self.execute(f"test -e {filename}")[0] == 0,
                timeout,
            )

    def _port_open(self, port: int, addr: str) -> bool:
        # bash's /dev/tcp: the image has no netcat.
        probe = f"timeout 2 bash -c {shlex.quote(f'exec 3<>/dev/tcp/{addr}/{port}')}"
        return self.execute(probe)[0] == 0

    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        with self.logger.nested(f"waiting for TCP port {port} on {addr}", self.name):
            _retry(
                self.name,
                f"waiting for TCP port {port} on {addr}",
                lambda _l: self._port_open(port, addr),
                timeout,
            )

    def wait_for_closed_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        with self.logger.nested(f"waiting for TCP port {port} on {addr} to be closed", self.name):
            _retry(
                self.name,
                f"waiting for TCP port {port} on {addr} to close",
                lambda _l: not self._port_open(port, addr),
                timeout,
            )

    # ---- systemd -------------------------------------------------------

    def systemctl(self, q: str, user: str | None = None) -> tuple[int, str]:
        if user is not None:
            q = q.replace("'", "\\'")
            return self.execute(
                f"su -l {user} --shell /bin/sh -c "
                "$'XDG_RUNTIME_DIR=/run/user/`id -u` "
                f"systemctl --user {q}'"
            )
        return self.execute(f"systemctl {q}")

    def get_unit_info(self, unit: str, user: str | None = None) -> dict[str, str]:
        status, lines = self.systemctl(f'--no-pager show "{unit}"', user)
        if status != 0:
            raise RequestedAssertionFailed(
                f'{self.name}: retrieving systemctl info for unit "{unit}" failed '
                f"with exit code {status}"
            )
        pairs = (line.partition("=") for line in lines.split("\n") if "=" in line)
        return {k: v for k, _, v in pairs}

    def get_unit_property(self, unit: str, property: str, user: str | None = None) -> str:
        status, lines = self.systemctl(f'--no-pager show "{unit}" --property="{property}"', user)
        if status != 0:
            raise RequestedAssertionFailed(
                f'{self.name}: retrieving systemctl property "{property}" for unit "{unit}" '
                f"failed with exit code {status}"
            )
        key, _, value = lines.strip().partition("=")
        assert key == property, f"systemctl show --property {property} {unit}: {lines!r}"
        return value

    def wait_for_unit(self, unit: str, user: str | None = None, timeout: int = 900) -> None:
        """Wait until `unit` is active; raise if it fails or is inactive with no jobs."""

        def check_active(_last_try: bool) -> bool:
            state = self.get_unit_property(unit, "ActiveState", user)
            if state == "failed":
                raise RequestedAssertionFailed(
                    f'{self.name}: unit "{unit}" reached state "failed"\n{self._unit_log(unit)}'
                )
            if state == "inactive":
                _status, jobs = self.systemctl("list-jobs --full 2>&1", user)
                if "No jobs" in jobs:
                    info = self.get_unit_info(unit, user)
                    if info["ActiveState"] == state:
                        raise RequestedAssertionFailed(
                            f'{self.name}: unit "{unit}" is inactive and there are no pending jobs'
                        )
            return state == "active"

        with self.logger.nested(f"waiting for unit {unit}", self.name):
            _retry(self.name, f"waiting for unit {unit}", check_active, timeout)

    def _unit_log(self, unit: str) -> str:
        _status, out = self.execute(
            f"journalctl -b -n 30 --no-pager -u {shlex.quote(unit)} || true"
        )
        return out

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        state = self.get_unit_info(unit)["ActiveState"]
        if state != require_state:
            raise RequestedAssertionFailed(
                f"{self.name}: expected unit '{unit}' to be in state '{require_state}' "
                f"but it is in state '{state}'"
            )

    def start_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        return self.systemctl(f"start {jobname}", user)

    def stop_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        return self.systemctl(f"stop {jobname}", user)

    # ---- files -----------------------------------------------------------

    def copy_from_machine(self, source: str, target_dir: str = "") -> None:
        """Copy a file or directory from the machine to out_dir/target_dir/<name>."""
        src = Path(source)
        blob = self.succeed(
            f"tar -C {shlex.quote(str(src.parent))} -czf - {shlex.quote(src.name)} | base64 -w0"
        )
        target = self.out_dir / target_dir
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(blob)), mode="r:gz") as tar:
            tar.extractall(target, filter="data")

    def copy_from_vm(self, source: str, target_dir: str = "") -> None:
        self.copy_from_machine(source, target_dir)

    def copy_from_host(self, source: str, target: str) -> None:
        """Copy a host file into the machine (through the shell: no shared folder)."""
        content = base64.b64encode(Path(source).read_bytes()).decode()
        self.succeed(
            f"mkdir -p $(dirname {shlex.quote(target)})",
            f"echo -n {content} | base64 -d > {shlex.quote(target)}",
        )

    copy_from_host_via_shell = copy_from_host

    # ---- console (VMs override) -----------------------------------------

    def get_console_log(self) -> str:
        return ""

    def release(self) -> None:
        """Stop everything this object started (end of run)."""


class VmMachine(BaseMachine):
    """The router image in qemu."""

    def __init__(self, name: str, out_dir: Path, logger: Logger, config: qemu.VmConfig) -> None:
        super().__init__(name, out_dir, logger)
        self.config = config
        self.process: subprocess.Popen | None = None
        self.qmp: QMP | None = None
        self.shell = TestShell(str(config.shell_socket), log=self.log)
        self.booted = False
        self.connected = False
        self._console_offset = 0
        self.boot_seconds: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def is_up(self) -> bool:
        return self.booted and self.connected

    def start(self, allow_reboot: bool = False) -> None:
        """Start qemu; does not wait for the boot (the first command does)."""
        if self.booted:
            return
        self.config.allow_reboot = allow_reboot
        self.log(f"starting vm ({self.config.boot} boot)")
        self.process = qemu.spawn(self.config)
        self._started = time.monotonic()
        try:
            self.qmp = QMP(str(self.config.qmp_socket))
        except QMPError as e:
            self.process.wait(timeout=10)
            raise MachineError(
                f"{self.name}: qemu did not start: {e}\n{qemu.tail(self.config.qemu_log)}"
            ) from None
        self.booted = True
        self.log(f"QEMU running (pid {self.process.pid})")

    def connect(self) -> None:
        """Wait for the guest's test shell (starts the VM if needed)."""
        if self.connected:
            return
        self.start()
        with self.logger.nested("waiting for the VM to finish booting", self.name):
            try:
                self.shell.wait_ready(BOOT_TIMEOUT)
            except (ShellTimeout, ShellClosed) as e:
                raise MachineError(
                    f"{self.name}: {e}\n--- last console lines ---\n"
                    f"{qemu.tail(self.config.console_log)}\n--- qemu ---\n"
                    f"{qemu.tail(self.config.qemu_log, 10)}"
                ) from None
            self.boot_seconds = time.monotonic() - self._started
            self.log(f"connected to the test shell {self.boot_seconds:.1f}s after start")
            self.connected = True

    def _run(self, command: str, timeout: int | None) -> tuple[int, str, str]:
        self.connect()
        try:
            reply = self.shell.run(command, timeout)
        except ShellTimeout as e:
            raise MachineError(f"{self.name}: command `{command}`: {e}") from None
        except ShellClosed as e:
            self.connected = False
            raise MachineError(f"{self.name}: command `{command}`: {e}") from None
        return reply.status, reply.stdout, reply.stderr

    def _send_nowait(self, command: str) -> None:
        self.connect()
        self.logger.command(self.name, command, None, "", "")
        self.shell.send_raw(f"bash -c {shlex.quote(command)} </dev/null >/dev/null 2>&1 &")

    def send_monitor_command(self, command: str) -> str:
        """An HMP command through QMP (`set_link uplink off`); returns its output."""
        if self.qmp is None:
            raise MachineError(f"{self.name}: the VM is not running (no monitor)")
        with self.logger.nested(f"monitor: {command}", self.name):
            out = self.qmp.hmp(command)
            if out:
                self.log(out.rstrip())
            return out

    def wait_for_shutdown(self) -> None:
        if not self.booted:
            return
        with self.logger.nested("waiting for the VM to power off", self.name):
            assert self.process is not None
            self.process.wait()
            self._stopped()

    def _stopped(self) -> None:
        self.booted = False
        self.connected = False
        self.shell.close()
        if self.qmp:
            self.qmp.close()
            self.qmp = None

    def shutdown(self) -> None:
        """Power off from inside (systemd stops the services), wait for qemu to exit."""
        if not self.booted:
            return
        self.connect()
        self.shell.send_raw("systemctl poweroff || poweroff -f")
        self.wait_for_shutdown()

    def crash(self) -> None:
        """Pull the power: qemu quits at once."""
        if not self.booted:
            return
        self.log("forced crash")
        with contextlib.suppress(QMPError):
            self.send_monitor_command("quit")
        self.wait_for_shutdown()

    def reboot(self) -> None:
        """Ctrl-Alt-Del in the guest; the next command waits for the new boot."""
        self.send_monitor_command("sendkey ctrl-alt-delete")
        self.connected = False
        self._started = time.monotonic()

    def block(self) -> None:
        """Pull both network cables (uplink and LAN) at once."""
        for nic in self.config.nics:
            self.send_monitor_command(f"set_link {nic.id} off")

    def unblock(self) -> None:
        for nic in self.config.nics:
            self.send_monitor_command(f"set_link {nic.id} on")

    def get_console_log(self) -> str:
        try:
            return self.config.console_log.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_console_text(self, regex: str, timeout: int | None = None) -> None:
        """Wait until `regex` matches console output printed since the last match."""
        pattern = re.compile(regex)

        def matches(_last: bool) -> bool:
            text = self.get_console_log()
            m = pattern.search(text, self._console_offset)
            if m:
                self._console_offset = m.end()
            return m is not None

        with self.logger.nested(f"waiting for {regex} to appear on console", self.name):
            _retry(self.name, f"waiting for console text {regex!r}", matches, timeout or 86400)

    def release(self) -> None:
        if self.process and self.process.poll() is None:
            self.log(f"kill qemu (pid {self.process.pid})")
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stopped()


# On namespace nodes, the ISP's daemons are the lab's peers.
UNIT_PEERS = {
    "kea-dhcp4-server": "isp-dhcp4",
    "kea-dhcp6-server": "isp-dhcp6",
    "radvd": "isp-radvd",
}


class NamespaceMachine(BaseMachine):
    """One of the lab's namespaces (isp, internet, lan1, ...) with the same API."""

    def __init__(self, name: str, out_dir: Path, logger: Logger, lab, node: str) -> None:
        super().__init__(name, out_dir, logger)
        self.lab = lab
        self.node = node
        self.booted = False
        self.client_started = False

    @property
    def netns(self) -> str:
        return self.lab.ns(self.node)

    def is_up(self) -> bool:
        return self.booted

    def start(self, allow_reboot: bool = False) -> None:
        """'Boot': a LAN host will start its DHCP client (a NixOS node with useDHCP).

        Like a NixOS node's boot, it completes on the first command run on the
        machine: a namespace boots instantly, so a client started with the router
        VM would ask while the router still boots and, by the time it answers,
        sit in its retransmission backoff (4, 8, ... 64 s): a minute lost per run.
        """
        if self.booted:
            return
        self.booted = True
        self.client_started = False

    def _boot(self) -> None:
        self.start()
        if self.node.startswith("lan") and not self.client_started:
            from router7.lab.router import start_lan_client

            start_lan_client(self.lab, self.node)
            self.client_started = True

    def shutdown(self) -> None:
        from router7.lab import procs
        from router7.lab.netns import netns_pids

        if self.node.startswith("lan"):
            procs.terminate(netns_pids(self.netns))
        self.booted = False

    crash = shutdown

    def wait_for_shutdown(self) -> None:
        pass

    def _run(self, command: str, timeout: int | None) -> tuple[int, str, str]:
        self._boot()
        argv = ["ip", "netns", "exec", self.netns]
        if timeout:
            argv += ["timeout", str(int(timeout))]
        argv += ["bash", "-c", f"set -euo pipefail; {command}"]
        proc = subprocess.run(
            argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
            env={**os.environ, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        )  # fmt: skip
        return proc.returncode, proc.stdout, proc.stderr

    def _send_nowait(self, command: str) -> None:
        self._boot()
        self.logger.command(self.name, command, None, "", "")
        subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "bash", "-c", command],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def systemctl(self, q: str, user: str | None = None) -> tuple[int, str]:
        """`stop kea-dhcp4-server` & co. act on the lab's peers; other units do not exist."""
        verbs = [w for w in shlex.split(q) if not w.startswith("-")]
        if len(verbs) == 2 and verbs[1].removesuffix(".service") in UNIT_PEERS:
            verb, unit = verbs[0], verbs[1].removesuffix(".service")
            peer = UNIT_PEERS[unit]
            with self.logger.nested(f"systemctl {q} (lab peer {peer})", self.name):
                if verb in ("stop", "restart"):
                    self.lab.stop_peer(peer)
                if verb in ("start", "restart"):
                    self.lab.start_peer(peer)
                running = self.lab.peer_running(peer)
                if verb == "show":
                    state = "active" if running else "inactive"
                    return 0, f"ActiveState={state}\n"
                if verb == "is-active":
                    return (0, "active\n") if running else (3, "inactive\n")
                if verb in ("start", "stop", "restart"):
                    return 0, ""
        if verbs[:1] == ["list-jobs"]:
            return 0, "No jobs running.\n"
        return 1, f"{self.name} is a namespace: no systemd unit for `systemctl {q}`\n"

    def get_unit_property(self, unit: str, property: str, user: str | None = None) -> str:
        if unit.removesuffix(".service") in UNIT_PEERS and property == "ActiveState":
            status, out = self.systemctl(f"show {unit}")
            return out.strip().partition("=")[2]
        return super().get_unit_property(unit, property, user)

    def send_monitor_command(self, command: str) -> str:
        raise MachineError(f"{self.name} is a namespace: it has no qemu monitor")

    def _links(self) -> list[str]:
        return {"isp": ["down0"], "internet": ["eth0"]}.get(self.node, ["eth0"])

    def block(self) -> None:
        for link in self._links():
            self.succeed(f"ip link set {link} down")

    def unblock(self) -> None:
        for link in self._links():
            self.succeed(f"ip link set {link} up")

    def copy_from_machine(self, source: str, target_dir: str = "") -> None:
        # Namespaces share the host's file system.
        src = Path(source)
        target = self.out_dir / target_dir / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy(src, target)

    def release(self) -> None:
        if self.node.startswith("lan") and self.booted:
            self.shutdown()


__all__ = [
    "BaseMachine",
    "MachineError",
    "NamespaceMachine",
    "RequestedAssertionFailed",
    "VmMachine",
    "make_command",
    "retry",
]
