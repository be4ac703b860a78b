"""Checks on the Nix files that need no nixpkgs.

nixpkgs cannot be fetched on the machines these tests run on, so `nix build`
is out of reach; what can be checked here is that every .nix file parses and
that the Nix package agrees with pyproject.toml, so the two cannot drift apart.

In the Nix build itself the sandbox has neither nix-instantiate nor the Nix
files (the package source is only pyproject.toml, services/ and tests/):
these tests then skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
FLAKE = REPO / "flake.nix"
PACKAGE_NIX = REPO / "pkgs" / "router7.nix"

# Directories that are not part of the project's sources.
SKIP_DIRS = {
    ".git",
    ".venv",
    ".direnv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "node_modules",
}


def _skipped(dirname: str) -> bool:
    # result, result-1, result-dev…: `nix build` output links into the store.
    return dirname in SKIP_DIRS or dirname.startswith("result") or dirname.endswith(".egg-info")


def nix_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        found.extend(Path(dirpath, f) for f in sorted(filenames) if f.endswith(".nix"))
    return found


def normalize(name: str) -> str:
    """PEP 503 name, which is also how nixpkgs names Python packages."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"unparsable requirement {requirement!r}"
    return normalize(match.group(1))


def nix_list(text: str, attribute: str) -> list[str]:
    """The items of `attribute = [ … ];` (optionally `with …;`) in a Nix file.

    An item is a bare attribute name (`twisted`) or the name at the head of a
    parenthesised expression (`(scapy.override { … })` gives `scapy`). Enough
    Nix for the package file: comments and double-quoted strings are skipped.
    """
    match = re.search(
        rf"(?<![\w'-]){re.escape(attribute)}\s*=\s*(?:with\s+[\w.]+\s*;\s*)?\[",
        text,
    )
    assert match, f"no `{attribute} = [ … ];` list found"
    items: list[str] = []
    depth = 0  # brackets opened inside the list
    head_pending = False  # just entered a top-level "(": its first name is an item
    i = match.end()
    while i < len(text):
        char = text[i]
        if char == "#":
            i = text.find("\n", i)
            if i < 0:
                break
        elif char == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif char in "([{":
            head_pending = depth == 0 and char == "("
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return items
            depth -= 1
        elif char.isalpha() or char == "_":
            name = re.match(r"[A-Za-z_][\w'-]*", text[i:]).group(0)
            if depth == 0 or head_pending:
                items.append(name)
            head_pending = False
            i += len(name)
            continue
        i += 1
    raise AssertionError(f"`{attribute} = [` is never closed")


def read_pyproject() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


@pytest.fixture
def package_nix() -> str:
    if not PACKAGE_NIX.exists():
        pytest.skip(f"{PACKAGE_NIX.relative_to(REPO)} absent: not a full checkout (Nix build?)")
    return PACKAGE_NIX.read_text()


def test_every_nix_file_parses():
    nix_instantiate = shutil.which("nix-instantiate")
    if nix_instantiate is None:
        pytest.skip("nix-instantiate is not on PATH (install Nix, or use `nix develop`)")
    if not FLAKE.exists():
        pytest.skip("flake.nix absent: not a full checkout (Nix build?)")

    checked = []
    failures = []
    for path in nix_files(REPO):
        result = subprocess.run(
            [nix_instantiate, "--parse", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        checked.append(path.relative_to(REPO).as_posix())
        if result.returncode != 0:
            failures.append(f"{path.relative_to(REPO)}:\n{result.stderr.strip()}")

    assert not failures, "nix-instantiate --parse failed:\n\n" + "\n\n".join(failures)
    assert {"flake.nix", "pkgs/router7.nix"} <= set(checked), checked


def test_nix_file_discovery_skips_outputs_and_venvs(tmp_path):
    (tmp_path / "a.nix").write_text("{ }")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.nix").write_text("{ }")
    for skipped in (".git", ".venv", "result", "result-dev", "router7.egg-info"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "c.nix").write_text("{ }")
    (tmp_path / "notnix.txt").write_text("")

    found = [p.relative_to(tmp_path).as_posix() for p in nix_files(tmp_path)]
    assert found == ["a.nix", "sub/b.nix"]


def test_nix_list_items():
    text = """
  optional-dependencies = { tls = [ pyopenssl ]; };
  build-system = with python3Packages; [ setuptools ];
  dependencies = with python3Packages; [
    twisted
    # a comment ] with a bracket
    (scapy.override {
      withOptionalDeps = false;
      nested = [ "x]" { a = 1; } ];
    })
    prometheus-client # trailing
  ];
  other = [ x ];
"""
    assert nix_list(text, "dependencies") == ["twisted", "scapy", "prometheus-client"]
    assert nix_list(text, "build-system") == ["setuptools"]
    with pytest.raises(AssertionError):
        nix_list(text, "nativeCheckInputs")


def test_console_scripts_are_router7_entry_points():
    scripts = read_pyproject()["project"]["scripts"]
    assert scripts, "pyproject.toml declares no console scripts"
    for name, target in scripts.items():
        # The Nix package wraps every script in bin/ with the same PATH; the
        # router7- prefix keeps them from shadowing other tools there.
        assert re.fullmatch(r"router7-[a-z0-9]+(-[a-z0-9]+)*", name), name
        assert re.fullmatch(r"router7(\.\w+)+:\w+", target), f"{name} = {target!r}"


def test_package_is_a_pyproject_build(package_nix):
    assert re.search(r"^\s*pyproject\s*=\s*true\s*;", package_nix, re.MULTILINE)
    backend = read_pyproject()["build-system"]["build-backend"]
    assert backend.startswith("setuptools"), backend
    assert nix_list(package_nix, "build-system") == ["setuptools"]


def test_runtime_dependencies_match_pyproject(package_nix):
    wanted = {requirement_name(r) for r in read_pyproject()["project"]["dependencies"]}
    packaged = {normalize(item) for item in nix_list(package_nix, "dependencies")}
    assert packaged == wanted, (
        f"pkgs/router7.nix dependencies differ from pyproject.toml: "
        f"missing in Nix {sorted(wanted - packaged)}, "
        f"not in pyproject.toml {sorted(packaged - wanted)}"
    )


def test_test_dependencies_are_in_check_inputs(package_nix):
    check_inputs = set(nix_list(package_nix, "nativeCheckInputs"))
    assert "pytestCheckHook" in check_inputs
    test_extra = read_pyproject()["project"]["optional-dependencies"]["test"]
    # pytest comes with pytestCheckHook; ruff is a linter, not needed to test.
    needed = {requirement_name(r) for r in test_extra} - {"pytest", "ruff"}
    assert needed <= {normalize(i) for i in check_inputs}, needed
