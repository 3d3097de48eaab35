"""My account: password, TOTP status, API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from portcullis.accounts import service
from portcullis.core.errors import AuthenticationFailed, Conflict, ValidationFailed
from portcullis.core.permissions import PERMISSIONS, Role
from portcullis.web.pages import PageRoute, form_data, text
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
Form = Annotated[FormData, Depends(form_data)]
SignedIn = Annotated[WebUser, Depends(signed_in)]


def _account(request: Request, who: WebUser, status: int = 200, **extra: Any) -> Response:
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        user = service.user_view(service.get_user(ctx.session, who.user.id))
        tokens = [service.token_view(t) for t in service.list_api_tokens(ctx)]
    context: dict[str, Any] = {
        "user": user,
        "tokens": tokens,
        "scopes": sorted(p.value for p in PERMISSIONS[Role(who.user.role)]),
        "password_errors": {},
        "token_errors": {},
        "token_form": {"name": "", "days": "90", "scopes": []},
        "new_token": None,
        "now": rt.clock.now(),
    }
    context.update(extra)
    return page(request, "account.html", status=status, section="account", **context)


@router.get("/account")
def account(request: Request, who: SignedIn) -> Response:
    return _account(request, who)


@router.post("/account/password")
def change_password(request: Request, who: SignedIn, form: Form) -> Response:
    current, new, repeat = (form.get(k) for k in ("current_password", "new_password", "repeat_password"))
    if not all(isinstance(v, str) for v in (current, new, repeat)) or new != repeat:
        errors = {"repeat_password": ["does not match the new password"]}
        return _account(request, who, status=400, password_errors=errors)
    assert isinstance(current, str)
    assert isinstance(new, str)
    try:
        with runtime_of(request).work(who.principal) as ctx:
            service.change_password(ctx, current, new)
    except AuthenticationFailed as exc:
        return _account(request, who, status=400, password_errors={"current_password": [exc.detail]})
    except Conflict as exc:
        return _account(request, who, status=400, password_errors={"new_password": [exc.detail]})
    return redirect(request, "/account", flash="password")


@router.post("/account/tokens")
def create_token(request: Request, who: SignedIn, form: Form) -> Response:
    name = text(form, "name")
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    days_raw = text(form, "days")
    kept = {"name": name, "days": days_raw, "scopes": scopes}
    if not days_raw.isdigit():
        errors = {"days": ["must be a whole number of days"]}
        return _account(request, who, status=400, token_errors=errors, token_form=kept)
    try:
        with runtime_of(request).work(who.principal) as ctx:
            tok, plaintext = service.create_api_token(ctx, name, scopes, int(days_raw))
            created = service.token_view(tok)
    except ValidationFailed as exc:
        return _account(request, who, status=400, token_errors=field_errors(exc.errors), token_form=kept)
    return _account(request, who, new_token={"plaintext": plaintext, **created})


@router.post("/account/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        service.revoke_api_token(ctx, token_id)
    return redirect(request, "/account", flash="revoked")


