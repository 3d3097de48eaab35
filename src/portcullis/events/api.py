"""REST routes for access events: sources, search, CSV export, quarantine; and the batch intake.

The batch intake is for machines (a log shipper, a badge system's export job):
it lives under /ingest/v1, outside the user API, and takes a per-source token,
which can feed that one source and do nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from portcullis.accounts.deps import Actor, get_runtime, require
from portcullis.core.context import Principal
from portcullis.core.errors import AuthenticationFailed, ValidationFailed
from portcullis.core.http import After, Limit, Page
from portcullis.core.permissions import Permission
from portcullis.events import search, sources
from portcullis.events.files import json_records_from, lines_of
from portcullis.events.ingest import BatchResult, InputCursor
from portcullis.events.runner import Ingestion

router = APIRouter(tags=["events"])
intake = APIRouter(tags=["event intake"])

Reader = Annotated[Actor, Depends(require(Permission.EVENTS_READ))]
Admin = Annotated[Actor, Depends(require(Permission.EVENTS_ADMIN))]
Exporter = Annotated[Actor, Depends(require(Permission.EVIDENCE_EXPORT))]
MAX_BATCH_BYTES = 16 * 1024 * 1024


class SourceOut(BaseModel):
    id: int
    key: str
    name: str
    format: str
    asset_id: int | None
    zone_id: int | None
    stream: str
    config: dict[str, Any]
    retention_days: int | None
    retention_reason: str
    retention_in_force_days: int | None = None
    active: bool
    has_token: bool
    raw_total: int
    events_total: int
    quarantined_total: int
    last_event_at: datetime | None
    last_ingest_at: datetime | None


class EventOut(BaseModel):
    id: int
    time: datetime
    source: str
    category: str
    action: str
    outcome: str
    actor: str
    person: str | None
    asset: str | None
    zone: str | None
    host: str
    source_address: str
    method: str
    privileged: bool
    detail: str
    ledger_stream: str
    ledger_seq: int


class QuarantineOut(BaseModel):
    id: int
    source: str
    input: str
    position: int
    offset: int | None
    reason: str
    raw: str
    ledger_stream: str
    ledger_seq: int
    created_at: datetime


class TokenOut(BaseModel):
    token: str
    endpoint: str


class BatchOut(BaseModel):
    raw: int
    events: int
    quarantined: int
    findings: int
    duplicate: bool = False


@router.get("/events/sources", response_model=list[SourceOut], summary="Event sources")
def list_sources(actor: Reader) -> list[dict[str, Any]]:
    with actor.work() as ctx:
        return [sources.source_view(s, ctx.session) for s in sources.list_sources(ctx)]


@router.post("/events/sources", response_model=SourceOut, status_code=201, summary="Register an event source")
def create_source(actor: Admin, data: sources.SourceIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return sources.source_view(sources.create_source(ctx, data), ctx.session)


@router.get("/events/sources/{key}", response_model=SourceOut, summary="One event source")
def get_source(actor: Reader, key: str) -> dict[str, Any]:
    with actor.work() as ctx:
        return sources.source_view(sources.get_source(ctx, key), ctx.session)


@router.put("/events/sources/{key}", response_model=SourceOut, summary="Replace an event source's settings")
def update_source(actor: Admin, key: str, data: sources.SourceIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return sources.source_view(sources.update_source(ctx, key, data), ctx.session)


@router.post("/events/sources/{key}/token", response_model=TokenOut, summary="Issue the source's intake token")
def issue_token(actor: Admin, key: str) -> dict[str, str]:
    """The previous token stops working. The token is shown once and stored only as a hash."""
    with actor.work() as ctx:
        token = sources.issue_token(ctx, key)
    return {"token": token, "endpoint": f"/ingest/v1/sources/{key}/batch"}


def _query(person: str | None, asset: str | None, zone: str | None, caller: Actor, **rest: Any) -> search.EventQuery:
    with caller.work() as ctx:
        ids, errors = search.subject_ids(ctx, person, asset, zone)
    if errors:
        raise ValidationFailed("Unknown reference", errors)
    return search.EventQuery(person_id=ids["person_id"], asset_id=ids["asset_id"], zone_id=ids["zone_id"], **rest)


class _Filters:
    def __init__(
        self,
        person: Annotated[str | None, Query(description="Email of the person")] = None,
        asset: Annotated[str | None, Query(description="External id of the ICT asset")] = None,
        zone: Annotated[str | None, Query(description="External id of the zone")] = None,
        source: Annotated[str | None, Query(description="Source key")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        outcome: str | None = None,
        category: str | None = None,
        privileged: bool | None = None,
        actor: Annotated[str | None, Query(description="The actor as the source wrote it")] = None,
    ) -> None:
        self.refs = (person, asset, zone)
        self.rest: dict[str, Any] = {
            "source_key": source,
            "since": since,
            "until": until,
            "outcome": outcome,
            "category": category,
            "privileged": privileged,
            "actor": actor,
        }

    def query(self, caller: Actor) -> search.EventQuery:
        return _query(*self.refs, caller, **self.rest)


Filters = Annotated[_Filters, Depends()]


@router.get("/events", response_model=Page[EventOut], summary="Search access events")
def search_events(caller: Reader, filters: Filters, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    q = filters.query(caller)
    with caller.work() as ctx:
        items, total, nxt = search.search_events(ctx, q, after=after, limit=limit)
    return {"items": items, "total": total, "next_after": nxt}


@router.get("/events/export.csv", summary="Every matching access event as CSV")
def export_events(caller: Exporter, filters: Filters) -> StreamingResponse:
    q = filters.query(caller)

    def chunks() -> Iterator[str]:
        with caller.work() as ctx:
            yield from search.export_events_csv(ctx, q)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="access-events.csv"'},
    )


@router.get("/events/quarantine", response_model=Page[QuarantineOut], summary="Records that could not be understood")
def quarantine(actor: Reader, source: str | None = None, after: After = None, limit: Limit = 50) -> dict[str, Any]:
    with actor.work() as ctx:
        items, total, nxt = search.list_quarantine(ctx, source, after=after, limit=limit)
    return {"items": items, "total": total, "next_after": nxt}


# --- intake ----------------------------------------------------------------------------


def _take_batch(request: Request, key: str, body: bytes, batch_id: str | None) -> dict[str, Any]:
    rt = get_runtime(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Send the source's token as 'Authorization: Bearer pcs_...'")
    with rt.session() as s:
        sources.source_for_token(s, key, token.strip())
    principal = Principal.system(f"event-source:{key}")
    run = Ingestion(rt, principal, key)
    records = list(json_records_from(body, 0)) if run.framing == "json-records" else list(lines_of(body))
    if batch_id is None:
        cursor = None
    else:
        # The sender's batch id is the input's identity: a retried batch is recognised, not taken twice.
        digest = hashlib.sha256(batch_id.encode("utf-8")).hexdigest()
        with rt.work(principal) as ctx:
            cursor = run.pipeline.open_input(ctx.session, f"batch:{digest}", f"batch {batch_id}", ctx.now())
        if cursor.position >= len(records) > 0:
            return {**BatchResult().as_dict(), "duplicate": True}
    if cursor is None:
        cursor = InputCursor(None, run.pipeline.preparer())
    remaining = [r for r in records if r.position > cursor.position]
    run.feed(cursor, remaining, f"batch {batch_id}" if batch_id else "http batch", None)
    return {**run.totals.as_dict(), "duplicate": False}


@intake.post(
    "/ingest/v1/sources/{key}/batch",
    response_model=BatchOut,
    summary="Feed a batch of raw records to one source",
    openapi_extra={
        "requestBody": {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": 'One record per line (a CloudTrail source takes a {"Records": [...]} document)',
        }
    },
)
async def take_batch(
    request: Request,
    key: str,
    batch_id: Annotated[
        str | None, Header(alias="Idempotency-Key", max_length=200, description="Retry-safe batch id")
    ] = None,
) -> dict[str, Any]:
    """Authenticated by the source's own token (`portcullis events source token KEY`), not a user's."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise ValidationFailed(f"A batch is at most {MAX_BATCH_BYTES} bytes; split it")
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        raise ValidationFailed(f"A batch is at most {MAX_BATCH_BYTES} bytes; split it")
    result: dict[str, Any] = await run_in_threadpool(_take_batch, request, key, body, batch_id)
    return result
