"""The ingestion pipeline: raw records in, ledger records, events and quarantine out.

One batch is one transaction. In it, every raw record of the batch is appended
to the source's ledger stream; what parses becomes an access event pointing at
its raw record, what does not is quarantined with the reason and its position;
grants are marked used; the input's cursor and the parser's state move to the
end of the batch. A crash anywhere rolls the whole batch back, and the next run
starts from the cursor, so every record is taken exactly once and the ledger is
the same as if nothing had happened.

The hot path avoids the ORM: rows go to the driver as tuples through
core.bulk (multi-row VALUES on SQLite, binary COPY on PostgreSQL), as the
ledger's own appends do (see bench/bench_events.py for the figures).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core.bulk import insert_rows
from portcullis.core.context import Context
from portcullis.core.errors import NotFound, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.events.identity import Directory
from portcullis.events.models import EventCursor, EventSource, QuarantinedRecord
from portcullis.events.parsers import build_parser
from portcullis.events.parsers.base import Parser
from portcullis.events.prepare import Prepared, Preparer, RawRecord, time_binder
from portcullis.events.usage import Usage
from portcullis.ledger.checkpoints import checkpoint_if_due
from portcullis.ledger.store import append_hashed, lock_stream


@dataclass
class BatchResult:
    raw: int = 0
    events: int = 0
    quarantined: int = 0
    findings: int = 0
    first_seq: int = 0

    def add(self, other: BatchResult) -> None:
        self.raw += other.raw
        self.events += other.events
        self.quarantined += other.quarantined
        self.findings += other.findings

    def as_dict(self) -> dict[str, int]:
        return {"raw": self.raw, "events": self.events, "quarantined": self.quarantined, "findings": self.findings}


_EVENT_COLUMNS = (
    "source_id",
    "ledger_seq",
    "time",
    "hour",
    "category",
    "action",
    "outcome",
    "actor",
    "actor_kind",
    "person_id",
    "asset_id",
    "zone_id",
    "host",
    "source_address",
    "method",
    "privileged",
    "detail",
)


@dataclass
class InputCursor:
    """Where one input stands; `cursor_id` is None for inputs that are not resumable (stdin, an anonymous batch)."""

    cursor_id: int | None
    preparer: Preparer
    offset: int = 0
    position: int = 0
    head_len: int = 0


@dataclass
class Pipeline:
    """The per-source work that lasts across batches: its parser, directory and statements."""

    source_id: int
    source_key: str
    fmt: str
    parser_config: dict[str, Any]
    directory: Directory
    asset_id: int | None
    zone_id: int | None
    bind_time: Callable[[datetime], Any]

    @classmethod
    def load(cls, session: Session, source_key: str) -> Pipeline:
        source = session.scalars(select(EventSource).where(EventSource.key == source_key)).one_or_none()
        if source is None:
            raise NotFound(f"No event source with key {source_key!r}")
        if not source.active:
            raise ValidationFailed(f"Event source {source_key!r} is deactivated; reactivate it to ingest")
        config = dict(source.config or {})
        return cls(
            source_id=source.id,
            source_key=source.key,
            fmt=source.format,
            parser_config=dict(config.get("parser", {})),
            directory=Directory(session, config),
            asset_id=source.asset_id,
            zone_id=source.zone_id,
            bind_time=time_binder(session.get_bind().dialect.name),
        )

    def new_parser(self, state: dict[str, Any] | None = None) -> Parser:
        return build_parser(self.fmt, self.parser_config, state)

    def preparer(self, state: dict[str, Any] | None = None) -> Preparer:
        return Preparer(self.new_parser(state), self.directory, self.asset_id, self.zone_id, self.bind_time)

    def open_input(self, session: Session, input_id: str | None, label: str, now: datetime) -> InputCursor:
        """The cursor of a resumable input, created at zero the first time it is seen."""
        if input_id is None:
            return InputCursor(None, self.preparer())
        row = session.scalars(
            select(EventCursor).where(EventCursor.source_id == self.source_id, EventCursor.input_id == input_id)
        ).one_or_none()
        if row is None:
            row = EventCursor(source_id=self.source_id, input_id=input_id, label=label, updated_at=now)
            session.add(row)
            session.flush()
        preparer = self.preparer(dict(row.parser_state or {}))
        return InputCursor(row.id, preparer, row.offset, row.position, row.head_len)

    def take(self, ctx: Context, cursor: InputCursor, records: Sequence[RawRecord], label: str = "") -> BatchResult:
        """Prepare and commit one batch inside ctx's transaction (the caller commits)."""
        return self.commit(ctx, cursor, cursor.preparer.prepare(records), label)

    def commit(self, ctx: Context, cursor: InputCursor, batch: Prepared, label: str = "") -> BatchResult:
        """Append a prepared batch: ledger records, events, quarantine, uses, cursor."""
        ctx.require(Permission.EVENTS_INGEST)
        s = ctx.session
        now = ctx.now()
        source = s.get(EventSource, self.source_id, with_for_update=True)
        assert source is not None
        stream = lock_stream(s, source.stream, now)
        first = append_hashed(s, stream, batch.payloads, batch.leaves, now)
        sid = self.source_id
        insert_rows(s.connection(), "access_event", _EVENT_COLUMNS, [(sid, first + r[0], *r[1:]) for r in batch.rows])
        if batch.quarantine:
            s.add_all(
                QuarantinedRecord(
                    source_id=sid,
                    ledger_seq=first + q.index,
                    input_label=label,
                    position=q.position,
                    offset=q.offset,
                    reason=q.reason,
                    raw=q.raw,
                    created_at=now,
                )
                for q in batch.quarantine
            )
        usage = Usage()
        for person_id, asset_id, zone_id, privileged, at in batch.uses:
            usage.add(person_id, asset_id, zone_id, privileged, at)
        for asset_id, zone_id, actor, at in batch.unattributed:
            usage.add_unattributed(asset_id, zone_id, actor, at)
        findings = usage.apply(ctx, self.source_key)
        source.raw_total += len(batch)
        source.events_total += len(batch.rows)
        source.quarantined_total += len(batch.quarantine)
        source.last_ingest_at = now
        if batch.last_time is not None and (source.last_event_at is None or source.last_event_at < batch.last_time):
            source.last_event_at = batch.last_time
        if cursor.cursor_id is not None and len(batch):
            row = s.get(EventCursor, cursor.cursor_id)
            assert row is not None
            cursor.offset = row.offset = max(row.offset, batch.last_end)
            cursor.position = row.position = batch.last_position
            row.parser_state = batch.parser_state
            row.updated_at = now
        checkpoint_if_due(s, stream, ctx.autosign, now)
        s.flush()
        return BatchResult(len(batch), len(batch.rows), len(batch.quarantine), findings, first)
