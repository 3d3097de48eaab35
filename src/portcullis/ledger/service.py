"""The one append function every state change goes through."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core.canonical import canonical_bytes, jsonable
from portcullis.core.clock import Clock
from portcullis.core.context import Context
from portcullis.ledger.models import LedgerRecord, LedgerStream

AUDIT = "audit"
REDACTED = "[redacted]"
# Belt and braces: services never pass secrets, but if one slips through a
# field with one of these names it is masked before it can be hashed in forever.
_SECRET_MARKERS = ("password", "secret", "token", "totp", "private", "key_material")


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if any(m in str(k).lower() for m in _SECRET_MARKERS) else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


def leaf_hash(data: bytes) -> bytes:
    # RFC 9162 leaf: SHA-256(0x00 || bytes).
    return hashlib.sha256(b"\x00" + data).digest()


def _stream(session: Session, name: str, clock: Clock) -> LedgerStream:
    stream = session.scalars(
        select(LedgerStream).where(LedgerStream.name == name).with_for_update()
    ).one_or_none()
    if stream is None:
        stream = LedgerStream(name=name, size=0, created_at=clock.now())
        session.add(stream)
        session.flush()
    return stream


def append(session: Session, stream_name: str, payload: Mapping[str, Any], clock: Clock) -> LedgerRecord:
    """Append one record to a stream inside the caller's transaction.

    If the caller's transaction rolls back, the record goes with it, and if this
    append fails the caller's change cannot commit: the ledger fails closed.
    """
    stream = _stream(session, stream_name, clock)
    now = clock.now()
    body = dict(_redact(payload))
    body.setdefault("time", now)
    data = canonical_bytes(body)
    record = LedgerRecord(
        stream_id=stream.id,
        seq=stream.size,
        recorded_at=now,
        payload=data.decode("utf-8"),
        leaf_hash=leaf_hash(data),
        action=str(body.get("action", "")),
        object_type=str(body.get("object_type", "")),
        object_id=str(body.get("object_id", "")),
    )
    stream.size += 1
    session.add(record)
    session.flush()
    return record


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """Changed fields as {field: [before, after]}; unchanged fields are left out."""
    before = before or {}
    after = after or {}
    out: dict[str, list[Any]] = {}
    for key in sorted(set(before) | set(after)):
        b, a = jsonable(before.get(key)), jsonable(after.get(key))
        if b != a:
            out[key] = [b, a]
    return out


def record_change(
    ctx: Context,
    action: str,
    object_type: str,
    object_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **extra: Any,
) -> LedgerRecord:
    """Audit one state change: who, what, which object, fields before and after, when."""
    payload: dict[str, Any] = {
        "action": action,
        "actor": ctx.principal.as_actor(),
        "object_type": object_type,
        "object_id": str(object_id),
        "changes": diff(before, after),
    }
    payload.update(extra)
    return append(ctx.session, AUDIT, payload, ctx.clock)


def decode(record: LedgerRecord) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(record.payload)
    return result
