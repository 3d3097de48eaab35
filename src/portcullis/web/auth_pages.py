"""Login (password, then TOTP or first enrolment), logout."""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from portcullis.accounts import service
from portcullis.core import secrets
from portcullis.core.errors import AuthenticationFailed, Conflict, TooManyAttempts
from portcullis.web.csrf import SESSION_COOKIE
from portcullis.web.pages import PageRoute, form_data, text
from portcullis.web.render import page, redirect
from portcullis.web.session import (
    WebUser,
    clear_session_cookie,
    load,
    pending,
    runtime_of,
    safe_next,
    set_session_cookie,
)

router = APIRouter(route_class=PageRoute)
Form = Annotated[FormData, Depends(form_data)]
Pending = Annotated[WebUser, Depends(pending)]


def _with_next(path: str, nxt: str) -> str:
    return path if nxt == "/" else f"{path}?next={quote(nxt, safe='/')}"


def _signed_in(request: Request, token: str, nxt: str, flash: str | None = None) -> Response:
    rt = runtime_of(request)
    response = redirect(request, nxt, flash)
    set_session_cookie(response, token, rt.settings.cookie_secure, rt.settings.session_hours)
    return response


def qr_data_uri(svg: str) -> str:
    # As an <img> the SVG is a separate document and needs its namespace.
    if "xmlns=" not in svg:
        svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    nxt = safe_next(next)
    who = load(request)
    if who is not None and not who.mfa_pending:
        return redirect(request, nxt)
    return page(request, "login.html", email="", next=nxt, error=None)


@router.post("/login")
def login_submit(request: Request, form: Form) -> Response:
    rt = runtime_of(request)
    email, password = text(form, "email"), form.get("password")
    nxt = safe_next(text(form, "next"))
    address = request.client.host if request.client else ""
    token: str | None = None
    mfa_owed = enrolled = False
    try:
        # The attempt is committed whatever the outcome, so failures count towards the lock.
        with rt.session() as s:
            user = service.check_password(
                s, rt.clock, rt.settings, email, password if isinstance(password, str) else "", address
            )
            if user is not None:
                mfa_owed = service.needs_mfa(user)
                enrolled = user.totp_enrolled_at is not None
                old = request.cookies.get(SESSION_COOKIE)
                if old:
                    service.end_session(s, rt.clock, old)
                token = service.start_session(s, rt.clock, rt.settings, user, mfa_passed=not mfa_owed)
    except TooManyAttempts as exc:
        return page(request, "login.html", status=429, email=email, next=nxt, error=exc.detail, locked=True)
    if token is None:
        return page(
            request, "login.html", status=401, email=email, next=nxt, error="The email or password is wrong."
        )
    if not mfa_owed:
        return _signed_in(request, token, nxt)
    step = "/login/totp" if enrolled else "/login/enrol"
    return _signed_in(request, token, _with_next(step, nxt))


@router.get("/login/totp")
def totp_form(request: Request, who: Pending, next: str = "/") -> Response:
    nxt = safe_next(next)
    if not who.mfa_pending:
        return redirect(request, nxt)
    if who.user.totp_enrolled_at is None:
        return redirect(request, _with_next("/login/enrol", nxt))
    return page(request, "totp.html", next=nxt, error=None, email=who.user.email)


@router.post("/login/totp")
def totp_submit(request: Request, who: Pending, form: Form) -> Response:
    rt = runtime_of(request)
    nxt = safe_next(text(form, "next"))
    if not who.mfa_pending:
        return redirect(request, nxt)
    try:
        with rt.session() as s:
            user = service.get_user(s, who.user.id)
            service.check_totp(s, rt.clock, user, text(form, "code"), rt.settings)
            # A new session id once the privilege changes; the half-way one ends.
            token = service.start_session(s, rt.clock, rt.settings, user, mfa_passed=True)
            service.end_session(s, rt.clock, who.token)
    except (AuthenticationFailed, TooManyAttempts) as exc:
        return page(request, "totp.html", status=exc.status, next=nxt, error=exc.detail, email=who.user.email)
    return _signed_in(request, token, nxt)


def _enrolment_page(request: Request, uri: str, svg: str, nxt: str, error: str | None, status: int = 200) -> Response:
    return page(request, "enrol.html", status=status, uri=uri, qr=qr_data_uri(svg), next=nxt, error=error)


@router.get("/login/enrol")
def enrol_form(request: Request, who: Pending, next: str = "/") -> Response:
    nxt = safe_next(next)
    if who.user.totp_enrolled_at is not None:
        return redirect(request, nxt if not who.mfa_pending else _with_next("/login/totp", nxt))
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        enrolment = service.begin_totp_enrolment(ctx)
    return _enrolment_page(request, enrolment.uri, enrolment.qr_svg, nxt, None)


@router.post("/login/enrol")
def enrol_submit(request: Request, who: Pending, form: Form) -> Response:
    rt = runtime_of(request)
    nxt = safe_next(text(form, "next"))
    try:
        with rt.work(who.principal) as ctx:
            service.confirm_totp_enrolment(ctx, text(form, "code"))
            user = service.get_user(ctx.session, who.user.id)
            token = service.start_session(ctx.session, rt.clock, rt.settings, user, mfa_passed=True)
            service.end_session(ctx.session, rt.clock, who.token)
    except (AuthenticationFailed, Conflict) as exc:
        secret = who.user.totp_secret
        if secret is None:
            return redirect(request, _with_next("/login/enrol", nxt))
        # Show the same secret again: the authenticator has already scanned it.
        uri = secrets.totp_uri(secret, who.user.email)
        return _enrolment_page(request, uri, secrets.totp_qr_svg(uri), nxt, exc.detail, status=400)
    return _signed_in(request, token, nxt, flash="mfa")


@router.post("/logout")
def logout(request: Request) -> Response:
    rt = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        with rt.session() as s:
            service.end_session(s, rt.clock, token)
    response = redirect(request, "/login", flash="logged_out")
    clear_session_cookie(response, rt.settings.cookie_secure)
    return response
