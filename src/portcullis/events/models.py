"""Access-event tables (§18, §22, §23).

A source is one feed of access records (an sshd's syslog, a badge system's
export, a CloudTrail trail). Every raw record it delivers goes into the
source's own ledger stream; what could be understood becomes an `AccessEvent`
pointing at that raw record, and what could not goes to quarantine with the
reason and its position. Cursors say how far each input has been taken, and
move in the same transaction as the records, so a crash never loses or repeats
one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class EventSource(Base):
    __tablename__ = "event_source"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(50))
    # What the source reports on: its criticality sets how long its records are kept (§23).
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), default=None)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zone.id"), default=None)
    # The parser's configuration plus the pipeline's mappings (hosts, accounts, badges).
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Overrides the retention the criticality and the proportionality tier give, with the reason.
    retention_days: Mapped[int | None] = mapped_column(default=None)
    retention_reason: Mapped[str] = mapped_column(Text, default="")
    # The HTTP batch endpoint's credential: a lookup id and an argon2 hash, never the token.
    token_lookup: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    token_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    events_total: Mapped[int] = mapped_column(default=0)
    raw_total: Mapped[int] = mapped_column(default=0)
    quarantined_total: Mapped[int] = mapped_column(default=0)
    last_event_at: Mapped[datetime | None] = mapped_column(default=None)
    last_ingest_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def stream(self) -> str:
        return stream_name(self.key)


def stream_name(key: str) -> str:
    return f"events:{key}"


class EventCursor(Base):
    """How far one input of a source has been taken.

    A file is known by the SHA-256 of its first `head_len` bytes (up to 1 KiB),
    not by its name or inode: a log copied, renamed or rotated is still
    recognised, and a new file with a new head starts at zero. An HTTP batch is
    known by the id its sender gives it, so a retried batch is not taken twice.
    """

    __tablename__ = "event_cursor"
    __table_args__ = (UniqueConstraint("source_id", "input_id", name="uq_event_cursor_input"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("event_source.id"))
    input_id: Mapped[str] = mapped_column(String(100))  # "file:<sha256 of head>" or "batch:<id>"
    head_len: Mapped[int] = mapped_column(default=0)
    label: Mapped[str] = mapped_column(Text, default="")  # the path or the sender, for people
    offset: Mapped[int] = mapped_column(default=0)  # bytes taken
    position: Mapped[int] = mapped_column(default=0)  # records taken (lines, or JSON records)
    parser_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]


class AccessEvent(Base):
    """One normalised access event; its raw record is `ledger_seq` in the source's stream."""

    __tablename__ = "access_event"
    # Indexed by the hour, not the exact time: a key shared by every event of an hour
    # takes new rows at the end of its run (rowid order), so an insert touches a few
    # hot pages even when sources send out of order; searches narrow by hour, then
    # filter on the exact time. Measured in bench/bench_events.py.
    __table_args__ = (
        Index("ix_access_event_hour", "hour"),
        Index(
            "ix_access_event_person",
            "person_id",
            "hour",
            sqlite_where=text("person_id IS NOT NULL"),
            postgresql_where=text("person_id IS NOT NULL"),
        ),
        Index(
            "ix_access_event_asset",
            "asset_id",
            "hour",
            sqlite_where=text("asset_id IS NOT NULL"),
            postgresql_where=text("asset_id IS NOT NULL"),
        ),
        Index(
            "ix_access_event_zone",
            "zone_id",
            "hour",
            sqlite_where=text("zone_id IS NOT NULL"),
            postgresql_where=text("zone_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys here: the ids come from the registers at ingestion (identity.Directory),
    # people, assets, zones and sources are never deleted, and on PostgreSQL four
    # referential checks per row (trigger queries) cost more than the rest of the insert.
    source_id: Mapped[int]
    ledger_seq: Mapped[int]
    time: Mapped[datetime]
    hour: Mapped[int]  # hours since 1970-01-01 UTC: the index key for time ranges
    category: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10))
    actor: Mapped[str] = mapped_column(String(300), default="")
    actor_kind: Mapped[str] = mapped_column(String(10), default="")
    person_id: Mapped[int | None] = mapped_column(default=None)
    asset_id: Mapped[int | None] = mapped_column(default=None)
    zone_id: Mapped[int | None] = mapped_column(default=None)
    host: Mapped[str] = mapped_column(String(200), default="")
    source_address: Mapped[str] = mapped_column(String(200), default="")
    method: Mapped[str] = mapped_column(String(30), default="")
    privileged: Mapped[bool] = mapped_column(default=False)
    detail: Mapped[str] = mapped_column(Text, default="")


class QuarantinedRecord(Base):
    """A raw record that could not be understood: kept (it is in the ledger too), counted and shown."""

    __tablename__ = "event_quarantine"
    __table_args__ = (Index("ix_event_quarantine_source", "source_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("event_source.id"))
    ledger_seq: Mapped[int]
    # Where it was: the input's label, and the 1-based line or record number and the byte offset there.
    input_label: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(default=0)
    offset: Mapped[int | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
