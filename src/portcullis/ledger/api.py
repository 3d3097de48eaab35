"""REST routes over the audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from portcullis.accounts.deps import Actor, require
from portcullis.core.http import Page, paginate
from portcullis.core.permissions import Permission
from portcullis.ledger.models import LedgerRecord, LedgerStream

router = APIRouter(tags=["ledger"])


class RecordOut(BaseModel):
    stream: str
    seq: int
    recorded_at: datetime
    action: str
    object_type: str
    object_id: str
    leaf_hash: str
    payload: dict[str, Any]


@router.get("/ledger/records", response_model=Page[RecordOut])
def list_records(
    actor: Annotated[Actor, Depends(require(Permission.AUDIT_READ))],
    stream: str = "audit",
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    after: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[RecordOut]:
    with actor.work() as ctx:
        stmt = (
            select(LedgerRecord)
            .join(LedgerStream, LedgerStream.id == LedgerRecord.stream_id)
            .where(LedgerStream.name == stream)
        )
        if action:
            stmt = stmt.where(LedgerRecord.action == action)
        if object_type:
            stmt = stmt.where(LedgerRecord.object_type == object_type)
        if object_id:
            stmt = stmt.where(LedgerRecord.object_id == object_id)
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
