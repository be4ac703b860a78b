"""Every declared console script resolves, and every daemon follows the runtime's conventions."""

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from router7.runtime.service import Service

SCRIPTS = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"][
    "scripts"
]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_console_script_resolves(script):
    module, _, attr = SCRIPTS[script].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


DAEMONS = sorted(s for s in SCRIPTS if SCRIPTS[s].endswith(".service:main"))


@pytest.mark.parametrize("script", DAEMONS)
def test_daemon_is_a_runtime_service_with_documented_flags(script):
    module = importlib.import_module(SCRIPTS[script].partition(":")[0])
    services = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Service) and v is not Service
    ]
    assert services, f"{script}: no Service subclass"
    assert f"router7-{services[0].name}" == script
    out = subprocess.run(
        [sys.executable, "-c", f"import {module.__name__} as m; m.main()", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for flag in ("--perm", "--run-dir", "--log-level"):
        assert flag in out.stdout
