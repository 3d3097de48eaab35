"""Retention (§23): expired records lose their payloads in whole aligned tiles.

The tile hashes stay, so the tree still verifies and proofs for kept records
still work; the purge itself is an audit record. How long a stream is kept is
decided above the ledger (criticality and the proportionality tier live in the
inventory), which registers a resolver here; a stream's own retention_days wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portcullis.core.context import Context
from portcullis.core.errors import ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.ledger.models import LedgerPurgeGate, LedgerRecord, LedgerStream
from portcullis.ledger.service import record_change
from portcullis.ledger.store import TILE, lock_stream

TILE_SIZE = 1 << TILE
Resolver = Callable[[Session, LedgerStream], int | None]
_resolvers: list[Resolver] = []


def register_resolver(fn: Resolver) -> None:
    """A domain above the ledger says how many days a stream is kept (None: not its stream)."""
    if fn not in _resolvers:
        _resolvers.append(fn)


def retention_days(session: Session, stream: LedgerStream) -> int | None:
    if stream.retention_days is not None:
        return stream.retention_days
    for fn in _resolvers:
        days = fn(session, stream)
        if days is not None:
            return days
    return None


@dataclass
class PurgeResult:
    stream: str
    retention_days: int | None
    purged_from: int
    purged_to: int
    dry_run: bool

    @property
    def count(self) -> int:
        return self.purged_to - self.purged_from

    def as_dict(self) -> dict[str, object]:
        return {
            "stream": self.stream,
            "retention_days": self.retention_days,
            "purged_from": self.purged_from,
            "purged_to": self.purged_to,
            "records": self.count,
            "dry_run": self.dry_run,
        }


def purge_stream(ctx: Context, name: str, *, days: int | None = None, dry_run: bool = False) -> PurgeResult:
    """Drop payloads older than the retention period, in whole tiles of 16 records."""
    ctx.require(Permission.LEDGER_ADMIN)
    if days is not None and days < 1:
        raise ValidationFailed("retention must be at least one day")
    now = ctx.now()
    stream = lock_stream(ctx.session, name, now)
    keep_days = days if days is not None else retention_days(ctx.session, stream)
    result = PurgeResult(name, keep_days, stream.purged_below, stream.purged_below, dry_run)
    if keep_days is None:
        return result  # kept for ever: nothing says otherwise
    cutoff = now - timedelta(days=keep_days)
    # The first record still inside the retention period; everything before it
    # has expired. Records are appended in time order, so this is a prefix.
    first_kept = ctx.session.scalar(
        select(func.min(LedgerRecord.seq)).where(
            LedgerRecord.stream_id == stream.id, LedgerRecord.recorded_at >= cutoff
        )
    )
    limit = stream.size if first_kept is None else first_kept
    to = (limit // TILE_SIZE) * TILE_SIZE
    if to <= stream.purged_below:
        return result
    result.purged_to = to
    if dry_run:
        return result
    gate = LedgerPurgeGate(opened_at=now, reason=f"retention of {name}: {keep_days} days")
    ctx.session.add(gate)
    ctx.session.flush()
    ctx.session.execute(
        delete(LedgerRecord).where(
            LedgerRecord.stream_id == stream.id, LedgerRecord.seq >= stream.purged_below, LedgerRecord.seq < to
        )
    )
    ctx.session.delete(gate)
    before = {"purged_below": stream.purged_below}
    stream.purged_below = to
    ctx.session.flush()
    record_change(
        ctx,
        "ledger.purged",
        "ledger_stream",
        name,
        before,
        {"purged_below": to},
        retention_days=keep_days,
        cutoff=cutoff,
        records=result.count,
    )
    return result


def purge_all(ctx: Context, *, dry_run: bool = False) -> list[PurgeResult]:
    names = list(ctx.session.scalars(select(LedgerStream.name).order_by(LedgerStream.id)))
    return [purge_stream(ctx, n, dry_run=dry_run) for n in names]
