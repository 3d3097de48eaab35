"""Every grant and every open finding, for those who review access; revocation and resolution for access admins."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from portcullis.access import findings, grants
from portcullis.access.models import FindingStatus, GrantStatus
from portcullis.core.errors import Conflict, ValidationFailed
from portcullis.web.access_common import (
    PAGE_SIZE,
    Form,
    SignedIn,
    asset_options,
    frame,
    int_or_none,
    label_map,
    people_options,
    zone_options,
)
from portcullis.web.pages import PageRoute, text
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of

router = APIRouter(route_class=PageRoute)
GRANT_FILTERS = ("person_id", "entitlement_id", "asset_id", "zone_id", "status")
FINDING_FILTERS = ("kind", "status", "owner_id", "person_id")
ANY = "any"


def _limit(request: Request) -> int:
    return int_or_none(request.query_params.get("limit")) or PAGE_SIZE


def _next_url(path: str, kept: dict[str, str], nxt: int | None, limit: int) -> str | None:
    return f"{path}?" + urlencode({**kept, "after": nxt, "limit": limit}) if nxt else None


def _grants(
    request: Request,
    who: WebUser,
    status: int = 200,
    failed_id: int | None = None,
    reason: str = "",
    errors: dict[str, list[str]] | None = None,
) -> Response:
    params = request.query_params
    filters = {k: params.get(k, "").strip() for k in GRANT_FILTERS}
    kwargs: dict[str, Any] = {k: int_or_none(filters[k]) for k in GRANT_FILTERS if k != "status"}
    # Active grants by default: what someone holds now is what a reviewer looks at first.
    state = filters["status"] or GrantStatus.ACTIVE.value
    kwargs["status"] = None if state == ANY else state
    limit = _limit(request)
    with runtime_of(request).work(who.principal) as ctx:
        rows, total, nxt = grants.list_grants(
            ctx, **kwargs, after=int_or_none(params.get("after")), limit=limit
        )
        views = [grants.grant_view(g) for g in rows]
        options = {"people": people_options(ctx), "assets": asset_options(ctx), "zones": zone_options(ctx)}
    filters["status"] = state
    kept = {k: v for k, v in filters.items() if v}
    return page(
        request,
        "access_grants.html",
        status=status,
        **frame(
            request,
            who,
            "grants",
            rows=views,
            total=total,
            next_url=_next_url("/access/grants", kept, nxt, limit),
            filters=filters,
            options=options,
            labels={k: label_map(v) for k, v in options.items()},
            statuses=[s.value for s in GrantStatus] + [ANY],
            back="/access/grants?" + urlencode(kept),
            failed_id=failed_id,
            reason=reason,
            errors=errors or {},
        ),
    )


@router.get("/access/grants")
def grants_page(request: Request, who: SignedIn) -> Response:
    return _grants(request, who)


@router.post("/access/grants/{grant_id:int}/revoke")
def revoke(request: Request, grant_id: int, who: SignedIn, form: Form) -> Response:
    reason = text(form, "reason")
    try:
        with runtime_of(request).work(who.principal) as ctx:
            grants.revoke_grant(ctx, grant_id, reason)
    except ValidationFailed as exc:
        return _grants(request, who, 400, grant_id, reason, field_errors(exc.errors) or {"reason": [exc.detail]})
    except Conflict as exc:
        return _grants(request, who, 409, grant_id, reason, {"reason": [exc.detail]})
    return redirect(request, _back(form, "/access/grants") + "done=revoked")


def _back(form: Any, default: str) -> str:
    """Where the list was, filters kept, so a revocation does not lose the reviewer's place."""
    back = text(form, "back")
    if not back.startswith(default) or "//" in back or "\\" in back:
        back = default
    return back + ("&" if "?" in back else "?")


def _findings(
    request: Request,
    who: WebUser,
    status: int = 200,
    failed_id: int | None = None,
    resolution: str = "",
    errors: dict[str, list[str]] | None = None,
) -> Response:
    params = request.query_params
    filters = {k: params.get(k, "").strip() for k in FINDING_FILTERS}
    state = filters["status"] or FindingStatus.OPEN.value
    limit = _limit(request)
    with runtime_of(request).work(who.principal) as ctx:
        rows, total, nxt = findings.list_findings(
            ctx,
            kind=filters["kind"] or None,
            status=None if state == ANY else state,
            owner_id=int_or_none(filters["owner_id"]),
            person_id=int_or_none(filters["person_id"]),
            after=int_or_none(params.get("after")),
            limit=limit,
        )
        views = [findings.finding_view(f) for f in rows]
        people = people_options(ctx)
    filters["status"] = state
    kept = {k: v for k, v in filters.items() if v}
    return page(
        request,
        "access_findings.html",
        status=status,
        **frame(
            request,
            who,
            "grants",
            rows=views,
            total=total,
            next_url=_next_url("/access/findings", kept, nxt, limit),
            filters=filters,
            people=people,
            statuses=[s.value for s in FindingStatus] + [ANY],
            back="/access/findings?" + urlencode(kept),
            failed_id=failed_id,
            resolution=resolution,
            errors=errors or {},
        ),
    )


@router.get("/access/findings")
def findings_page(request: Request, who: SignedIn) -> Response:
    return _findings(request, who)


@router.post("/access/findings/{finding_id:int}/resolve")
def resolve(request: Request, finding_id: int, who: SignedIn, form: Form) -> Response:
    resolution = text(form, "resolution")
    try:
        with runtime_of(request).work(who.principal) as ctx:
            findings.resolve_finding(ctx, finding_id, resolution)
    except ValidationFailed as exc:
        errors = field_errors(exc.errors) or {"resolution": [exc.detail]}
        return _findings(request, who, 400, finding_id, resolution, errors)
    except Conflict as exc:
        return _findings(request, who, 409, finding_id, resolution, {"resolution": [exc.detail]})
    return redirect(request, _back(form, "/access/findings") + "done=resolved")
