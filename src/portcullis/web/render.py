"""Templates, the page frame (navigation, flash messages) and error pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portcullis.core.errors import FieldError, PortcullisError
from portcullis.core.permissions import Permission
from portcullis.web import csrf
from portcullis.web.session import WebUser, runtime_of

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "pc_flash"

# Flash messages travel as a code, so a planted cookie cannot put words on a page.
FLASH = {
    "saved": "Saved.",
    "created": "Created.",
    "password": "Your password has been changed.",
    "revoked": "The token has been revoked.",
    "mfa": "Two-factor authentication is now active on your account.",
    "user_created": "The user has been created.",
    "user_updated": "The user has been updated.",
    "mfa_reset": "The user's TOTP has been reset; they must enrol again at next login.",
    "override_set": "The override has been recorded.",
    "override_cleared": "The override has been cleared; the tier default applies again.",
    "logged_out": "You have been logged out.",
}


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    permission: Permission
    section: str


NAV = (
    NavItem("Dashboard", "/", Permission.SELF, "dashboard"),
    NavItem("People", "/people", Permission.INVENTORY_READ, "people"),
    NavItem("Assets", "/assets", Permission.INVENTORY_READ, "assets"),
    NavItem("Premises", "/sites", Permission.INVENTORY_READ, "premises"),
    NavItem("Providers", "/providers", Permission.INVENTORY_READ, "providers"),
    NavItem("Organisation", "/organisation", Permission.INVENTORY_READ, "organisation"),
    NavItem("Import", "/import", Permission.INVENTORY_READ, "import"),
    NavItem("Access", "/access", Permission.ACCESS_REQUEST, "access"),
    NavItem("Grants", "/access/grants", Permission.ACCESS_READ, "grants"),
    NavItem("Events", "/events", Permission.EVENTS_READ, "events"),
    NavItem("Keys", "/keys", Permission.KEYS_READ, "keys"),
    NavItem("Certificates", "/certs", Permission.CERTS_READ, "certs"),
    NavItem("Audit log", "/audit", Permission.AUDIT_READ, "audit"),
    NavItem("Ledger", "/ledger", Permission.AUDIT_READ, "ledger"),
    NavItem("Users", "/users", Permission.USERS_READ, "users"),
)


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


# Field names whose words are acronyms, shown as such.
_ACRONYMS = {"lei": "LEI", "idp": "IdP", "id": "id", "mfa": "MFA", "totp": "TOTP", "ict": "ICT"}


def _label(value: object) -> str:
    return " ".join(_ACRONYMS.get(w, w) for w in str(value).split("_"))


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = _when
env.filters["label"] = _label


def field_errors(errors: list[FieldError]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in errors:
        where = f"line {e.line}: " if e.line is not None else ""
        out.setdefault(e.field, []).append(where + e.message)
    return out


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    who: WebUser | None = getattr(request.state, "who", None)
    principal = who.principal if who and not who.mfa_pending else None
    flash_code = request.cookies.get(FLASH_COOKIE, "")
    html = env.get_template(template).render(
        request=request,
        who=who if principal else None,
        can=(principal.can if principal else (lambda _p: False)),
        P=Permission,
        nav=[n for n in NAV if principal and principal.can(n.permission)],
        csrf_field=csrf.FIELD,
        csrf_token=csrf.token_for(request),
        flash=FLASH.get(flash_code),
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    secure = runtime_of(request).settings.cookie_secure
    csrf.persist(request, response, secure)
    if flash_code:
        response.delete_cookie(FLASH_COOKIE, httponly=True, secure=secure, samesite="strict", path="/")
    return response


def redirect(request: Request, url: str, flash: str | None = None) -> RedirectResponse:
    """Post/redirect/get, with an optional message for the next page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        secure = runtime_of(request).settings.cookie_secure
        response.set_cookie(FLASH_COOKIE, flash, max_age=60, httponly=True, secure=secure, samesite="strict", path="/")
    return response


def error_page(
    request: Request, status: int, title: str, detail: str, errors: list[FieldError] | None = None
) -> Response:
    return page(request, "error.html", status=status, title=title, detail=detail, errors=errors or [])


def problem_page(request: Request, exc: PortcullisError) -> Response:
    return error_page(request, exc.status, exc.title, exc.detail, exc.errors)
