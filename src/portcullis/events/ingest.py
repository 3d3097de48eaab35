"""The ingestion pipeline: raw records in, ledger records, events and quarantine out.

One batch is one transaction. In it, every raw record of the batch is appended
to the source's ledger stream; what parses becomes an access event pointing at
its raw record, what does not is quarantined with the reason and its position;
grants are marked used; the input's cursor and the parser's state move to the
end of the batch. A crash anywhere rolls the whole batch back, and the next run
starts from the cursor, so every record is taken exactly once and the ledger is
the same as if nothing had happened.

The hot path avoids the ORM: rows go to the driver's executemany as tuples,
as the ledger's own appends do (see bench/bench_events.py for the figures).
"""

from __future__ import annotations

import base64
import json
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
from portcullis.events.models import AccessEvent, EventCursor, EventSource, QuarantinedRecord
from portcullis.events.parsers import build_parser
from portcullis.events.parsers.base import ActorKind, Category, Malformed, Outcome, Parser
from portcullis.events.usage import Usage, is_use
from portcullis.ledger.checkpoints import checkpoint_if_due
from portcullis.ledger.store import Entry, append_entries, lock_stream

_string = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(slots=True)
class RawRecord:
    """One raw record as cut out of its input."""

    data: bytes
    position: int  # 1-based line or record number in the input
    offset: int | None = None  # byte offset of the record in the input, when it has one
    end: int = 0  # byte offset just after the record: where the cursor moves


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


