"""Finding access events for an investigation (§23): by person, asset or zone, time, outcome, category."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from portcullis.core.context import Context
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.events.models import AccessEvent, EventSource, QuarantinedRecord
from portcullis.events.parsers.base import Category, Outcome
from portcullis.events.prepare import hour_of
from portcullis.inventory.csv_read import guard
from portcullis.inventory.models import Asset, Person, Zone

COLUMNS = [
    "id",
    "time",
    "source",
    "category",
    "action",
    "outcome",
    "actor",
    "person",
    "asset",
    "zone",
    "host",
    "source_address",
    "method",
    "privileged",
    "detail",
    "ledger_stream",
    "ledger_seq",
]


@dataclass(frozen=True)
class EventQuery:
    person_id: int | None = None
    asset_id: int | None = None
    zone_id: int | None = None
    source_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    category: str | None = None
    privileged: bool | None = None
    actor: str | None = None

    def check(self) -> None:
        errors = []
        if self.outcome and self.outcome not in {o.value for o in Outcome}:
            errors.append(FieldError("outcome", f"{self.outcome!r} is not one of {[o.value for o in Outcome]}"))
        categories = [c.value for c in Category if c is not Category.OTHER]
        if self.category and self.category not in categories:
            errors.append(FieldError("category", f"{self.category!r} is not one of {categories}"))
        if self.since and self.until and self.since > self.until:
            errors.append(FieldError("since", "is after until"))
        if errors:
            raise ValidationFailed("The event search is not valid", errors)

    def statement(self, session: Session) -> Select[Any]:
        stmt = select(AccessEvent)
        if self.person_id is not None:
            stmt = stmt.where(AccessEvent.person_id == self.person_id)
        if self.asset_id is not None:
            stmt = stmt.where(AccessEvent.asset_id == self.asset_id)
        if self.zone_id is not None:
            stmt = stmt.where(AccessEvent.zone_id == self.zone_id)
        if self.source_key:
            sid = session.scalar(select(EventSource.id).where(EventSource.key == self.source_key))
            stmt = stmt.where(AccessEvent.source_id == (sid if sid is not None else -1))
        # The hour bounds let the database use an index; the exact bounds then filter.
        if self.since is not None:
            stmt = stmt.where(AccessEvent.hour >= hour_of(self.since), AccessEvent.time >= self.since)
        if self.until is not None:
            stmt = stmt.where(AccessEvent.hour <= hour_of(self.until), AccessEvent.time < self.until)
        if self.outcome:
            stmt = stmt.where(AccessEvent.outcome == self.outcome)
        if self.category:
            stmt = stmt.where(AccessEvent.category == self.category)
        if self.privileged is not None:
            stmt = stmt.where(AccessEvent.privileged.is_(self.privileged))
        if self.actor:
            stmt = stmt.where(AccessEvent.actor == self.actor)
        return stmt


def subject_ids(
    ctx: Context, person: str | None, asset: str | None, zone: str | None
) -> tuple[dict[str, int | None], list[FieldError]]:
    """The ids an investigation names (a person's email, an asset's or zone's external id), and what is unknown."""
    from portcullis.inventory import service as inventory

    errors: list[FieldError] = []
    ids: dict[str, int | None] = {}
    for name, value, finder, what in (
        ("person", person, inventory.find_person_by_email, "person with email"),
        ("asset", asset, inventory.find_asset_by_external_id, "ICT asset with external id"),
        ("zone", zone, inventory.find_zone_by_external_id, "zone with external id"),
    ):
        found = finder(ctx, value) if value else None
        if value and found is None:
            errors.append(FieldError(name, f"no {what} {value!r}"))
        ids[f"{name}_id"] = found.id if found is not None else None
    return ids, errors


class _Names:
    """External ids and emails for the rows of one page, fetched in one query each."""

    def __init__(self, session: Session, events: list[AccessEvent]) -> None:
        def ids(attr: str) -> set[int]:
            return {v for e in events if (v := getattr(e, attr)) is not None}

        self.sources = {k: v for k, v in session.execute(select(EventSource.id, EventSource.key))}
        self.people = _lookup(session, Person.id, Person.email, ids("person_id"))
        self.assets = _lookup(session, Asset.id, Asset.external_id, ids("asset_id"))
        self.zones = _lookup(session, Zone.id, Zone.external_id, ids("zone_id"))

    def view(self, e: AccessEvent) -> dict[str, Any]:
        key = self.sources.get(e.source_id, "")
        return {
            "id": e.id,
            "time": e.time,
            "source": key,
            "category": e.category,
            "action": e.action,
            "outcome": e.outcome,
            "actor": e.actor,
            "person": self.people.get(e.person_id) if e.person_id else None,
            "asset": self.assets.get(e.asset_id) if e.asset_id else None,
            "zone": self.zones.get(e.zone_id) if e.zone_id else None,
            "host": e.host,
            "source_address": e.source_address,
            "method": e.method,
            "privileged": e.privileged,
            "detail": e.detail,
            "ledger_stream": f"events:{key}",
            "ledger_seq": e.ledger_seq,
        }


def _lookup(session: Session, id_col: Any, name_col: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {k: v for k, v in session.execute(select(id_col, name_col).where(id_col.in_(sorted(ids))))}


def search_events(
    ctx: Context, q: EventQuery, *, after: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int, int | None]:
    ctx.require(Permission.EVENTS_READ)
    q.check()
    rows, total, nxt = paginate(ctx.session, q.statement(ctx.session), AccessEvent.id, after, limit)
    names = _Names(ctx.session, rows)
    return [names.view(e) for e in rows], total, nxt


def export_events_csv(ctx: Context, q: EventQuery, chunk: int = 5000) -> Iterator[str]:
    """Every matching event as CSV, in chunks (a year of badge entries does not fit a page); spreadsheet-safe."""
    ctx.require(Permission.EVIDENCE_EXPORT)
    q.check()
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    after = 0
    base = q.statement(ctx.session)
    while True:
        rows = list(ctx.session.scalars(base.where(AccessEvent.id > after).order_by(AccessEvent.id).limit(chunk)))
        if not rows:
            break
        names = _Names(ctx.session, rows)
        for e in rows:
            view = names.view(e)
            writer.writerow([guard(_cell(view[c])) for c in COLUMNS])
        after = rows[-1].id
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.tell():
        yield buf.getvalue()  # the header alone, when nothing matched


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_quarantine(
    ctx: Context, source_key: str | None = None, *, after: int | None = None, limit: int = 50
) -> tuple[list[dict[str, Any]], int, int | None]:
    ctx.require(Permission.EVENTS_READ)
    stmt = select(QuarantinedRecord)
    sources = {k: v for k, v in ctx.session.execute(select(EventSource.id, EventSource.key))}
    if source_key:
        sid = next((i for i, k in sources.items() if k == source_key), -1)
        stmt = stmt.where(QuarantinedRecord.source_id == sid)
    rows, total, nxt = paginate(ctx.session, stmt, QuarantinedRecord.id, after, limit)
    return [quarantine_view(r, sources.get(r.source_id, "")) for r in rows], total, nxt


def quarantine_view(r: QuarantinedRecord, source_key: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "source": source_key,
        "input": r.input_label,
        "position": r.position,
        "offset": r.offset,
        "reason": r.reason,
        # Shown as text, undecodable bytes escaped, so an operator sees exactly what came in.
        "raw": r.raw.decode("utf-8", "backslashreplace"),
        "ledger_stream": f"events:{source_key}",
        "ledger_seq": r.ledger_seq,
        "created_at": r.created_at,
    }
