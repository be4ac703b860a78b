"""One scenario run: a lab with the router image in qemu, machines, the script.

    with Driver(Path("vm-tests/pd.py")) as d:
        d.run()

The scenario sees what a NixOS test script sees: `start_all`, `subtest`,
`machines`, `retry`, `t` (unittest assertions), `log`, and one global per
node: `router` (the VM), `isp`, `internet`, `lan` (= lab host lan1) and
`lan2`. Everything lands in test-artifacts/<scenario>/.

A scenario that needs another machine than the default (a disk with the image,
booted from it) says so in one comment line, which the Nix glue reads too:

    # router7-vmtest: boot=pxe blank-disk-mib=512
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import time
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from router7.lab.topology import Lab
from router7.vmtest import image, labvm
from router7.vmtest.logger import Logger
from router7.vmtest.machine import (
    BaseMachine,
    NamespaceMachine,
    RequestedAssertionFailed,
    VmMachine,
    retry,
)
from router7.vmtest.qemu import VmConfig

# Scenario node name -> lab node.
NAMESPACE_NODES = {"internet": "internet", "isp": "isp", "lan": "lan1", "lan2": "lan2"}


class AssertionTester(unittest.TestCase):
    failureException = RequestedAssertionFailed

    def runTest(self) -> None:  # unittest wants one
        pass


def artifacts_root() -> Path:
    return Path(os.environ.get("ROUTER7_TEST_ARTIFACTS", image.checkout_root() / "test-artifacts"))


_runs = itertools.count()
HEADER = "# router7-vmtest:"


def scenario_options(text: str) -> dict[str, str]:
    """`key=value` words from the scenario's `# router7-vmtest:` line(s)."""
    options = {}
    for line in text.splitlines():
        if line.startswith(HEADER):
            for word in line[len(HEADER) :].split():
                key, sep, value = word.partition("=")
                if not sep or key not in ("boot", "blank-disk-mib", "nix"):
                    raise ValueError(
                        f"{HEADER} {word!r}: want boot=MODE, blank-disk-mib=N or nix=none"
                    )
                options[key] = value
    return options


def unique_prefix() -> str:
    """A lab prefix of our own ([a-z][a-z0-9]{0,11}): runs never share namespaces,
    not even two runs in one process (pytest)."""
    return f"vt{os.getpid() & 0xFFFFFF:x}x{next(_runs) % 256:x}"


class Driver:
    def __init__(
        self,
        scenario: Path,
        *,
        out_dir: Path | None = None,
        image_dir: Path | None = None,
        boot: str | None = None,
        keep: bool = False,
        prefix: str | None = None,
        echo: bool = True,
    ) -> None:
        self.scenario = Path(scenario)
        self.name = self.scenario.stem
        self.out_dir = out_dir or artifacts_root() / self.name
        if self.out_dir.exists():
            shutil.rmtree(self.out_dir)
        self.options = scenario_options(self.scenario.read_text())
        boot = boot or self.options.get("boot", "disk")
        if boot not in image.NEEDED:
            raise ValueError(f"{self.scenario}: unknown boot mode {boot!r}")
        self.image_dir = image.require(image_dir, image.NEEDED[boot])
        self.boot = boot
        self.keep = keep
        self.logger = Logger(self.out_dir, echo=echo)
        # A scenario that names the second ISP (failover) gets it, and the VM a third NIC.
        isp2 = "isp2" in self.scenario.read_text()
        self.lab = Lab(prefix or unique_prefix(), lan_hosts=2, isp2=isp2)
        self.router: VmMachine | None = None
        self.nodes: dict[str, BaseMachine] = {}

    # ---- lifecycle -----------------------------------------------------

    def __enter__(self) -> Driver:
        with self.logger.nested(f"lab {self.lab.prefix} up ({self.boot} boot of {self.image_dir})"):
            try:
                self.lab.up()
                labvm.attach(self.lab)
            except BaseException:
                self.lab.down()
                self.logger.close()
                raise
        blank = self.options.get("blank-disk-mib")
        config: VmConfig = labvm.vm_config(
            self.lab,
            self.image_dir,
            self.out_dir / "vm-state",
            boot=self.boot,
            blank_disk_mib=int(blank) if blank else None,
        )
        self.router = VmMachine("router", self.out_dir, self.logger, config)
        self.nodes = {"router": self.router}
        for name, node in NAMESPACE_NODES.items():
            self.nodes[name] = NamespaceMachine(name, self.out_dir, self.logger, self.lab, node)
        if self.lab.isp2:
            self.nodes["isp2"] = NamespaceMachine(
                "isp2", self.out_dir, self.logger, self.lab, "isp2"
            )
        return self

    def __exit__(self, *exc: Any) -> None:
        self.collect()
        if self.keep:
            self.print_keep_notes()
        else:
            with self.logger.nested("cleanup"):
                for m in self.machines:
                    with contextlib.suppress(Exception):
                        m.release()
                self.lab.down()
                if self.router is not None:  # the disk overlay: large, and the VM is gone
                    self.router.config.disk.unlink(missing_ok=True)
        self.logger.close()

    def collect(self) -> None:
        """Copy the lab's peer logs and the VM's console next to the driver's logs."""
        if self.router is not None:
            cfg = self.router.config
            for src, dst in ((cfg.console_log, "router-console.log"), (cfg.qemu_log, "qemu.log")):
                if src.exists():
                    shutil.copy(src, self.out_dir / dst)
        if self.lab.paths.logs.exists():
            shutil.copytree(self.lab.paths.logs, self.out_dir / "lab-logs", dirs_exist_ok=True)

    def print_keep_notes(self) -> None:
        assert self.router is not None
        cfg = self.router.config
        print(
            f"\nkept: lab {self.lab.prefix}, router VM pid {self.router.pid}\n"
            f"  serial console:  socat -,raw,echo=0,escape=0x1d UNIX-CONNECT:{cfg.console_socket}\n"
            f"  console log:     {cfg.console_log}\n"
            f"  a node:          router7-lab --prefix {self.lab.prefix} exec lan1 -- ip addr\n"
            f"  clean up:        router7-lab --prefix {self.lab.prefix} down"
        )

    # ---- what scenarios see ---------------------------------------------

    @property
    def machines(self) -> list[BaseMachine]:
        return sorted(self.nodes.values(), key=lambda m: m.name)

    def start_all(self) -> None:
        with self.logger.nested("start all VMs"):
            for m in self.machines:
                m.start()

    def join_all(self) -> None:
        for m in self.machines:
            m.wait_for_shutdown()

    @contextlib.contextmanager
    def subtest(self, name: str) -> Iterator[None]:
        with self.logger.subtest(name):
            yield

    def test_symbols(self) -> dict[str, Any]:
        return {
            "start_all": self.start_all,
            "join_all": self.join_all,
            "subtest": self.subtest,
            "machines": self.machines,
            "driver": self,
            "log": self.logger,
            "retry": retry,
            "os": os,
            "t": AssertionTester(),
            "serial_stdout_on": lambda: None,
            "serial_stdout_off": lambda: None,
            **self.nodes,
        }

    def run(self) -> float:
        """Run the scenario; return its duration in seconds. Failures propagate."""
        code = compile(self.scenario.read_text(), str(self.scenario), "exec")
        start = time.monotonic()
        with self.logger.nested(f"run the VM test script {self.scenario}"):
            try:
                exec(code, self.test_symbols(), None)
            except Exception as e:
                self.logger.log(f"FAILED: {type(e).__name__}: {e}")
                raise
        took = time.monotonic() - start
        self.logger.log(f"scenario {self.name} passed in {took:.1f}s")
        return took
