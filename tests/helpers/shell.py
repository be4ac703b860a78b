"""Running commands in integration tests (optionally inside a network namespace)."""

from __future__ import annotations

import subprocess

from router7.lab.netns import which


def run(
    *argv: object,
    check: bool = True,
    input: str | None = None,
    timeout: float = 30,
    ns: str | None = None,
    **kw,
) -> subprocess.CompletedProcess:
    """Run argv (in namespace `ns` via ``ip netns exec`` if given) and capture its output.

    The program is looked up like router7.lab.netns.which (PATH, then sbin directories),
    falling back to the name as given. With `check`, a non-zero exit raises
    AssertionError naming the command and its stderr. Other keywords go to
    subprocess.run.
    """
    cmd = [str(a) for a in argv]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    cmd[0] = which(cmd[0]) or cmd[0]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, input=input, timeout=timeout, check=False, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def sh(
    *argv: object,
    check: bool = True,
    input: str | None = None,
    timeout: float = 30,
    ns: str | None = None,
) -> str:
    """Like run() but returns stdout."""
    return run(*argv, check=check, input=input, timeout=timeout, ns=ns).stdout
