"""Access events (§18, §22, §23): search them for an investigation, export them, see sources and quarantine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from portcullis.core.context import Context
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.events import search, sources
from portcullis.events.parsers.base import Category, Outcome
from portcullis.web.access_common import PAGE_SIZE, int_or_none
from portcullis.web.pages import PageRoute
from portcullis.web.render import field_errors, page
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
SignedIn = Annotated[WebUser, Depends(signed_in)]
FILTERS = ("person", "asset", "zone", "source", "since", "until", "outcome", "category")


def _time(value: str, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("Not a time", [FieldError(name, f"{value!r} is not a date and time")]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _query(ctx: Context, f: dict[str, str]) -> search.EventQuery:
    refs, errors = search.subject_ids(ctx, f["person"], f["asset"], f["zone"])
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        try:
            times[name] = _time(f[name], name)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationFailed("The search is not valid", errors)
    return search.EventQuery(
        person_id=refs["person_id"],
        asset_id=refs["asset_id"],
        zone_id=refs["zone_id"],
        source_key=f["source"] or None,
        outcome=f["outcome"] or None,
        category=f["category"] or None,
        since=times["since"],
        until=times["until"],
    )


@router.get("/events")
def events_page(request: Request, who: SignedIn) -> Response:
    params = request.query_params
    filters = {k: params.get(k, "").strip() for k in FILTERS}
    limit = int_or_none(params.get("limit")) or PAGE_SIZE
    rows: list[dict[str, Any]] = []
    total, nxt, errors, status = 0, None, {}, 200
    with runtime_of(request).work(who.principal) as ctx:
        source_rows = [sources.source_view(s, ctx.session) for s in sources.list_sources(ctx)]
        try:
            q = _query(ctx, filters)
            rows, total, nxt = search.search_events(ctx, q, after=int_or_none(params.get("after")), limit=limit)
        except ValidationFailed as exc:
            errors, status = field_errors(exc.errors) or {"_": [exc.detail]}, 400
    kept = {k: v for k, v in filters.items() if v}
    return page(
        request,
        "events.html",
        status=status,
        section="events",
        rows=rows,
        total=total,
        next_url=f"/events?{urlencode({**kept, 'after': nxt, 'limit': limit})}" if nxt else None,
        export_url="/events/export.csv?" + urlencode(kept),
        filters=filters,
        errors=errors,
        sources=source_rows,
        outcomes=[o.value for o in Outcome],
        categories=[c.value for c in Category if c is not Category.OTHER],
    )


@router.get("/events/export.csv")
def export_page(request: Request, who: SignedIn) -> Response:
    filters = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        # Refused here, before the response starts: the stream below cannot change its status any more.
        ctx.require(Permission.EVIDENCE_EXPORT)
        q = _query(ctx, filters)
        q.check()

    def chunks() -> Iterator[str]:
        with rt.work(who.principal) as ctx:
            yield from search.export_events_csv(ctx, q)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="access-events.csv"'},
    )


@router.get("/events/quarantine")
def quarantine_page(request: Request, who: SignedIn) -> Response:
    params = request.query_params
    source = params.get("source", "").strip()
    limit = int_or_none(params.get("limit")) or PAGE_SIZE
    with runtime_of(request).work(who.principal) as ctx:
        rows, total, nxt = search.list_quarantine(
            ctx, source or None, after=int_or_none(params.get("after")), limit=limit
        )
    kept = {"source": source} if source else {}
    return page(
        request,
        "events_quarantine.html",
        section="events",
        rows=rows,
        total=total,
        source=source,
        next_url=f"/events/quarantine?{urlencode({**kept, 'after': nxt, 'limit': limit})}" if nxt else None,
    )
