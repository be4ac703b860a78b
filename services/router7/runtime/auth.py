"""The router's one admin credential, and the check every state-changing endpoint makes.

Read-only pages stay open to the LAN; anything that changes state or hands out
secrets (backups hold private keys) needs the credential. One random token in
``/perm/admin/token``, created on first use, so the owner has one thing to copy
(from the console or the status page) into a browser, ``curl`` or
``router7-safe-update``. Accepted as ``Authorization: Bearer TOKEN`` or as HTTP
Basic with user ``admin`` and the token as password (what a browser prompts for).

Browsers resend Basic credentials to the router from any page, so a form post
is also checked for its origin (CSRF): an ``Origin`` (or, without it, a
``Referer``) that names another host is refused.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from twisted.web import resource

from router7.runtime.statefile import write_bytes_atomic

log = logging.getLogger(__name__)

TOKEN_FILE = Path("admin") / "token"
USER = "admin"
# Methods that change nothing; every other method is state-changing.
SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS"})


def token_path(perm: str | os.PathLike) -> Path:
    return Path(perm) / TOKEN_FILE


def read_token(perm: str | os.PathLike) -> str | None:
    """The admin token, or None when there is none yet (or it is unreadable/empty)."""
    try:
        token = token_path(perm).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return token or None


def load_or_create(perm: str | os.PathLike) -> tuple[str, bool]:
    """(the admin token, whether it was created now). Created atomically with mode 0600,
    so two services starting at once end up with one token (the last rename wins, and
    both re-read it)."""
    token = read_token(perm)
    if token is not None:
        return token, False
    write_bytes_atomic(token_path(perm), (secrets.token_urlsafe(24) + "\n").encode(), mode=0o600)
    token = read_token(perm)
    if token is None:
        raise OSError(f"{token_path(perm)}: written but unreadable")
    log.info("created the admin credential in %s", token_path(perm))
    return token, True


SHOWN_FILE = Path("admin") / "token-shown"


def take_for_display(perm: str | os.PathLike) -> str | None:
    """The token if it has not been shown on the status page yet, marking it shown
    (``<perm>/admin/token-shown``); None once it has been, or when there is none.
    The owner sees it once; afterwards it is only in ``/perm/admin/token``."""
    marker = Path(perm) / SHOWN_FILE
    if marker.exists():
        return None
    token = read_token(perm)
    if token is None:
        return None
    try:
        write_bytes_atomic(marker, b"shown on the status page\n", mode=0o600)
    except OSError as e:  # cannot remember: better not to show it at all
        log.error("cannot write %s: %s", marker, e)
        return None
    log.warning("the admin credential was shown on the status page")
    return token


def presented_token(request) -> str | None:
    """The token a request carries (Bearer, or Basic admin:TOKEN), or None."""
    header = request.getHeader(b"authorization")
    if not header:
        return None
    scheme, _, value = header.partition(b" ")
    value = value.strip()
    if scheme.lower() == b"bearer":
        return value.decode("ascii", "replace")
    if scheme.lower() == b"basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None
        if user.decode("utf-8", "replace") == USER:
            return password.decode("utf-8", "replace")
    return None


def authorized(request, token: str | None) -> bool:
    """Whether the request carries ``token``. No token configured: nobody is."""
    given = presented_token(request)
    if token is None or given is None:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


def same_origin(request) -> bool:
    """False when the browser says the request comes from a page on another host."""
    host = (request.getHeader(b"host") or b"").decode("latin-1").lower()
    for name in (b"origin", b"referer"):
        value = request.getHeader(name)
        if value is None:
            continue
        if value == b"null":
            return False
        return urlsplit(value.decode("latin-1")).netloc.lower() == host
    return True  # not a browser form (curl, router7-safe-update)


FORBIDDEN = b"forbidden: this request comes from a page on another site\n"
UNAUTHORIZED = b"unauthorized: this needs the router's admin credential (user admin)\n"


def refusal(request, token: str | None, *, protect_reads: bool = False) -> bytes | None:
    """None when ``request`` may proceed; else the response code and the
    ``WWW-Authenticate`` challenge are set and the message to render is returned.
    ``protect_reads``: GET needs the credential too (backups)."""
    changing = request.method not in SAFE_METHODS
    if not changing and not protect_reads:
        return None
    if changing and not same_origin(request):
        request.setResponseCode(403)
        return FORBIDDEN
    if not authorized(request, token):
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", b'Basic realm="router7", charset="UTF-8"')
        return UNAUTHORIZED
    return None


class Guarded(resource.Resource):
    """Wraps a resource (and its children) behind ``refusal``.

    The token is read per request (one small file), so a token created or
    changed after start-up counts without a restart.
    """

    def __init__(self, inner: resource.Resource, perm: str | os.PathLike, *, protect_reads=False):
        super().__init__()
        self.inner = inner
        self.perm = perm
        self.protect_reads = protect_reads
        self.isLeaf = inner.isLeaf  # a leaf gets the rest of the path, as without the guard

    def _refusal(self, request) -> bytes | None:
        return refusal(request, read_token(self.perm), protect_reads=self.protect_reads)

    def getChildWithDefault(self, path, request):
        message = self._refusal(request)
        if message is not None:
            return _Refused(message)
        return self.inner.getChildWithDefault(path, request)

    def render(self, request):
        message = self._refusal(request)
        if message is not None:
            return _Refused(message).render(request)
        return self.inner.render(request)


class _Refused(resource.Resource):
    isLeaf = True

    def __init__(self, message: bytes):
        super().__init__()
        self.message = message

    def render(self, request):
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return self.message
