"""The access catalogue: entitlements and roles, listed for readers, created and edited by access admins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic_core import PydanticUndefined
from starlette.datastructures import FormData

from portcullis.access import catalogue
from portcullis.access.models import ApproverKind
from portcullis.access.schemas import AccessRoleIn, EntitlementIn
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, PermissionDenied, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory.models import PersonKind
from portcullis.web.access_common import (
    MAX_OPTIONS,
    Form,
    SignedIn,
    asset_options,
    frame,
    zone_options,
)
from portcullis.web.forms import stray, submitted, to_input
from portcullis.web.pages import PageRoute
from portcullis.web.registers import Field, Register
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of

router = APIRouter(route_class=PageRoute)

# "several" is a set of check boxes: the form sends one value per box ticked.
ENTITLEMENT = Register(
    slug="access/entitlements",
    title="Entitlements",
    singular="entitlement",
    noun="entitlement",
    plural="entitlements",
    schema=EntitlementIn,
    section="grants",
    fields=(
        Field("key", "Key", required=True, help="A stable identifier, e.g. wallet-hot.signer."),
        Field("name", "Name", required=True),
        Field("description", "Description", "textarea"),
        Field("asset_id", "ICT asset", "ref", ref="assets", help="Logical access (§21): an asset or a zone, not both."),
        Field("zone_id", "Zone", "ref", ref="zones", help="Physical access (§19)."),
        Field("privileged", "Privileged access", "bool"),
        Field("remote_admin", "Remote administration", "bool"),
        Field("required_training", "Required training", "tags", help="Course codes, separated by commas."),
        Field("max_duration_days", "Maximum duration (days)", nullable=True),
        Field(
            "approvers",
            "Approved by",
            "several",
            choices=tuple(k.value for k in ApproverKind),
            help="The owner of the asset or zone, the holder's manager, a security officer.",
        ),
        Field(
            "min_approvals",
            "Distinct approvers needed",
            nullable=True,
            help="Empty: the tier's default for privileged access, else one.",
        ),
        Field("scope", "Scope", "textarea", help="For service accounts and applications: the minimum they need."),
        Field("active", "Can be requested", "bool"),
    ),
    columns=(),
    filters=(),
)

ROLE = Register(
    slug="access/roles",
    title="Roles",
    singular="role",
    noun="role",
    plural="roles",
    schema=AccessRoleIn,
    section="grants",
    fields=(
        Field("key", "Key", required=True),
        Field("name", "Name", required=True),
        Field("description", "Description", "textarea"),
        Field("departments", "Departments", "tags", help="Who is eligible; empty means any. Separated by commas."),
        Field("person_kinds", "Kinds of person", "several", choices=tuple(k.value for k in PersonKind),
              help="None ticked means any."),
        Field("required_training", "Required training", "tags", help="Course codes, separated by commas."),
        Field("entitlement_ids", "Entitlements", "refs", ref="entitlements"),
    ),
    columns=(),
    filters=(),
)

def _values_from(reg: Register, form: FormData) -> dict[str, Any]:
    values = submitted(reg, form)
    for f in reg.fields:
        if f.kind == "several":
            values[f.name] = [v for v in form.getlist(f.name) if isinstance(v, str) and v]
    return values


def _values_stored(reg: Register, view: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in reg.fields:
        v = view.get(f.name)
        if f.kind == "bool":
            values[f.name] = bool(v)
        elif f.kind == "several" or f.kind == "refs":
            values[f.name] = [str(i) for i in (v or [])]
        elif f.kind == "tags":
            values[f.name] = ", ".join(v or [])
        else:
            values[f.name] = "" if v is None else str(v)
    return values


def _defaults(reg: Register) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in reg.fields:
        spec = reg.schema.model_fields[f.name]
        d = spec.get_default(call_default_factory=True)
        if f.kind == "bool":
            values[f.name] = bool(d) if d is not PydanticUndefined else False
        elif f.kind in ("several", "refs"):
            values[f.name] = [str(getattr(i, "value", i)) for i in (d or [])] if isinstance(d, list) else []
        elif d is PydanticUndefined or d is None or isinstance(d, list):
            values[f.name] = ""
        else:
            values[f.name] = str(d)
    return values


def _entitlement_options(ctx: Context) -> list[tuple[str, str]]:
    rows, _, _ = catalogue.list_entitlements(ctx, limit=MAX_OPTIONS)
    return [(str(e.id), f"{e.name} ({e.key})") for e in rows]


def _options(ctx: Context, reg: Register) -> dict[str, list[tuple[str, str]]]:
    if reg is ENTITLEMENT:
        return {"assets": asset_options(ctx), "zones": zone_options(ctx)}
    return {"entitlements": _entitlement_options(ctx)}


@router.get("/access/catalogue")
def catalogue_page(request: Request, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        ents, ent_total, _ = catalogue.list_entitlements(ctx, limit=MAX_OPTIONS)
        entitlements = [catalogue.entitlement_view(e) for e in ents]
        rows, role_total, _ = catalogue.list_roles(ctx, limit=MAX_OPTIONS)
        roles = [catalogue.role_view(r) for r in rows]
    names = {e["id"]: e["name"] for e in entitlements}
    return page(
        request,
        "access_catalogue.html",
        **frame(
            request,
            who,
            "grants",
            entitlements=entitlements,
            entitlement_total=ent_total,
            roles=roles,
            role_total=role_total,
            names=names,
        ),
    )


def _form(
    request: Request,
    who: WebUser,
    reg: Register,
    values: dict[str, Any],
    item_id: int | None,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    conflict: str | None = None,
) -> Response:
    # The form is for those who may save it; the service refuses the others anyway.
    if not who.principal.can(Permission.ACCESS_ADMIN):
        raise PermissionDenied(f"{who.principal.name} ({who.principal.role.value}) may not access.admin")
    with runtime_of(request).work(who.principal) as ctx:
        options = _options(ctx, reg)
    return page(
        request,
        "access_form.html",
        status=status,
        **frame(
            request,
            who,
            "grants",
            reg=reg,
            values=values,
            item_id=item_id,
            options=options,
            errors=errors or {},
            form_errors=stray(reg, errors or {}),
            conflict=conflict,
        ),
    )


def _save(request: Request, who: WebUser, reg: Register, form: FormData, item_id: int | None) -> Response:
    values = _values_from(reg, form)
    try:
        data = to_input(reg, values)
        with runtime_of(request).work(who.principal) as ctx:
            if item_id is None:
                fn: Callable[..., Any] = getattr(catalogue, f"create_{reg.noun}")
                fn(ctx, data)
            else:
                fn = getattr(catalogue, f"update_{reg.noun}")
                fn(ctx, item_id, data)
    except ValidationFailed as exc:
        return _form(request, who, reg, values, item_id, 400, errors=field_errors(exc.errors))
    except Conflict as exc:
        return _form(request, who, reg, values, item_id, 409, errors=field_errors(exc.errors), conflict=exc.detail)
    return redirect(request, "/access/catalogue?done=" + ("created" if item_id is None else "saved"))


def _register(reg: Register) -> None:
    base = f"/{reg.slug}"
    getter: Callable[..., Any] = getattr(catalogue, f"get_{reg.noun}")
    viewer: Callable[..., dict[str, Any]] = getattr(catalogue, f"{reg.noun}_view")

    def new_page(request: Request, who: SignedIn) -> Response:
        return _form(request, who, reg, _defaults(reg), None)

    def create(request: Request, who: SignedIn, form: Form) -> Response:
        return _save(request, who, reg, form, None)

    def edit_page(request: Request, item_id: int, who: SignedIn) -> Response:
        with runtime_of(request).work(who.principal) as ctx:
            view = viewer(getter(ctx, item_id))
        return _form(request, who, reg, _values_stored(reg, view), item_id)

    def update(request: Request, item_id: int, who: SignedIn, form: Form) -> Response:
        return _save(request, who, reg, form, item_id)

    name = reg.noun
    router.add_api_route(f"{base}/new", new_page, methods=["GET"], name=f"access_{name}_new")
    router.add_api_route(base, create, methods=["POST"], name=f"access_{name}_create")
    router.add_api_route(f"{base}/{{item_id:int}}/edit", edit_page, methods=["GET"], name=f"access_{name}_edit")
    router.add_api_route(f"{base}/{{item_id:int}}", update, methods=["POST"], name=f"access_{name}_update")


_register(ENTITLEMENT)
_register(ROLE)
