"""Ledger tables. Rows here are only ever inserted; the database refuses the rest.

A stream is an RFC 9162 Merkle tree over its records. The leaves are the
records' leaf hashes; perfect subtree hashes are stored at every fourth level
(`ledger_node`), which keeps proofs O(log n) without storing every node, and
keeps the tree verifiable after expired payloads are purged in whole tiles.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class LedgerStream(Base):
    __tablename__ = "ledger_stream"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(default=0)
    # Roots of the perfect subtrees making up the tree, largest first (32 bytes each).
    frontier: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    # Records below this index have had their payloads purged (retention, §23).
    purged_below: Mapped[int] = mapped_column(default=0)
    retention_days: Mapped[int | None] = mapped_column(default=None)
    # Size at the latest checkpoint, to know when the next one is due.
    checkpoint_size: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class LedgerRecord(Base):
    __tablename__ = "ledger_record"
    __table_args__ = (
        UniqueConstraint("stream_id", "seq", name="uq_ledger_record_stream_seq"),
        # Lookups by object and by action serve the audit trail; raw access
        # events (millions) carry no object, so they stay out of these indexes
        # and pay nothing for them at ingestion.
        Index(
            "ix_ledger_record_object",
            "object_type",
            "object_id",
            sqlite_where=text("object_type <> ''"),
            postgresql_where=text("object_type <> ''"),
        ),
        Index(
            "ix_ledger_record_action",
            "action",
            sqlite_where=text("object_type <> ''"),
            postgresql_where=text("object_type <> ''"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key: on PostgreSQL each one is a trigger query per row, which halved
    # ingestion. Appends hold the stream row locked (store.lock_stream), so it exists,
    # and streams are never deleted (the append-only guard covers them too).
    stream_id: Mapped[int]
    # Position in the stream, 0-based: the leaf index of the stream's Merkle tree.
    seq: Mapped[int]
    recorded_at: Mapped[datetime]
    # RFC 8785 canonical JSON bytes; the leaf hash is over exactly these bytes.
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Denormalised for finding an object's history without parsing payloads.
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(100), default="")
    object_id: Mapped[str] = mapped_column(String(100), default="")


class LedgerNode(Base):
    """Hash of the perfect subtree of 2**level leaves starting at leaf idx * 2**level."""

    __tablename__ = "ledger_node"

    stream_id: Mapped[int] = mapped_column(ForeignKey("ledger_stream.id"), primary_key=True)
    level: Mapped[int] = mapped_column(primary_key=True)
    idx: Mapped[int] = mapped_column(primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """A signed statement of a stream's size and root (C2SP tlog-checkpoint as a signed note)."""

    __tablename__ = "ledger_checkpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("ledger_stream.id"), index=True)
    size: Mapped[int]
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class LedgerPurgeGate(Base):
    """While a row exists here, in the purging transaction only, records may be deleted."""

    __tablename__ = "ledger_purge_gate"

    id: Mapped[int] = mapped_column(primary_key=True)
    opened_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
