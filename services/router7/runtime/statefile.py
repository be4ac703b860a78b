"""State files: atomic writes and schema-checked reads.

Every piece of router state is a human-readable JSON file under /perm. A writer
must never leave a partial or empty file behind, even when it is killed or the
power fails mid-write, because the last configuration is what keeps the router
online after a reboot. Hence: temp file in the same directory, fsync, rename,
fsync of the directory.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Optional",
    "StateFileError",
    "format_time",
    "go_ipnet",
    "ip_address",
    "ip_interface",
    "ip_network",
    "ip_prefix",
    "iso_time",
    "read_json",
    "read_json_raw",
    "validate",
    "write_bytes_atomic",
    "write_json_atomic",
]


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A dot-prefixed temp name in the same directory: rename() is only atomic
    # within one file system, and readers that list the directory skip it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON with a trailing newline."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    write_bytes_atomic(path, text.encode())


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(
        value,
        ipaddress.IPv4Address
        | ipaddress.IPv6Address
        | ipaddress.IPv4Interface
        | ipaddress.IPv6Interface
        | ipaddress.IPv4Network
        | ipaddress.IPv6Network,
    ):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def format_time(t: datetime) -> str:
    """ISO 8601 in UTC with a 'Z', second precision: what the state files contain."""
    if t.tzinfo is None:
        raise ValueError("naive datetime in state file")
    return t.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# --- schema validation -------------------------------------------------------
#
# A deliberately small validator instead of jsonschema: the state files are
# flat, we want values converted (times, addresses) as they are checked, and we
# want the error to name the file and the dotted field path. A schema is:
#   str / int / float / bool     the JSON type (bool is not an int here)
#   [spec]                       a list whose items match spec
#   {"name": spec, ...}          an object; keys wrapped in Optional may be absent,
#                                unknown keys are kept (newer writers may add fields)
#   a callable                   a converter that returns the value or raises ValueError


class StateFileError(ValueError):
    """A state or config file is missing, not JSON, or does not match its schema."""

    def __init__(self, path: str | os.PathLike, field: str | None, reason: str):
        self.path = str(path)
        self.field = field
        self.reason = reason
        where = f"{self.path}: field {field!r}" if field else self.path
        super().__init__(f"{where}: {reason}")


class Optional:
    """Marks a schema field that may be absent (or null)."""

    def __init__(self, spec: Any, default: Any = None):
        self.spec = spec
        self.default = default


class _Invalid(Exception):
    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check(value: Any, spec: Any, field: str) -> Any:
    if isinstance(spec, Optional):
        return spec.default if value is None else _check(value, spec.spec, field)
    if isinstance(spec, type) and spec in _TYPE_NAMES:
        ok = isinstance(value, spec) and not (spec is not bool and isinstance(value, bool))
        if spec is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            raise _Invalid(field, f"expected {_TYPE_NAMES[spec]}, got {json.dumps(value)}")
        return value
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise _Invalid(field, f"expected a list, got {json.dumps(value)}")
        return [_check(item, spec[0], f"{field}[{i}]") for i, item in enumerate(value)]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise _Invalid(field or "(top level)", "expected an object")
        out = dict(value)
        for key, sub in spec.items():
            name = f"{field}.{key}" if field else key
            if key not in value:
                if isinstance(sub, Optional):
                    out[key] = sub.default
                    continue
                raise _Invalid(name, "missing")
            out[key] = _check(value[key], sub, name)
        return out
    if callable(spec):
        try:
            return spec(value)
        except (ValueError, TypeError) as e:
            raise _Invalid(field, str(e)) from None
    raise TypeError(f"bad schema spec {spec!r}")


def validate(value: Any, schema: Any, path: str | os.PathLike = "<memory>") -> Any:
    """Check and convert ``value`` against ``schema``; raise StateFileError naming the field."""
    try:
        return _check(value, schema, "")
    except _Invalid as e:
        raise StateFileError(path, e.field, e.reason) from None


def read_json_raw(path: str | os.PathLike) -> tuple[Any, bytes]:
    """The parsed JSON of a file and its bytes (for a caller that keeps a copy)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise StateFileError(path, None, "does not exist") from None
    except OSError as e:
        raise StateFileError(path, None, e.strerror or str(e)) from None
    try:
        return json.loads(raw), raw
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StateFileError(path, None, f"not valid JSON: {e}") from None


def read_json(path: str | os.PathLike, schema: Any = None) -> Any:
    """Read a JSON file and, when a schema is given, validate and convert it."""
    value, _ = read_json_raw(path)
    return value if schema is None else validate(value, schema, path)


# --- converters for schemas --------------------------------------------------


def _typed(convert: Callable[[str], Any], what: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"expected {what} as a string, got {json.dumps(value)}")
        try:
            return convert(value)
        except ValueError:
            raise ValueError(f"not {what}: {value!r}") from None

    check.__name__ = what.replace(" ", "_")
    return check


def _parse_time(text: str) -> datetime:
    # Go writes up to 9 fractional digits (router7's files); Python takes 6.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("no time zone")
    return t.astimezone(UTC)


ip_address = _typed(ipaddress.ip_address, "an IP address")
ip_interface = _typed(ipaddress.ip_interface, "an address with prefix length")
ip_network = _typed(lambda s: ipaddress.ip_network(s, strict=True), "a network prefix")
iso_time = _typed(_parse_time, "an ISO 8601 time")


def go_ipnet(value: dict) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Go's JSON encoding of a net.IPNet, which router7 wrote for every prefix:
    ``{"IP": "2a02:168:4a00::", "Mask": "<base64 of the mask bytes>"}``."""
    try:
        mask = base64.b64decode(value["Mask"], validate=True)
        ip = ipaddress.ip_address(value["IP"])
    except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError
        raise ValueError(f"not a Go IPNet {{IP, Mask}}: {json.dumps(value)}") from None
    bits = int.from_bytes(mask, "big")
    plen = bits.bit_count()
    width = 8 * len(mask)
    # A 4-byte mask may go with an IPv4 address only; Go writes 16-byte masks for IPv6.
    if width != ip.max_prefixlen or bits != ((1 << width) - 1) ^ ((1 << (width - plen)) - 1):
        raise ValueError(f"Mask is not a contiguous {ip.max_prefixlen // 8}-byte mask: {value!r}")
    return ipaddress.ip_network(f"{ip}/{plen}", strict=False)


def ip_prefix(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A prefix as "2001:db8::/48" or, from a Go router7 file, as a net.IPNet object."""
    if isinstance(value, dict):
        return go_ipnet(value)
    return ip_network(value)
