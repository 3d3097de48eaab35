"""The stored Merkle tree of a stream: appends from the frontier, subtree hashes
for proofs, all inside the caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core.bulk import insert_rows
from portcullis.core.collector import collector_paused
from portcullis.core.errors import NotFound
from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerRecord, LedgerStream

# Perfect subtree hashes are stored at levels that are multiples of this: one
# extra row per 16 records, and any subtree hash is at most 15 hashes away.
TILE = 4


def lock_stream(session: Session, name: str, now: datetime) -> LedgerStream:
    """The stream row, locked for this transaction (created on first use).

    The lock serialises appenders on PostgreSQL; SQLite serialises writers anyway.
    """
    stream = session.scalars(select(LedgerStream).where(LedgerStream.name == name).with_for_update()).one_or_none()
    if stream is None:
        stream = LedgerStream(name=name, size=0, frontier=b"", created_at=now)
        session.add(stream)
        session.flush()
    return stream


def get_stream(session: Session, name: str) -> LedgerStream:
    stream = session.scalars(select(LedgerStream).where(LedgerStream.name == name)).one_or_none()
    if stream is None:
        raise NotFound(f"No ledger stream named {name!r}")
    return stream


@dataclass(frozen=True)
class Entry:
    """One record to append: canonical bytes plus the columns kept for lookups."""

    data: bytes
    action: str = ""
    object_type: str = ""
    object_id: str = ""


# Fixed statements; only the driver's placeholder style is filled in.
_RECORD_COLUMNS = ("stream_id", "seq", "recorded_at", "payload", "leaf_hash", "action", "object_type", "object_id")
_NODE_COLUMNS = ("stream_id", "level", "idx", "hash")
# One run of consecutive leaf hashes or tile nodes, as a range scan of the table's index (for proofs).
_LEAF_RUN = "SELECT 0, seq, leaf_hash FROM ledger_record WHERE stream_id = ? AND seq BETWEEN ? AND ?"
_NODE_RUN = "SELECT level, idx, hash FROM ledger_node WHERE stream_id = ? AND level = ? AND idx BETWEEN ? AND ?"
# All the runs of a proof at once on PostgreSQL: (lo, hi) arrays of leaf runs, (level, lo, hi) of node runs.
_PG_RUNS = (
    # LATERAL ... OFFSET 0 keeps each run a range scan of the index: flattened into a join, the planner
    # cannot size ranges given as parameters and picks a parallel sequential scan (a hundred times slower).
    "SELECT 0, r.seq, r.leaf_hash FROM unnest(%s::int4[], %s::int4[]) AS q(lo, hi) CROSS JOIN LATERAL "
    "(SELECT seq, leaf_hash FROM ledger_record WHERE stream_id = %s AND seq BETWEEN q.lo AND q.hi OFFSET 0) r "
    "UNION ALL "
    "SELECT n.level, n.idx, n.hash FROM unnest(%s::int4[], %s::int4[], %s::int4[]) AS q(level, lo, hi) CROSS JOIN "
    "LATERAL (SELECT level, idx, hash FROM ledger_node "
    "WHERE stream_id = %s AND level = q.level AND idx BETWEEN q.lo AND q.hi OFFSET 0) n"
)


def _bind_time(session: Session, now: datetime) -> Any:
    """`now` as the driver wants it for recorded_at, computed once per batch."""
    dialect = session.get_bind().dialect
    process = LedgerRecord.__table__.c.recorded_at.type.dialect_impl(dialect).bind_processor(dialect)
    return process(now) if process else now


def append_entries(session: Session, stream: LedgerStream, entries: Sequence[Entry], now: datetime) -> int:
    """Append records to a locked stream; returns the index of the first one."""
    sha = hashlib.sha256
    with collector_paused():
        leaves = [sha(b"\x00" + e.data).digest() for e in entries]
        cells = [(e.data, h, e.action, e.object_type, e.object_id) for e, h in zip(entries, leaves, strict=True)]
        return _append(session, stream, leaves, cells, now)


def append_hashed(
    session: Session, stream: LedgerStream, payloads: Sequence[bytes], leaves: Sequence[bytes], now: datetime
) -> int:
    """Append records whose leaf hashes the caller computed (ingestion does it in another process)."""
    with collector_paused():
        cells = [(p, h, "", "", "") for p, h in zip(payloads, leaves, strict=True)]
        return _append(session, stream, leaves, cells, now)


def _append(
    session: Session, stream: LedgerStream, leaves: Sequence[bytes], cells: Sequence[tuple[Any, ...]], now: datetime
) -> int:
    """Rows go to the driver as plain tuples (core.bulk): SQLAlchemy's per-row
    processing would cost more than the hashing (see bench/bench_ledger.py)."""
    if not cells:
        return stream.size
    frontier = merkle.Frontier.from_bytes(stream.size, stream.frontier)
    first = stream.size
    sid = stream.id
    when = _bind_time(session, now)
    rows = [(sid, first + k, when, *c) for k, c in enumerate(cells)]
    nodes = [(sid, lv, idx, h) for lv, idx, h in frontier.extend(leaves, TILE) if lv % TILE == 0]
    conn = session.connection()
    insert_rows(conn, "ledger_record", _RECORD_COLUMNS, rows)
    insert_rows(conn, "ledger_node", _NODE_COLUMNS, nodes)
    stream.size = frontier.size
    stream.frontier = frontier.to_bytes()
    session.flush()
    return first


def decompose(lo: int, hi: int) -> list[tuple[int, int]]:
    """[lo, hi) as the aligned perfect subtrees (level, idx) RFC 9162 hashes it from, left to right."""
    out: list[tuple[int, int]] = []
    while lo < hi:
        level = (lo & -lo).bit_length() - 1 if lo else (hi - lo).bit_length() - 1
        while (1 << level) > hi - lo:
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


class StoredTree:
    """MTH over stored leaves and tile nodes, fetched in as few queries as possible."""

    def __init__(self, session: Session, stream: LedgerStream, size: int | None = None) -> None:
        self.session = session
        self.stream_id = stream.id
        self.size = stream.size if size is None else size
        if self.size > stream.size:
            raise NotFound(f"stream {stream.name!r} has {stream.size} records, not {self.size}")
        self._hashes: dict[tuple[int, int], bytes] = {}

    # -- which stored hashes a set of ranges needs --------------------------------
    @staticmethod
    def _sources(level: int, idx: int) -> Iterable[tuple[int, int]]:
        base = level - level % TILE
        width = 1 << (level - base)
        return ((base, idx * width + j) for j in range(width))

    def _fetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        want: set[tuple[int, int]] = set()
        for lo, hi in ranges:
            for level, idx in decompose(lo, hi):
                want.update(k for k in self._sources(level, idx) if k not in self._hashes)
        if not want:
            return
        # Each level's wanted hashes come in a few runs of consecutive indexes (the siblings under one
        # tile), so each run is one range scan of an index.
        by_level: dict[int, list[int]] = {}
        for level, idx in want:
            by_level.setdefault(level, []).append(idx)
        runs = [(level, a, b) for level in sorted(by_level) for a, b in _runs(by_level[level])]
        # Straight to the driver: a proof must cost well under a millisecond, and compiling an ORM
        # statement for it would cost more.
        cur = self.session.connection().connection.cursor()
        try:
            if self.session.get_bind().dialect.name == "postgresql":
                # One statement of a fixed shape, the runs as arrays: psycopg prepares it once, so the
                # server does not plan a new query for every proof (that was half a millisecond).
                leaf_runs = [(a, b) for level, a, b in runs if level == 0]
                node_runs = [r for r in runs if r[0] > 0]
                cur.execute(
                    _PG_RUNS,
                    (
                        [a for a, _ in leaf_runs],
                        [b for _, b in leaf_runs],
                        self.stream_id,
                        [lv for lv, _, _ in node_runs],
                        [a for _, a, _ in node_runs],
                        [b for _, _, b in node_runs],
                        self.stream_id,
                    ),
                )
                rows = cur.fetchall()
            else:
                # SQLite compiles a statement in microseconds: the runs as one UNION ALL of range scans.
                rows = []
                for part in _chunks(runs, 100):
                    sql = " UNION ALL ".join(_NODE_RUN if lvl else _LEAF_RUN for lvl, _, _ in part)
                    params = chain.from_iterable(
                        (self.stream_id, lvl, a, b) if lvl else (self.stream_id, a, b) for lvl, a, b in part
                    )
                    cur.execute(sql, tuple(params))
                    rows += cur.fetchall()
        finally:
            cur.close()
        for level, idx, h in rows:
            self._hashes[(level, idx)] = bytes(h)
        missing = [k for k in want if k not in self._hashes]
        if missing:
            level, idx = min(missing)
            raise NotFound(
                f"stored hash missing at level {level}, index {idx}: the leaves it covers were purged or removed"
            )

    def _perfect(self, level: int, idx: int) -> bytes:
        key = (level, idx)
        if key in self._hashes:
            return self._hashes[key]
        if level % TILE == 0:
            raise NotFound(f"no stored hash at level {level}, index {idx}")
        h = merkle.node_hash(self._perfect(level - 1, 2 * idx), self._perfect(level - 1, 2 * idx + 1))
        self._hashes[key] = h
        return h

    def frontier(self) -> merkle.Frontier:
        """The frontier of the tree at this size: its perfect subtrees, largest first."""
        parts = decompose(0, self.size)
        self._fetch([(0, self.size)])
        return merkle.Frontier(self.size, [self._perfect(level, idx) for level, idx in parts])

    def range_hash(self, lo: int, hi: int) -> bytes:
        parts = [self._perfect(level, idx) for level, idx in decompose(lo, hi)]
        if not parts:
            return merkle.EMPTY_ROOT
        acc = parts[-1]
        for h in reversed(parts[:-1]):
            acc = merkle.node_hash(h, acc)
        return acc

    def _prefetched(self, compute: Any) -> Any:
        # First pass only records which ranges the proof asks for; then one
        # round of queries fetches them all; the second pass computes.
        asked: list[tuple[int, int]] = []

        def record(lo: int, hi: int) -> bytes:
            asked.append((lo, hi))
            return merkle.EMPTY_ROOT

        compute(record)
        self._fetch(asked)
        return compute(self.range_hash)

    # range_hash needs its hashes fetched first: use root(), proofs or frontier().

    def root(self) -> bytes:
        return bytes(self._prefetched(lambda mth: mth(0, self.size)))

    def inclusion_proof(self, index: int) -> list[bytes]:
        return list(self._prefetched(lambda mth: merkle.inclusion_proof(mth, index, self.size)))

    def consistency_proof(self, size1: int) -> list[bytes]:
        return list(self._prefetched(lambda mth: merkle.consistency_proof(mth, size1, self.size)))


def _runs(indexes: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, distinct indexes as runs of consecutive ones, (first, last) inclusive."""
    out: list[tuple[int, int]] = []
    for i in sorted(indexes):
        if out and out[-1][1] + 1 == i:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _chunks(items: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
