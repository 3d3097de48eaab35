"""Recompute every stream from its stored records and check it against the
checkpoints: any change, deletion, insertion, reordering, truncation or rollback
is found and located."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core.errors import NotFound
from portcullis.ledger import merkle, verify_ranges
from portcullis.ledger.models import LedgerCheckpoint, LedgerRecord, LedgerStream
from portcullis.ledger.note import Checkpoint, NoteError, VerifierKey, open_note
from portcullis.ledger.store import TILE, StoredTree


@dataclass(frozen=True)
class Problem:
    stream: str
    # The first record found bad, where one can be named; None for a bad checkpoint.
    index: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.stream}[{self.index}]" if self.index is not None else self.stream
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class StreamReport:
    stream: str
    size: int
    records: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "stream": self.stream,
            "size": self.size,
            "records_checked": self.records,
            "checkpoints_checked": self.checkpoints,
            "ok": self.ok,
            "problems": [{"index": p.index, "kind": p.kind, "detail": p.detail} for p in self.problems],
        }


@dataclass(frozen=True)
class _Signed:
    size: int
    root: bytes
    label: str


def _signed_checkpoints(
    session: Session, stream: LedgerStream, key: VerifierKey, external: Iterable[str], report: StreamReport
) -> list[_Signed]:
    out: list[_Signed] = []
    rows = session.scalars(
        select(LedgerCheckpoint).where(LedgerCheckpoint.stream_id == stream.id).order_by(LedgerCheckpoint.size)
    )
    notes: list[tuple[str, str, LedgerCheckpoint | None]]
    notes = [(f"checkpoint {r.id} (size {r.size})", r.note, r) for r in rows]
    notes += [(f"external checkpoint #{i + 1}", n, None) for i, n in enumerate(external)]
    suffix = "/" + stream.name
    for label, note, row in notes:
        try:
            cp = Checkpoint.parse(open_note(note, key))
        except NoteError as exc:
            if row is None:
                continue  # an external note for some other key or stream is not ours to judge
            report.problems.append(Problem(stream.name, None, "checkpoint-signature", f"{label}: {exc}"))
            continue
        if not cp.origin.endswith(suffix):
            if row is not None:
                report.problems.append(
                    Problem(stream.name, None, "checkpoint-origin", f"{label} is for {cp.origin}, not this stream")
                )
            continue
        if row is not None and (cp.size != row.size or cp.root != row.root):
            report.problems.append(
                Problem(stream.name, None, "checkpoint-columns", f"{label}: stored size or root differ from its note")
            )
            continue
        out.append(_Signed(cp.size, cp.root, label))
        report.checkpoints += 1
    return out


def verify_stream(
    session: Session,
    stream: LedgerStream,
    key: VerifierKey,
    external: Iterable[str] = (),
    parallel: int | None = None,
) -> StreamReport:
    """Check one stream. `parallel`: processes for a long stream (None: one per core; 1: this process only)."""
    report = StreamReport(stream.name, stream.size)
    name = stream.name
    signed = _signed_checkpoints(session, stream, key, external, report)
    by_size: dict[int, list[_Signed]] = {}
    for s in signed:
        by_size.setdefault(s.size, []).append(s)

    frontier = merkle.Frontier()
    start = stream.purged_below
    if start:
        # Purged prefix: its tile hashes stand in for the leaves that are gone.
        frontier = StoredTree(session, stream, start).frontier()
        for cp in (c for c in signed if c.size <= start):
            try:
                root = StoredTree(session, stream, cp.size).root()
            except NotFound:
                continue  # needs leaves inside a purged tile: no longer checkable, by design
            if root != cp.root:
                report.problems.append(
                    Problem(name, None, "checkpoint-mismatch", f"the purged prefix does not match {cp.label}")
                )
                return report
    sizes = sorted(by_size)
    last = session.scalar(
        select(LedgerRecord.seq).where(LedgerRecord.stream_id == stream.id).order_by(LedgerRecord.seq.desc()).limit(1)
    )
    stop = start if last is None else last + 1
    processes = verify_ranges.workers() if parallel is None else parallel
    raw = session.connection().connection.driver_connection
    if start == 0 and processes > 1 and stop >= 2 << verify_ranges.RANGE_LEVEL:
        url = session.connection().engine.url.render_as_string(hide_password=False)
        results = verify_ranges.run(url, stream.id, 0, stop, sizes, processes)
        nodes = verify_ranges.tile_nodes(raw, stream.id, 0, stop, above=verify_ranges.RANGE_LEVEL)
    else:
        nodes = verify_ranges.tile_nodes(raw, stream.id, 0, stop)
        tree = merkle.Frontier(frontier.size, list(frontier.hashes))  # verify_range extends its own copy
        results = [verify_ranges.verify_range(raw, stream.id, start, stop, sizes, nodes, tree)] if stop > start else []
    joined = _join(name, results, by_size, nodes, report, frontier)
    if joined is None:
        return report
    return _finish(session, stream, signed, joined, report)


def _finish(
    session: Session, stream: LedgerStream, signed: list[_Signed], frontier: merkle.Frontier, report: StreamReport
) -> StreamReport:
    """What holds whichever way the records were read: the count, the head, rollbacks, consistency."""
    name = stream.name

    def fail(index: int | None, kind: str, detail: str) -> StreamReport:
        report.problems.append(Problem(name, index, kind, detail))
        return report

    count = frontier.size
    if count < stream.size:
        return fail(count, "truncated", f"the stream holds {stream.size} records but only {count} are stored")
    if count > stream.size:
        return fail(stream.size, "extra", f"records from {stream.size} on lie beyond the stream's size (inserted?)")
    beyond = [s for s in signed if s.size > count]
    if beyond:
        top = max(beyond, key=lambda s: s.size)
        return fail(
            count,
            "rollback",
            f"{top.label} is signed for {top.size} records but only {count} exist: the tail was removed or the "
            "database restored from an older copy",
        )
    if stream.frontier != frontier.to_bytes():
        return fail(None, "head", "the stream's stored frontier differs from the recomputed tree")
    _check_consistency(session, stream, signed, report)
    return report


def _check_consistency(session: Session, stream: LedgerStream, signed: list[_Signed], report: StreamReport) -> None:
    """Each checkpoint must extend the one before it (RFC 9162 consistency proofs)."""
    tree = StoredTree(session, stream)
    ordered = sorted({(s.size, s.root) for s in signed})
    for (m, r1), (n, r2) in itertools.pairwise(ordered):
        sub = StoredTree(session, stream, size=n) if n != tree.size else tree
        try:
            proof = sub.consistency_proof(m)
        except NotFound:
            continue  # the proof would need purged leaves
        if not merkle.verify_consistency(m, n, r1, r2, proof):
            report.problems.append(
                Problem(stream.name, m, "inconsistent", f"checkpoint at size {n} does not extend the one at size {m}")
            )
            return


def verify_all(
    session: Session,
    key: VerifierKey,
    stream: str | None = None,
    external: Iterable[str] = (),
    parallel: int | None = None,
) -> list[StreamReport]:
    q = select(LedgerStream).order_by(LedgerStream.id)
    if stream is not None:
        q = q.where(LedgerStream.name == stream)
    ext = list(external)
    return [verify_stream(session, s, key, ext, parallel) for s in session.scalars(q)]


def _join(
    name: str,
    results: list[verify_ranges.RangeResult],
    by_size: dict[int, list[_Signed]],
    nodes: dict[tuple[int, int], bytes],
    report: StreamReport,
    frontier: merkle.Frontier,
) -> merkle.Frontier | None:
    """Join the ranges in order, as a record-by-record pass would meet them, onto `frontier` (the tree
    before the first); the whole tree's frontier, or None once a problem is reported."""
    good_upto = frontier.size

    def fail(index: int, kind: str, detail: str) -> None:
        report.problems.append(Problem(name, index, kind, detail))

    for k, r in enumerate(results):
        stop_at = r.problem[0] if r.problem else r.lo + r.count
        # Checkpoints inside the range, up to where it went wrong, from the frontier joined so far.
        for size in sorted(z for z in r.snapshots if z <= stop_at):
            if r.whole_tree:
                at = merkle.Frontier(size, r.snapshots[size])
            else:
                at = merkle.Frontier(frontier.size, list(frontier.hashes))
                for level, h in verify_ranges.subtrees(r.lo, size - r.lo, r.snapshots[size]):
                    at.append_subtree(level, h)
            for cp in by_size.get(size, ()):
                if at.root() != cp.root:
                    fail(
                        good_upto,
                        "checkpoint-mismatch",
                        f"the first {size} records do not match {cp.label}: a record from {good_upto} on was "
                        "changed, inserted, removed or reordered",
                    )
                    return None
                good_upto = size
        report.records += r.count  # checked before any problem the range met
        if r.problem is not None:
            fail(*r.problem)
            return None
        if r.whole_tree:  # the range went on from `frontier` and checked every node it completed
            frontier = merkle.Frontier(r.lo + r.count, r.hashes)
            continue
        for level, h in verify_ranges.subtrees(r.lo, r.count, r.hashes):
            for lvl, idx, node in frontier.append_subtree(level, h):
                if lvl > verify_ranges.RANGE_LEVEL and lvl % TILE == 0 and nodes.get((lvl, idx)) != node:
                    fail(*verify_ranges.subtree_problem(idx, lvl))
                    return None
        if r.gap_after and any(later.count or later.problem for later in results[k + 1 :]):
            missing = r.lo + r.count
            fail(missing, "missing", f"record {missing} is not stored (deleted, or the rest renumbered)")
            return None
        if r.gap_after:
            break
    return frontier
