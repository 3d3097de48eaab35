"""The one append function every state change goes through."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from portcullis.core.canonical import canonical_bytes, jsonable
from portcullis.core.clock import Clock
from portcullis.core.context import Context
from portcullis.ledger.checkpoints import Autosign, checkpoint_if_due
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.store import Entry, append_entries, lock_stream

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


@dataclass(frozen=True)
class LedgerRef:
    """Where a record sits: its stream and its leaf index there."""

    stream: str
    seq: int


def _entry(payload: Mapping[str, Any], now: datetime) -> Entry:
    body = dict(_redact(payload))
    body.setdefault("time", now)
    return Entry(
        canonical_bytes(body),
        action=str(body.get("action", "")),
        object_type=str(body.get("object_type", "")),
        object_id=str(body.get("object_id", "")),
    )


def append_many(
    session: Session,
    stream_name: str,
    payloads: Iterable[Mapping[str, Any]],
    clock: Clock,
    autosign: Autosign | None = None,
) -> list[LedgerRef]:
    """Append records to a stream inside the caller's transaction, in one batch.

    If the caller's transaction rolls back, the records go with it, and if this
    append fails the caller's change cannot commit: the ledger fails closed.
    """
    now = clock.now()
    entries = [_entry(p, now) for p in payloads]
    if not entries:
        return []
    stream = lock_stream(session, stream_name, now)
    first = append_entries(session, stream, entries, now)
    checkpoint_if_due(session, stream, autosign, now)
    return [LedgerRef(stream_name, first + i) for i in range(len(entries))]


def append(
    session: Session, stream_name: str, payload: Mapping[str, Any], clock: Clock, autosign: Autosign | None = None
) -> LedgerRef:
    """Append one record (see append_many)."""
    return append_many(session, stream_name, [payload], clock, autosign)[0]


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


@dataclass(frozen=True)
class Change:
    """One state change to audit: the action, the object, its fields before and after."""

    action: str
    object_type: str
    object_id: object
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _payload(ctx: Context, c: Change) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "action": c.action,
        "actor": ctx.principal.as_actor(),
        "object_type": c.object_type,
        "object_id": str(c.object_id),
        "changes": diff(c.before, c.after),
    }
    payload.update(c.extra)
    return payload


def record_change(
    ctx: Context,
    action: str,
    object_type: str,
    object_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    **extra: Any,
) -> LedgerRef:
    """Audit one state change: who, what, which object, fields before and after, when."""
    change = Change(action, object_type, object_id, before, after, extra)
    return append(ctx.session, AUDIT, _payload(ctx, change), ctx.clock, ctx.autosign)


def record_changes(ctx: Context, changes: Iterable[Change]) -> list[LedgerRef]:
    """Audit many state changes at once: one lock and one insert, for passes that change thousands."""
    return append_many(ctx.session, AUDIT, [_payload(ctx, c) for c in changes], ctx.clock, ctx.autosign)


def decode(record: LedgerRecord) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(record.payload)
    return result
