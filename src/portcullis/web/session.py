"""Who is signed in: the session cookie, resolved through the accounts service."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from fastapi import Request, Response

from portcullis.accounts import service
from portcullis.accounts.models import User
from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.web.csrf import SESSION_COOKIE


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    user: User
    token: str

    @property
    def mfa_pending(self) -> bool:
        """Password accepted, second factor still owed."""
        return service.needs_mfa(self.user) and not self.principal.mfa


class Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never a scheme, a host, or a protocol-relative URL."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return default
    return value


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(here, safe="/")


def load(request: Request) -> WebUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    rt = runtime_of(request)
    with rt.session() as s:
        found = service.session_principal(s, rt.clock, token)
    if found is None:
        return None
    who = WebUser(found[0], found[1], token)
    request.state.who = who
    return who


def pending(request: Request) -> WebUser:
    """Any session, including one that still owes its second factor."""
    who = load(request)
    if who is None:
        raise Redirect(login_url(request))
    return who


def signed_in(request: Request) -> WebUser:
    """A session that has passed every factor its user needs."""
    who = pending(request)
    if who.mfa_pending:
        request.state.who = None
        raise Redirect("/login/totp" if who.user.totp_enrolled_at is not None else "/login/enrol")
    return who


def set_session_cookie(response: Response, token: str, secure: bool, hours: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=hours * 3600, httponly=True, secure=secure, samesite="strict", path="/"
    )


def clear_session_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, secure=secure, samesite="strict", path="/")
