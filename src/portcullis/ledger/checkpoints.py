"""Signing checkpoints of streams: on a size interval, on a time interval (tick), on demand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerCheckpoint, LedgerStream
from portcullis.ledger.note import Checkpoint, Signer


def origin_of(signer: Signer, stream: LedgerStream) -> str:
    # The signer's name is "<origin>/ledger"; each stream gets "<origin>/<stream>".
    return signer.name.rsplit("/", 1)[0] + "/" + stream.name


def sign_checkpoint(session: Session, stream: LedgerStream, signer: Signer, now: datetime) -> LedgerCheckpoint | None:
    """Sign the stream's current size and root, unless the latest checkpoint already says so."""
    if stream.size == stream.checkpoint_size and stream.size > 0:
        latest = session.scalars(
            select(LedgerCheckpoint.id).where(LedgerCheckpoint.stream_id == stream.id).limit(1)
        ).first()
        if latest is not None:
            return None
    root = merkle.Frontier.from_bytes(stream.size, stream.frontier).root()
    cp = Checkpoint(origin_of(signer, stream), stream.size, root)
    note = signer.sign(cp.text())
    row = LedgerCheckpoint(stream_id=stream.id, size=stream.size, root=root, note=note, created_at=now)
    session.add(row)
    stream.checkpoint_size = stream.size
    session.flush()
    return row


@dataclass(frozen=True)
class Autosign:
    """Sign a checkpoint whenever a stream has grown by `every` records since the last one."""

    signer: Signer
    every: int


def checkpoint_if_due(session: Session, stream: LedgerStream, autosign: Autosign | None, now: datetime) -> None:
    if autosign is not None and stream.size - stream.checkpoint_size >= autosign.every:
        sign_checkpoint(session, stream, autosign.signer, now)


def checkpoint_all(session: Session, signer: Signer, now: datetime) -> list[LedgerCheckpoint]:
    """The time-interval and on-demand path: every stream that grew since its last checkpoint."""
    made = []
    for stream in session.scalars(select(LedgerStream).order_by(LedgerStream.id).with_for_update()):
        row = sign_checkpoint(session, stream, signer, now)
        if row is not None:
            made.append(row)
    return made
