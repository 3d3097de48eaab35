"""Ledger tables. Rows here are only ever inserted (see the ledger issue for triggers)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class LedgerStream(Base):
    __tablename__ = "ledger_stream"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]


class LedgerRecord(Base):
    __tablename__ = "ledger_record"
    __table_args__ = (UniqueConstraint("stream_id", "seq", name="uq_ledger_record_stream_seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    stream_id: Mapped[int] = mapped_column(ForeignKey("ledger_stream.id"))
    # Position in the stream, 0-based: the leaf index of the stream's Merkle tree.
    seq: Mapped[int]
    recorded_at: Mapped[datetime]
    # RFC 8785 canonical JSON; the leaf hash is over exactly these bytes.
    payload: Mapped[str] = mapped_column(Text)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # Denormalised for finding an object's history without parsing payloads.
    action: Mapped[str] = mapped_column(String(100), index=True)
    object_type: Mapped[str] = mapped_column(String(100), default="")
    object_id: Mapped[str] = mapped_column(String(100), default="")
