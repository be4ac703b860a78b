"""The admin credential: created once, required for changes and protected reads,
and form posts from other sites refused."""

from __future__ import annotations

import base64
import os

from twisted.web import resource

from router7.runtime import auth
from tests.helpers.web import get


class Changer(resource.Resource):
    isLeaf = True

    def __init__(self):
        super().__init__()
        self.changes = 0

    def render_GET(self, request):
        return b"state"

    def render_POST(self, request):
        self.changes += 1
        return b"changed"


def basic(user: str, password: str) -> tuple[bytes, bytes]:
    return b"authorization", b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def test_created_once_private_and_stable(tmp_path):
    token, created = auth.load_or_create(tmp_path)
    assert created and len(token) >= 32
    assert os.stat(auth.token_path(tmp_path)).st_mode & 0o777 == 0o600
    assert auth.load_or_create(tmp_path) == (token, False)


def test_reads_open_changes_need_the_token(tmp_path):
    token, _ = auth.load_or_create(tmp_path)
    inner = Changer()
    guarded = auth.Guarded(inner, tmp_path)
    req, body = get(guarded, b"", method=b"GET")
    assert body == b"state"
    req, body = get(guarded, b"", method=b"POST")
    assert req.responseCode == 401 and inner.changes == 0
    assert req.responseHeaders.getRawHeaders(b"www-authenticate")
    req, _ = get(guarded, b"", method=b"POST", headers=[basic("admin", "wrong")])
    assert req.responseCode == 401 and inner.changes == 0
    req, _ = get(guarded, b"", method=b"POST", headers=[basic("root", token)])
    assert req.responseCode == 401 and inner.changes == 0
    req, body = get(guarded, b"", method=b"POST", headers=[basic("admin", token)])
    assert body == b"changed" and inner.changes == 1
    bearer = (b"authorization", b"Bearer " + token.encode())
    req, body = get(guarded, b"", method=b"POST", headers=[bearer])
    assert body == b"changed" and inner.changes == 2


def test_no_token_file_means_nobody(tmp_path):
    inner = Changer()
    req, _ = get(auth.Guarded(inner, tmp_path), b"", method=b"POST", headers=[basic("admin", "")])
    assert req.responseCode == 401 and inner.changes == 0


def test_protected_reads(tmp_path):
    token, _ = auth.load_or_create(tmp_path)
    guarded = auth.Guarded(Changer(), tmp_path, protect_reads=True)
    req, _ = get(guarded, b"", method=b"GET")
    assert req.responseCode == 401
    req, body = get(guarded, b"", method=b"GET", headers=[basic("admin", token)])
    assert body == b"state"


def test_cross_site_form_post_refused_even_with_credentials(tmp_path):
    token, _ = auth.load_or_create(tmp_path)
    inner = Changer()
    guarded = auth.Guarded(inner, tmp_path)
    evil = [
        basic("admin", token),
        (b"host", b"192.168.42.1:8067"),
        (b"origin", b"http://evil.example"),
    ]
    req, _ = get(guarded, b"", method=b"POST", headers=evil)
    assert req.responseCode == 403 and inner.changes == 0
    ours = [basic("admin", token), (b"host", b"192.168.42.1:8067")]
    ours.append((b"origin", b"http://192.168.42.1:8067"))
    req, body = get(guarded, b"", method=b"POST", headers=ours)
    assert body == b"changed" and inner.changes == 1


def test_the_token_is_taken_for_display_exactly_once(tmp_path):
    assert auth.take_for_display(tmp_path) is None  # nothing to show yet
    token, _ = auth.load_or_create(tmp_path)
    assert auth.take_for_display(tmp_path) == token
    assert auth.take_for_display(tmp_path) is None
    assert (tmp_path / "admin/token-shown").stat().st_mode & 0o777 == 0o600


def test_the_credential_banner_escapes_and_names_the_file():
    from router7.statusd.render import credential_banner

    banner = credential_banner("a<b").decode()
    assert banner.startswith("<body>") and "a&lt;b" in banner and "/perm/admin/token" in banner
