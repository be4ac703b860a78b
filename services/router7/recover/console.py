"""The router's serial console, watched while it recovers (optional: `--serial URL`).

pyserial opens a device (/dev/ttyUSB0) or any of its URL handlers
(`socket://host:port`, `rfc2217://...`, `loop://`); a thread copies every byte to
the log file and prints the lines that mark a boot stage, so the owner sees the
router netboot, install and come back even before it reaches the network.
"""

from __future__ import annotations

import re
import sys
import threading
from pathlib import Path

BAUD = 115200  # the image's console=ttyS0,115200
# Lines worth showing as they arrive (everything goes to the log).
STAGES = re.compile(
    rb"iPXE |Linux version|router7-init: |router7-recovery: |Reached target|reboot: "
)


class ConsoleError(RuntimeError):
    pass


class Console:
    def __init__(self, url: str, log_path: Path, out=sys.stdout, baudrate: int = BAUD):
        self.url, self.log_path, self.out, self.baudrate = url, log_path, out, baudrate
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.port = None
        self.stages: list[str] = []

    def start(self) -> None:
        try:
            import serial
        except ImportError as e:
            raise ConsoleError("--serial needs pyserial (pip install 'router7[recover]')") from e
        try:
            self.port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.2)
        except (serial.SerialException, ValueError) as e:
            raise ConsoleError(f"--serial {self.url}: {e}") from e
        self._thread = threading.Thread(target=self._copy, name="serial console", daemon=True)
        self._thread.start()

    def _copy(self) -> None:
        pending = b""
        with self.log_path.open("ab") as log:
            while not self._stop.is_set():
                try:
                    data = self.port.read(4096)
                except Exception:  # the port went away (USB unplugged): stop quietly
                    break
                if not data:
                    continue
                log.write(data)
                log.flush()
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if STAGES.search(line):
                        text = line.decode("utf-8", "replace").strip()
                        self.stages.append(text)
                        self.out.write(f"console: {text}\n")
                        self.out.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self.port is not None:
            self.port.close()
