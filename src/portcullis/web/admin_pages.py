"""Platform users and the audit log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from portcullis.accounts import service
from portcullis.core.errors import Conflict, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import MFA_REQUIRED, Permission, Role
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.queries import records_query
from portcullis.ledger.service import AUDIT, decode
from portcullis.web.pages import PageRoute, form_data, text
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
Form = Annotated[FormData, Depends(form_data)]
SignedIn = Annotated[WebUser, Depends(signed_in)]
ROLES = [r.value for r in Role]


def _users(request: Request, who: WebUser, status: int = 200, **extra: Any) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        users = [service.user_view(u) for u in service.list_users(ctx)]
    context: dict[str, Any] = {
        "users": users,
        "roles": ROLES,
        "mfa_roles": {r.value for r in MFA_REQUIRED},
        "errors": {},
        "conflict": None,
        "form": {"email": "", "full_name": "", "role": Role.STAFF.value},
    }
    context.update(extra)
    return page(request, "users.html", status=status, section="users", **context)


@router.get("/users")
def users(request: Request, who: SignedIn) -> Response:
    return _users(request, who)


@router.post("/users")
def create_user(request: Request, who: SignedIn, form: Form) -> Response:
    kept = {k: text(form, k) for k in ("email", "full_name", "role")}
    password = form.get("password")
    try:
        with runtime_of(request).work(who.principal) as ctx:
            service.create_user(
                ctx, kept["email"], kept["full_name"], kept["role"], password if isinstance(password, str) else ""
            )
    except ValidationFailed as exc:
        return _users(request, who, status=400, errors=field_errors(exc.errors), form=kept)
    except Conflict as exc:
        return _users(request, who, status=409, conflict=exc.detail, form=kept)
    return redirect(request, "/users", flash="user_created")


@router.post("/users/{user_id}/role")
def change_role(request: Request, user_id: int, who: SignedIn, form: Form) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        service.update_user(ctx, user_id, role=text(form, "role"))
    return redirect(request, "/users", flash="user_updated")


@router.post("/users/{user_id}/active")
def set_active(request: Request, user_id: int, who: SignedIn, form: Form) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        service.update_user(ctx, user_id, active=text(form, "active") == "true")
    return redirect(request, "/users", flash="user_updated")


@router.post("/users/{user_id}/reset-mfa")
def reset_mfa(request: Request, user_id: int, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        service.reset_totp(ctx, user_id)
    return redirect(request, "/users", flash="mfa_reset")


def record_row(r: LedgerRecord) -> dict[str, Any]:
    body = decode(r)
    actor = body.get("actor") or {}
    return {
        "id": r.id,
        "seq": r.seq,
        "recorded_at": r.recorded_at,
        "action": r.action,
        "object_type": r.object_type,
        "object_id": r.object_id,
        "actor": actor.get("name", "") if isinstance(actor, dict) else "",
        "via": actor.get("via", "") if isinstance(actor, dict) else "",
        "changes": body.get("changes") or {},
        "leaf_hash": r.leaf_hash.hex(),
    }


def audit_query(ctx: Any, action: str, object_type: str, object_id: str) -> Any:
    return records_query(AUDIT, action, object_type, object_id)


@router.get("/audit")
def audit(
    request: Request,
    who: SignedIn,
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    after: int | None = None,
    limit: int = 50,
) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        ctx.require(Permission.AUDIT_READ)
        stmt = audit_query(ctx, action.strip(), object_type.strip(), object_id.strip())
        rows, total, nxt = paginate(ctx.session, stmt, LedgerRecord.id, after, limit)
        records = [record_row(r) for r in rows]
    filters = {"action": action, "object_type": object_type, "object_id": object_id}
    return page(
        request,
        "audit.html",
        section="audit",
        records=records,
        total=total,
        next_after=nxt,
        limit=limit,
        filters=filters,
        first_page=after is None,
    )
