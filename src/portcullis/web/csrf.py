"""CSRF tokens for every form.

Each browser holds a random key in an HttpOnly cookie; a form's token is an HMAC
of the current session cookie under that key. A forged form from another site
cannot read either cookie, and a cookie planted from a sibling domain is useless
without the session token, which is never planted.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request, Response
from starlette.datastructures import FormData

from portcullis.core import secrets

CSRF_COOKIE = "pc_csrf"
FIELD = "csrf_token"
SESSION_COOKIE = "pc_session"
_KEY_LENGTH = 43  # secrets.new_token(32) in urlsafe base64


def _valid_key(value: str | None) -> bool:
    return value is not None and len(value) == _KEY_LENGTH and value.replace("-", "").replace("_", "").isalnum()


def browser_key(request: Request) -> str:
    key: str | None = getattr(request.state, "csrf_key", None)
    if key is None:
        key = request.cookies.get(CSRF_COOKIE)
        if not _valid_key(key):
            key = secrets.new_token(32)
            request.state.csrf_key_is_new = True
        request.state.csrf_key = key
    assert key is not None
    return key


def _mac(key: str, session_token: str) -> str:
    return hmac.new(key.encode("ascii"), b"csrf|" + session_token.encode("utf-8"), hashlib.sha256).hexdigest()


def token_for(request: Request) -> str:
    return _mac(browser_key(request), request.cookies.get(SESSION_COOKIE, ""))


def verify(request: Request, form: FormData) -> bool:
    sent = form.get(FIELD)
    key = request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not _valid_key(key):
        return False
    assert key is not None
    return hmac.compare_digest(sent.encode("utf-8"), _mac(key, request.cookies.get(SESSION_COOKIE, "")).encode())


def persist(request: Request, response: Response, secure: bool) -> None:
    """Send the browser key when this request had to make one."""
    if getattr(request.state, "csrf_key_is_new", False):
        response.set_cookie(
            CSRF_COOKIE, request.state.csrf_key, httponly=True, secure=secure, samesite="strict", path="/"
        )
