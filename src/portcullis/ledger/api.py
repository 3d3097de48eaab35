"""REST routes over the ledger: records, streams, checkpoints, proofs and verification.

The operations themselves are in operations.py, shared with the pages and the CLI.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from portcullis.accounts.deps import Actor, require
from portcullis.core.http import MAX_PAGE, Page, paginate
from portcullis.core.permissions import Permission
from portcullis.ledger import queries
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.operations import consistency, run_verification, sign_checkpoints, stream_overview

router = APIRouter(tags=["ledger"])

def paginate_desc(
    session: Session, stmt: Select[Any], after: int | None, limit: int
) -> tuple[list[LedgerRecord], int, int | None]:
    """Keyset pagination on the record id, newest first; `after` is the last id already seen."""
    limit = max(1, min(limit, MAX_PAGE))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    if after is not None:
        stmt = stmt.where(LedgerRecord.id < after)
    rows = list(session.scalars(stmt.order_by(LedgerRecord.id.desc()).limit(limit + 1)))
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = rows[-1].id
    return rows, total, nxt


# -- response models ----------------------------------------------------------------


class RecordOut(BaseModel):
    stream: str
    seq: int
    recorded_at: datetime
    action: str
    object_type: str
    object_id: str
    leaf_hash: str
    payload: dict[str, Any]


class VerificationOut(BaseModel):
    time: datetime
    ok: bool
    problems: list[str]
    by: str
    # Where the verification record itself sits in the audit stream.
    seq: int


class StreamOut(BaseModel):
    name: str
    size: int
    root: str
    last_checkpoint_size: int | None
    last_checkpoint_at: datetime | None
    purged_below: int
    retention_days: int | None
    # The stream's own retention, else the proportionality default for it; null: kept for ever.
    retention_days_effective: int | None
    last_verification: VerificationOut | None


class CheckpointOut(BaseModel):
    size: int
    root: str
    created_at: datetime
    note: str


class SignedOut(BaseModel):
    stream: str
    size: int
    root: str
    created_at: datetime


class PubkeyOut(BaseModel):
    verifier_key: str


class InclusionOut(BaseModel):
    stream: str
    index: int
    leaf_hash: str
    payload: dict[str, Any]
    tree_size: int
    root: str
    proof: list[str]
    checkpoint: str


class ConsistencyOut(BaseModel):
    stream: str
    from_size: int
    to_size: int
    from_root: str
    to_root: str
    proof: list[str]


class ProblemOut(BaseModel):
    index: int | None
    kind: str
    detail: str


class ReportOut(BaseModel):
    stream: str
    size: int
    records_checked: int
    checkpoints_checked: int
    ok: bool
    problems: list[ProblemOut]


class VerifyOut(BaseModel):
    ok: bool
    reports: list[ReportOut]


# -- routes -------------------------------------------------------------------------

AuditReader = Annotated[Actor, Depends(require(Permission.AUDIT_READ))]
Exporter = Annotated[Actor, Depends(require(Permission.EVIDENCE_EXPORT))]


@router.get("/ledger/records", response_model=Page[RecordOut])
def list_records(
    actor: AuditReader,
    stream: str = "audit",
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    after: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    order: Literal["asc", "desc"] = "asc",
) -> Page[RecordOut]:
    with actor.work() as ctx:
        stmt = queries.records_query(stream, action, object_type, object_id)
        if order == "desc":
            rows, total, nxt = paginate_desc(ctx.session, stmt, after, limit)
        else:
            rows, total, nxt = paginate(ctx.session, stmt, LedgerRecord.id, after, limit)
        items = [
            RecordOut(
                stream=stream,
                seq=r.seq,
                recorded_at=r.recorded_at,
                action=r.action,
                object_type=r.object_type,
                object_id=r.object_id,
                leaf_hash=r.leaf_hash.hex(),
                payload=json.loads(r.payload),
            )
            for r in rows
        ]
        return Page[RecordOut](items=items, total=total, next_after=nxt)


@router.get("/ledger/streams", response_model=list[StreamOut])
def list_streams(actor: AuditReader) -> list[StreamOut]:
    with actor.work() as ctx:
        return [StreamOut.model_validate(r) for r in stream_overview(ctx)]


@router.get("/ledger/streams/{name:path}/checkpoints", response_model=list[CheckpointOut])
def list_checkpoints(
    actor: AuditReader, name: str, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[CheckpointOut]:
    with actor.work() as ctx:
        return [CheckpointOut.model_validate(r) for r in queries.checkpoint_rows(ctx.session, name, limit)]


@router.get("/ledger/streams/{name:path}/proof/{index}", response_model=InclusionOut)
def inclusion_proof(actor: AuditReader, name: str, index: int) -> InclusionOut:
    with actor.work() as ctx:
        return InclusionOut.model_validate(queries.inclusion(ctx.session, name, index))


@router.get("/ledger/streams/{name:path}/consistency", response_model=ConsistencyOut)
def consistency_proof(
    actor: AuditReader,
    name: str,
    size1: Annotated[int, Query(alias="from", ge=0, description="The older tree size")],
    size2: Annotated[int | None, Query(alias="to", ge=0, description="The newer tree size (default: now)")] = None,
) -> ConsistencyOut:
    with actor.work() as ctx:
        return ConsistencyOut.model_validate(consistency(ctx.session, name, size1, size2))


@router.get("/ledger/pubkey", response_model=PubkeyOut)
def pubkey(actor: AuditReader) -> PubkeyOut:
    return PubkeyOut(verifier_key=str(actor.runtime.signer.verifier))


@router.post("/ledger/checkpoints", response_model=list[SignedOut])
def checkpoint(actor: Exporter) -> list[SignedOut]:
    with actor.work() as ctx:
        return [SignedOut.model_validate(r) for r in sign_checkpoints(ctx, actor.runtime.signer)]


@router.post("/ledger/verify", response_model=VerifyOut)
def verify(actor: AuditReader, stream: str | None = None) -> VerifyOut:
    with actor.work() as ctx:
        reports = run_verification(ctx, actor.runtime.signer.verifier, stream)
        out = [ReportOut.model_validate(r.as_dict()) for r in reports]
    return VerifyOut(ok=all(r.ok for r in out), reports=out)
