"""Ledger operations shared by the API, the pages and the command line.

Signing checkpoints and recording a verification change state, so they take a
Context, check permission and leave an audit record like every other service.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portcullis.core.context import Context
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.ledger import queries, retention
from portcullis.ledger.checkpoints import checkpoint_all
from portcullis.ledger.models import LedgerCheckpoint, LedgerRecord, LedgerStream
from portcullis.ledger.note import Signer, VerifierKey
from portcullis.ledger.service import AUDIT, record_change
from portcullis.ledger.store import StoredTree, get_stream
from portcullis.ledger.verify import StreamReport, verify_all

VERIFIED = "ledger.verified"
CHECKPOINTED = "ledger.checkpointed"
# object_type/object_id of the verification records, as the CLI writes them; "*" is a run over every stream.
LEDGER_OBJECT = "ledger"
EVERY_STREAM = "*"


def last_verification(session: Session, name: str) -> dict[str, Any] | None:
    """The latest recorded verification that covered stream `name`, or None."""
    q = (
        select(LedgerRecord)
        .join(LedgerStream, LedgerStream.id == LedgerRecord.stream_id)
        .where(
            LedgerStream.name == AUDIT,
            LedgerRecord.action == VERIFIED,
            LedgerRecord.object_type != "",  # lets the partial index serve this
            LedgerRecord.object_type == LEDGER_OBJECT,
            LedgerRecord.object_id.in_((name, EVERY_STREAM)),
        )
        .order_by(LedgerRecord.seq.desc())
        .limit(1)
    )
    rec = session.scalars(q).first()
    if rec is None:
        return None
    body = json.loads(rec.payload)
    # A run over every stream made before this stream existed does not mention it:
    # no older run can have, since streams are never removed.
    for result in body.get("results") or []:
        if isinstance(result, dict) and result.get("stream") == name:
            actor = body.get("actor")
            return {
                "time": rec.recorded_at,
                "ok": bool(result.get("ok")),
                "problems": [str(p) for p in result.get("problems") or []],
                "by": str(actor.get("name", "")) if isinstance(actor, dict) else "",
                "seq": rec.seq,
            }
    return None


def _latest_checkpoint_times(session: Session) -> dict[str, datetime]:
    latest = select(func.max(LedgerCheckpoint.id)).group_by(LedgerCheckpoint.stream_id).scalar_subquery()
    q = (
        select(LedgerStream.name, LedgerCheckpoint.created_at)
        .join(LedgerCheckpoint, LedgerCheckpoint.stream_id == LedgerStream.id)
        .where(LedgerCheckpoint.id.in_(latest))
    )
    return {name: at for name, at in session.execute(q)}


def stream_overview(ctx: Context) -> list[dict[str, Any]]:
    """Every stream with its head, its latest checkpoint and the last verification of it."""
    ctx.require(Permission.AUDIT_READ)
    times = _latest_checkpoint_times(ctx.session)
    rows = queries.stream_rows(ctx.session)
    streams = {st.name: st for st in ctx.session.scalars(select(LedgerStream))}
    for row in rows:
        row["last_checkpoint_at"] = times.get(row["name"])
        # What retention actually applies: the stream's own, else the tier's default for it.
        row["retention_days_effective"] = retention.retention_days(ctx.session, streams[row["name"]])
        row["last_verification"] = last_verification(ctx.session, row["name"])
    return rows


def sign_checkpoints(ctx: Context, signer: Signer) -> list[dict[str, Any]]:
    """Sign a checkpoint of every stream that grew since its last one."""
    ctx.require(Permission.EVIDENCE_EXPORT)
    grown = [
        r["name"]
        for r in queries.stream_rows(ctx.session)
        if r["last_checkpoint_size"] is None or r["size"] != r["last_checkpoint_size"]
    ]
    if not grown:
        return []
    # Recorded before signing, so the checkpoints just made also cover who asked for them.
    record_change(ctx, CHECKPOINTED, LEDGER_OBJECT, EVERY_STREAM, None, None, streams=grown)
    made = checkpoint_all(ctx.session, signer, ctx.now())
    names = {sid: name for sid, name in ctx.session.execute(select(LedgerStream.id, LedgerStream.name))}
    return [
        {"stream": names[c.stream_id], "size": c.size, "root": c.root.hex(), "created_at": c.created_at}
        for c in made
    ]


def run_verification(
    ctx: Context, key: VerifierKey, stream: str | None = None, external: Iterable[str] = ()
) -> list[StreamReport]:
    """Recompute the streams against their checkpoints (and any kept outside); the result is recorded as evidence."""
    ctx.require(Permission.AUDIT_READ)
    if stream is not None:
        get_stream(ctx.session, stream)  # an unknown name is an error, not an empty success
    reports = verify_all(ctx.session, key, stream, external)
    results = [
        {"stream": r.stream, "size": r.size, "ok": r.ok, "problems": [str(p) for p in r.problems]} for r in reports
    ]
    record_change(ctx, VERIFIED, LEDGER_OBJECT, stream or EVERY_STREAM, None, None, results=results)
    return reports


def consistency(session: Session, name: str, size1: int, size2: int | None) -> dict[str, Any]:
    stream = get_stream(session, name)
    size2 = stream.size if size2 is None else size2
    if size2 > stream.size:
        msg = f"stream {name!r} has {stream.size} records; 'to' ({size2}) cannot exceed that"
        raise ValidationFailed(msg, [FieldError("to", msg)])
    if size1 > size2:
        msg = f"'from' ({size1}) must not be larger than 'to' ({size2})"
        raise ValidationFailed(msg, [FieldError("from", msg)])
    old, new = StoredTree(session, stream, size1), StoredTree(session, stream, size2)
    return {
        "stream": name,
        "from_size": size1,
        "to_size": size2,
        "from_root": old.root().hex(),
        "to_root": new.root().hex(),
        "proof": [h.hex() for h in new.consistency_proof(size1)],
    }
