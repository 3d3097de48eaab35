"""The organisation profile, its proportionality tier and the defaults it sets (§11)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData

from portcullis.core.errors import Conflict, NotFound, ValidationFailed
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import OrganisationIn, OverrideIn
from portcullis.web.forms import stored, stray, submitted, to_input
from portcullis.web.pages import PageRoute, form_data, text
from portcullis.web.registers import ORGANISATION, OVERRIDE
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
DEFAULT_LABELS = {
    "review_days.critical": "Access review interval, critical assets (days)",
    "review_days.important": "Access review interval, important assets (days)",
    "review_days.other": "Access review interval, other assets (days)",
    "retention_days.critical": "Access-log retention, critical assets (days)",
    "retention_days.important": "Access-log retention, important assets (days)",
    "retention_days.other": "Access-log retention, other assets (days)",
    "privileged_approvers": "Approvers for a privileged grant",
}
Form = Annotated[FormData, Depends(form_data)]
SignedIn = Annotated[WebUser, Depends(signed_in)]


def _page(
    request: Request,
    who: WebUser,
    status: int = 200,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    override_key: str | None = None,
    override_values: dict[str, Any] | None = None,
    override_errors: dict[str, list[str]] | None = None,
    conflict: str | None = None,
) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        org = inventory.get_organisation(ctx)
        view = inventory.organisation_view(org) if org else None
        defaults = inventory.effective_defaults(ctx)
    if values is None:
        values = stored(ORGANISATION, view) if view else {f.name: "" for f in ORGANISATION.fields}
    tier = next(iter(defaults.values()))["tier"] if defaults else ""
    return page(
        request,
        "organisation.html",
        status=status,
        section="organisation",
        spec=ORGANISATION,
        org=view,
        tier=tier,
        defaults=defaults,
        labels=DEFAULT_LABELS,
        values=values,
        errors=errors or {},
        form_errors=stray(ORGANISATION, errors or {}),
        override_key=override_key,
        override_values=override_values or {},
        override_errors=override_errors or {},
        conflict=conflict,
    )


@router.get("/organisation")
def organisation(request: Request, who: SignedIn) -> Response:
    return _page(request, who)


@router.post("/organisation")
def save_organisation(request: Request, who: SignedIn, form: Form) -> Response:
    values = submitted(ORGANISATION, form)
    try:
        data = to_input(ORGANISATION, values)
        assert isinstance(data, OrganisationIn)
        with runtime_of(request).work(who.principal) as ctx:
            inventory.set_organisation(ctx, data)
    except ValidationFailed as exc:
        return _page(request, who, 400, values=values, errors=field_errors(exc.errors))
    except Conflict as exc:
        return _page(request, who, 409, values=values, conflict=exc.detail)
    return redirect(request, "/organisation", flash="saved")


@router.post("/organisation/overrides")
def set_override(request: Request, who: SignedIn, form: Form) -> Response:
    values = submitted(OVERRIDE, form)
    try:
        data = to_input(OVERRIDE, values)
        assert isinstance(data, OverrideIn)
        with runtime_of(request).work(who.principal) as ctx:
            inventory.set_override(ctx, data)
    except ValidationFailed as exc:
        return _page(
            request,
            who,
            400,
            override_key=values["key"],
            override_values=values,
            override_errors=field_errors(exc.errors),
        )
    return redirect(request, "/organisation", flash="override_set")


@router.post("/organisation/overrides/clear")
def clear_override(request: Request, who: SignedIn, form: Form) -> Response:
    key, reason = text(form, "key"), text(form, "reason")
    try:
        with runtime_of(request).work(who.principal) as ctx:
            inventory.clear_override(ctx, key, reason)
    except (ValidationFailed, NotFound) as exc:
        errors = field_errors(exc.errors) or {"reason": [exc.detail]}
        # Shown under the clear form of that row, not the set form.
        errors = {f"clear_{k}": v for k, v in errors.items()}
        return _page(
            request, who, 400, override_key=key, override_values={"clear_reason": reason}, override_errors=errors
        )
    return redirect(request, "/organisation", flash="override_cleared")


