"""Read-side helpers shared by the ledger's CLI, API and pages."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from portcullis.core.errors import NotFound
from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerCheckpoint, LedgerRecord, LedgerStream
from portcullis.ledger.store import StoredTree, get_stream


def records_query(
    stream: str, action: str | None = None, object_type: str | None = None, object_id: str | None = None
) -> Select[LedgerRecord]:
    """Records of a stream, narrowed by action and object: the audit log's one query."""
    stmt = (
        select(LedgerRecord)
        .join(LedgerStream, LedgerStream.id == LedgerRecord.stream_id)
        .where(LedgerStream.name == stream)
    )
    if action or object_type or object_id:
        # Repeated so that the partial indexes (audit records only) can serve the lookup.
        stmt = stmt.where(LedgerRecord.object_type != "")
    if action:
        stmt = stmt.where(LedgerRecord.action == action)
    if object_type:
        stmt = stmt.where(LedgerRecord.object_type == object_type)
    if object_id:
        stmt = stmt.where(LedgerRecord.object_id == object_id)
    return stmt


def stream_rows(session: Session) -> list[dict[str, Any]]:
    latest = (
        select(LedgerCheckpoint.stream_id, func.max(LedgerCheckpoint.size).label("size"))
        .group_by(LedgerCheckpoint.stream_id)
        .subquery()
    )
    q = select(LedgerStream, latest.c.size).outerjoin(latest, latest.c.stream_id == LedgerStream.id)
    out = []
    for stream, cp_size in session.execute(q.order_by(LedgerStream.id)):
        out.append(
            {
                "name": stream.name,
                "size": stream.size,
                "root": merkle.Frontier.from_bytes(stream.size, stream.frontier).root().hex(),
                "last_checkpoint_size": cp_size,
                "purged_below": stream.purged_below,
                "retention_days": stream.retention_days,
                "created_at": stream.created_at,
            }
        )
    return out


def checkpoint_rows(session: Session, stream_name: str, limit: int = 100) -> list[dict[str, Any]]:
    stream = get_stream(session, stream_name)
    q = (
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.stream_id == stream.id)
        .order_by(LedgerCheckpoint.size.desc(), LedgerCheckpoint.id.desc())
        .limit(limit)
    )
    return [
        {"size": c.size, "root": c.root.hex(), "created_at": c.created_at, "note": c.note}
        for c in session.scalars(q)
    ]


def latest_checkpoint(session: Session, stream: LedgerStream) -> LedgerCheckpoint:
    cp = session.scalars(
        select(LedgerCheckpoint)
        .where(LedgerCheckpoint.stream_id == stream.id)
        .order_by(LedgerCheckpoint.size.desc(), LedgerCheckpoint.id.desc())
        .limit(1)
    ).first()
    if cp is None:
        raise NotFound(f"stream {stream.name!r} has no checkpoint yet: run `portcullis ledger checkpoint`")
    return cp


def inclusion(session: Session, stream_name: str, index: int) -> dict[str, Any]:
    """A record with its inclusion proof against the stream's latest checkpoint."""
    stream = get_stream(session, stream_name)
    cp = latest_checkpoint(session, stream)
    if not 0 <= index < cp.size:
        raise NotFound(
            f"record {index} is not covered by the latest checkpoint of {stream_name!r} (size {cp.size})"
        )
    rec = session.scalars(
        select(LedgerRecord).where(LedgerRecord.stream_id == stream.id, LedgerRecord.seq == index)
    ).one_or_none()
    if rec is None:
        raise NotFound(f"record {index} of {stream_name!r} has been purged or does not exist")
    proof = StoredTree(session, stream, cp.size).inclusion_proof(index)
    return {
        "stream": stream_name,
        "index": index,
        "leaf_hash": rec.leaf_hash.hex(),
        "payload": json.loads(rec.payload),
        "tree_size": cp.size,
        "root": cp.root.hex(),
        "proof": [h.hex() for h in proof],
        "checkpoint": cp.note,
    }