def raw_payload(position: int, data: bytes) -> tuple[bytes, str | None]:
    """The ledger bytes of a raw record (RFC 8785: keys sorted, no spaces) and its text, if it is UTF-8.

    Built by hand because it runs once per record; the stdlib's string encoder
    escapes exactly as RFC 8785 asks (see core/canonical.py).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        b64 = base64.b64encode(data).decode("ascii")
        return f'{{"line":{position},"raw_b64":"{b64}"}}'.encode(), None
    return f'{{"line":{position},"raw":{_string(text)}}}'.encode(), text


def _bad_encoding(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8: byte 0x{data[e.start]:02x} at byte {e.start + 1} of the record ({e.reason})"
    return "not UTF-8"


_EVENT_COLUMNS = (
    "source_id",
    "ledger_seq",
    "time",
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
    parser: Parser
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
    # Log lines come many to the second: the last time bound is reused when the next is equal.
    _last_time: datetime | None = None
    _last_bound: Any = None

    @classmethod
    def load(cls, session: Session, source_key: str) -> Pipeline:
        source = session.scalars(select(EventSource).where(EventSource.key == source_key)).one_or_none()
        if source is None:
            raise NotFound(f"No event source with key {source_key!r}")
        if not source.active:
            raise ValidationFailed(f"Event source {source_key!r} is deactivated; reactivate it to ingest")
        dialect = session.get_bind().dialect
        processor = AccessEvent.__table__.c.time.type.dialect_impl(dialect).bind_processor(dialect)
        config = dict(source.config or {})
        return cls(
            source_id=source.id,
            source_key=source.key,
            fmt=source.format,
            parser_config=dict(config.get("parser", {})),
            directory=Directory(session, config),
            asset_id=source.asset_id,
            zone_id=source.zone_id,
            bind_time=processor if processor is not None else (lambda t: t),
        )

    def new_parser(self, state: dict[str, Any] | None = None) -> Parser:
        return build_parser(self.fmt, self.parser_config, state)

    def open_input(self, session: Session, input_id: str | None, label: str, now: datetime) -> InputCursor:
        """The cursor of a resumable input, created at zero the first time it is seen."""
        if input_id is None:
            return InputCursor(None, self.new_parser())
        row = session.scalars(
            select(EventCursor).where(EventCursor.source_id == self.source_id, EventCursor.input_id == input_id)
        ).one_or_none()
        if row is None:
            row = EventCursor(source_id=self.source_id, input_id=input_id, label=label, updated_at=now)
            session.add(row)
            session.flush()
        parser = self.new_parser(dict(row.parser_state or {}))
        return InputCursor(row.id, parser, row.offset, row.position, row.head_len)

    def take(self, ctx: Context, cursor: InputCursor, records: Sequence[RawRecord], label: str = "") -> BatchResult:
        """Take one batch inside ctx's transaction (the caller commits)."""
        ctx.require(Permission.EVENTS_INGEST)
        s = ctx.session
        now = ctx.now()
        source = s.get(EventSource, self.source_id, with_for_update=True)
        assert source is not None
        stream = lock_stream(s, source.stream, now)
        first = stream.size
        entries: list[Entry] = []
        rows: list[tuple[Any, ...]] = []
        quarantined: list[QuarantinedRecord] = []
        usage = Usage()
        parser = cursor.parser
        last_time: datetime | None = None
        for k, rec in enumerate(records):
            seq = first + k
            payload, text = raw_payload(rec.position, rec.data)
            entries.append(Entry(payload))
            reason: str | None = None
            event = None
            if text is None:
                reason = _bad_encoding(rec.data)
            else:
                try:
                    event = parser.parse(text)
                except Malformed as e:
                    reason = e.reason
            if event is not None and event.category is not Category.OTHER:
                row, reason = self._row(event, seq, usage)
                if row is not None:
                    rows.append(row)
                    if last_time is None or event.time > last_time:
                        last_time = event.time
            if reason is not None:
                quarantined.append(
                    QuarantinedRecord(
                        source_id=self.source_id,
                        ledger_seq=seq,
                        input_label=label,
                        position=rec.position,
                        offset=rec.offset,
                        reason=reason,
                        raw=rec.data,
                        created_at=now,
                    )
                )
        append_entries(s, stream, entries, now)
        conn = s.connection()
        insert_rows(conn, "access_event", _EVENT_COLUMNS, rows)
        if quarantined:
            s.add_all(quarantined)
        findings = usage.apply(ctx, self.source_key)
        source.raw_total += len(records)
        source.events_total += len(rows)
        source.quarantined_total += len(quarantined)
        source.last_ingest_at = now
        if last_time is not None and (source.last_event_at is None or source.last_event_at < last_time):
            source.last_event_at = last_time
        if cursor.cursor_id is not None and records:
            at = s.get(EventCursor, cursor.cursor_id)
            assert at is not None
            cursor.offset = at.offset = max(at.offset, records[-1].end)
            cursor.position = at.position = records[-1].position
            at.parser_state = parser.state()
            at.updated_at = now
        checkpoint_if_due(s, stream, ctx.autosign, now)
        s.flush()
        return BatchResult(len(records), len(rows), len(quarantined), findings, first)

    def _bound(self, t: datetime) -> Any:
        if t != self._last_time:
            self._last_time, self._last_bound = t, self.bind_time(t)
        return self._last_bound

    def _row(self, event: Any, seq: int, usage: Usage) -> tuple[tuple[Any, ...] | None, str | None]:
        d = self.directory
        asset_id = self.asset_id
        zone_id = self.zone_id
        if event.category is Category.PHYSICAL_ENTRY:
            asset_id = None
            if event.target:
                zone_id = d.zone_ids.get(event.target)
                if zone_id is None:
                    return None, f"zone {event.target!r} is not in the zone register"
        elif event.host and d.hosts:
            asset_id = d.hosts.get(event.host, asset_id)
        person_id = d.person(event.actor, event.actor_kind)
        if person_id is None and event.actor_kind is ActorKind.BADGE:
            return None, f"unknown badge {event.actor!r}: no person holds it"
        if event.outcome is Outcome.SUCCESS and is_use(event.category, event.action):
            if person_id is not None:
                usage.add(person_id, asset_id, zone_id, event.privileged, event.time)
            elif event.actor and (asset_id is not None or zone_id is not None):
                usage.add_unattributed(asset_id, zone_id, event.actor, event.time)
        return (
            self.source_id,
            seq,
            self._bound(event.time),
            event.category.value,
            event.action,
            event.outcome.value,
            event.actor,
            event.actor_kind.value,
            person_id,
            asset_id,
            zone_id,
            event.host,
            event.source_address,
            event.method.value,
            event.privileged,
            event.detail,
        ), None
