"""My access: what the acting person holds and has asked for, and the form to ask for more."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from portcullis.access import catalogue, grants, requests
from portcullis.access.models import RequestStatus
from portcullis.access.schemas import RequestIn
from portcullis.core.errors import Conflict, FieldError, ValidationFailed
from portcullis.web.access_common import (
    MAX_OPTIONS,
    Form,
    SignedIn,
    describe_requests,
    frame,
    target_label,
)
from portcullis.web.forms import FORM
from portcullis.web.pages import PageRoute, text
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of

router = APIRouter(route_class=PageRoute)
FIELDS = ("target", "subject_id", "justification", "duration_days")
# The form offers one drop-down for "what": the schema's two ids are both that field.
_ON_TARGET = {"entitlement_id", "role_id"}


def _blank() -> dict[str, str]:
    return {name: "" for name in FIELDS}


def _mine(
    request: Request,
    who: WebUser,
    status: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    conflict: str | None = None,
) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        me = catalogue.acting_person(ctx)
        held = [grants.grant_view(g) for g in grants.my_access(ctx)]
        pending = {}
        for who_field in ("subject_id", "requester_id"):
            rows, _, _ = requests.list_requests(
                ctx, status=RequestStatus.PENDING.value, limit=MAX_OPTIONS, **{who_field: me.id}
            )
            pending.update({r.id: r for r in rows})
        waiting = describe_requests(ctx, [requests.request_view(pending[k]) for k in sorted(pending)])
        ents, _, _ = catalogue.list_entitlements(ctx, limit=MAX_OPTIONS)
        catalogue_views = [catalogue.entitlement_view(e) for e in ents]
        roles, _, _ = catalogue.list_roles(ctx, limit=MAX_OPTIONS)
        role_views = [catalogue.role_view(r) for r in roles]
        others = [(str(i), f"{name} ({email})") for i, name, email in catalogue.colleagues(ctx) if i != me.id]
        myself = (str(me.id), f"Myself: {me.full_name} ({me.email})")
        me_view = {"full_name": me.full_name, "email": me.email, "department": me.department}
    entitlement_choices = [(f"entitlement:{e['id']}", _entitlement_label(e)) for e in catalogue_views if e["active"]]
    role_choices = [(f"role:{r['id']}", f"{r['name']} ({r['key']})") for r in role_views]
    values = values or _blank()
    if not values["subject_id"]:
        values["subject_id"] = myself[0]
    errors = errors or {}
    known = set(FIELDS)
    return page(
        request,
        "access_mine.html",
        status=status,
        **frame(
            request,
            who,
            "access",
            me=me_view,
            held=held,
            targets={e["id"]: target_label(e) for e in catalogue_views},
            waiting=waiting,
            entitlement_choices=entitlement_choices,
            role_choices=role_choices,
            subjects=[myself, *others],
            values=values,
            errors=errors,
            form_errors=[m for k, ms in errors.items() if k not in known for m in ms],
            conflict=conflict,
            default_days=requests.DEFAULT_DURATION_DAYS,
        ),
    )


def _entitlement_label(view: dict[str, Any]) -> str:
    marks = [m for m, on in (("privileged", view["privileged"]), ("remote admin", view["remote_admin"])) if on]
    return str(view["name"]) + (f" [{', '.join(marks)}]" if marks else "")


@router.get("/access")
def my_access(request: Request, who: SignedIn) -> Response:
    return _mine(request, who)


def _parse(values: dict[str, str]) -> RequestIn:
    """The schema the service takes, or ValidationFailed naming the form's own fields."""
    errors: list[FieldError] = []
    data: dict[str, Any] = {"justification": values["justification"]}
    kind, _, ident = values["target"].partition(":")
    if kind in ("entitlement", "role") and ident.isdigit():
        data[f"{kind}_id"] = int(ident)
    else:
        errors.append(FieldError("target", "choose an entitlement or a role"))
    if values["subject_id"].isdigit():
        data["subject_id"] = int(values["subject_id"])
    else:
        errors.append(FieldError("subject_id", "choose who would hold the access"))
    if values["duration_days"]:
        data["duration_days"] = values["duration_days"]
    try:
        parsed = RequestIn.model_validate(data)
    except ValidationError as exc:
        named = {e.field for e in errors}
        for err in exc.errors():
            where = str(err["loc"][0]) if err["loc"] else FORM
            where = "target" if where in _ON_TARGET else where
            if where not in named:
                errors.append(FieldError(where, _message(err)))
        raise ValidationFailed("The request cannot be made", errors) from None
    if errors:
        raise ValidationFailed("The request cannot be made", errors)
    return parsed


def _message(err: Any) -> str:
    if err["type"] == "missing":
        return "is required"
    if err["type"] == "string_too_short":
        return f"say why the access is needed, in at least {err['ctx']['min_length']} characters"
    if err["type"] in ("int_parsing", "int_type"):
        return "is a whole number of days"
    message: str = str(err["msg"])
    return message.removeprefix("Value error, ")


def _on_form(errors: list[FieldError]) -> dict[str, list[str]]:
    out = field_errors(errors)
    for name in _ON_TARGET:
        if name in out:
            out.setdefault("target", []).extend(out.pop(name))
    return out


@router.post("/access/requests")
def make_request(request: Request, who: SignedIn, form: Form) -> Response:
    values = {name: text(form, name) for name in FIELDS}
    try:
        data = _parse(values)
        with runtime_of(request).work(who.principal) as ctx:
            requests.request_access(ctx, data)
    except ValidationFailed as exc:
        return _mine(request, who, 400, values, _on_form(exc.errors) or {FORM: [exc.detail]})
    except Conflict as exc:
        return _mine(request, who, 409, values, _on_form(exc.errors), conflict=exc.detail)
    return redirect(request, "/access?done=requested")


@router.post("/access/requests/{request_id:int}/cancel")
def cancel(request: Request, request_id: int, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        requests.cancel_request(ctx, request_id)
    return redirect(request, "/access?done=cancelled")
