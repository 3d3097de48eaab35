"""Verification of a stream's records against its stored tree, in ranges.

Hashing is what verification spends its time on: two SHA-256 per record (the
leaf and, on average, one interior node) at about half a microsecond each in
CPython. Two things keep the rest small:

- Records are read and hashed an aligned chunk of 2**CHUNK_LEVEL at a time, and a
  chunk's tree is built level by level in list comprehensions, each level's
  stored tile nodes compared as one list, instead of leaf by leaf through the
  frontier, with the cyclic garbage collector paused (core/collector.py).
- A long stream is cut into aligned ranges of 2**RANGE_LEVEL records, each a
  perfect subtree that checks on its own, and the ranges run on one forked
  process per core. Each reports its subtree (or, for the last, partial one, its
  frontier) and its frontier at every checkpoint size inside it; the parent joins
  them in order, checks the tile nodes above the ranges, and the checkpoints.

In one process the whole stream is one range whose frontier starts from the
stored tree (after the purged prefix, if any). What is found, and where, is the
same either way: a chunk reports the problem the record-by-record pass would
have met first.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from portcullis.core.collector import collector_paused
from portcullis.core.db import make_engine
from portcullis.ledger import merkle
from portcullis.ledger.store import TILE

RANGE_LEVEL = 17  # 131,072 records a range: a few tenths of a second of work, so start-up costs little
CHUNK_LEVEL = 12  # 4,096 records read and hashed at a time: about a megabyte, which stays in the CPU caches
_RANGE = "FROM ledger_record WHERE stream_id = ? AND seq >= ? AND seq < ?"
_SPAN = f"SELECT count(*), min(seq), max(seq) {_RANGE}"
_SEQS = f"SELECT seq {_RANGE} ORDER BY seq"
_ROWS = f"SELECT payload, leaf_hash {_RANGE} ORDER BY seq"
_NODES = "SELECT idx, hash FROM ledger_node WHERE stream_id = ? AND level = ? AND idx >= ? AND idx < ?"

Problem = tuple[int, str, str]  # (index, kind, detail)


@dataclass
class RangeResult:
    lo: int
    count: int = 0  # contiguous records from lo
    hashes: list[bytes] = field(default_factory=list)  # the frontier at lo + count
    snapshots: dict[int, list[bytes]] = field(default_factory=dict)  # checkpoint size -> frontier at it
    problem: Problem | None = None
    gap_after: bool = False  # records stop before the range's end (then later ranges must be empty)
    # False: an aligned range, its frontiers over its own records only; True: frontiers of the whole tree.
    whole_tree: bool = False


_ENGINE: Engine | None = None  # a worker's own, never the parent's


def workers() -> int:
    """Processes to verify with: one per core, where the platform forks."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _engine(url: str) -> Engine:
    # One engine per worker process: the parent's pooled connections must not cross a fork.
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = make_engine(url)
    return _ENGINE


def _placeholders(raw: Any, sql: str) -> str:
    return sql.replace("?", "%s") if _is_psycopg(raw) else sql


def _is_psycopg(raw: Any) -> bool:
    return type(raw).__module__.startswith("psycopg")


def tile_nodes(raw: Any, stream_id: int, lo: int, hi: int, above: int = 0) -> dict[tuple[int, int], bytes]:
    """The stored tile nodes over records [lo, hi) at levels above `above`, by (level, index).

    Read straight from the driver, a level at a time along the primary key: a
    million records have some 66,000 of them.
    """
    sql = _placeholders(raw, _NODES)
    out: dict[tuple[int, int], bytes] = {}
    cur = raw.cursor()
    try:
        first = above + TILE - above % TILE
        for level in range(first, max(hi, 1).bit_length() + 1, TILE):
            cur.execute(sql, (stream_id, level, lo >> level, hi >> level))
            out.update(((level, idx), bytes(h)) for idx, h in cur.fetchall())
    finally:
        cur.close()
    return out


def subtree_problem(idx: int, level: int) -> Problem:
    """Stored tile node (level, idx) differs from the one recomputed from the records under it."""
    start = idx << level
    return (
        start,
        "subtree",
        f"records {start}..{((idx + 1) << level) - 1} hash differently from when they were appended: "
        "one of them was changed, inserted or moved",
    )


class _Checker:
    """Compares tree nodes, as they are completed, with the tile nodes stored at append time."""

    def __init__(self, nodes: dict[tuple[int, int], bytes], offset: int) -> None:
        self.nodes = nodes
        self.offset = offset  # first leaf of the frontier's tree: a range's start, or 0 for the whole tree

    def completed(self, done: list[tuple[int, int, bytes]]) -> Problem | None:
        nodes, offset = self.nodes, self.offset
        for level, idx, node in done:
            if level % TILE == 0 and nodes.get((level, (offset >> level) + idx)) != node:
                return subtree_problem((offset >> level) + idx, level)
        return None


def _chunk_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the perfect tree over `leaves` (a power of two of them), leaves first."""
    sha = hashlib.sha256
    one = b"\x01"
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        pairs = iter(level)
        level = [sha(one + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
        levels.append(level)
    return levels


def _first_bad_tile(
    levels: list[list[bytes]], start: int, nodes: dict[tuple[int, int], bytes]
) -> tuple[int, Problem] | None:
    """The stored tile node inside an aligned chunk that a leaf-by-leaf pass would find wrong first.

    Returns (offset in the chunk at which that node is completed, problem). The
    chunk's root level is left to the frontier, as are the levels above it.
    """
    found: list[tuple[int, int, Problem]] = []
    for level in range(TILE, len(levels) - 1, TILE):
        got = levels[level]
        first = start >> level
        stored = [nodes.get((level, first + k)) for k in range(len(got))]
        if stored != got:
            k = next(k for k in range(len(got)) if stored[k] != got[k])
            found.append(((k + 1) << level, level, subtree_problem(first + k, level)))
    if not found:
        return None
    done_at, _, problem = min(found)  # completed first; at the same leaf, the lower level first
    return done_at, problem


def _fetch(cur: Any, sql: dict[str, str], stream_id: int, a: int, b: int, expected: int) -> list[Any] | Problem:
    """Rows [a, b) as (payload, leaf_hash) in seq order, or the problem of the first missing record.

    The rows carry no seq, a third fewer objects to build: (stream, seq) is
    unique, so b - a rows from a are all there; fewer, and the index says
    whether they are a contiguous run or which one is missing.
    """
    cur.execute(sql["rows"], (stream_id, a, b))
    rows: list[Any] = cur.fetchall()  # sqlite3 and psycopg (binary) both hand BLOB/bytea back as bytes
    if not rows or (expected == a and len(rows) == b - a):
        return rows
    cur.execute(sql["span"], (stream_id, a, b))
    count, first, last = cur.fetchone()  # an aggregate always answers one row
    if first == expected and last == expected + count - 1:
        return rows
    cur.execute(sql["seqs"], (stream_id, a, b))
    seqs = [row[0] for row in cur.fetchall()]
    missing = next((expected + k for k, seq in enumerate(seqs) if seq != expected + k), expected)
    return (missing, "missing", f"record {missing} is not stored (deleted, or the rest renumbered)")


def _aligned_chunk(
    frontier: merkle.Frontier,
    leaves: list[bytes],
    start: int,
    inside: list[int],
    checker: _Checker,
    result: RangeResult,
) -> Problem | None:
    """A whole chunk at an aligned frontier: its tree level by level, then one subtree into the frontier."""
    levels = _chunk_levels(leaves)
    top = len(levels) - 1
    bad = _first_bad_tile(levels, start, checker.nodes)
    met_at = bad[0] if bad else len(leaves)  # offset in the chunk where a leaf-by-leaf pass would stop
    before = frontier.hashes
    for z in inside:
        m = z - start
        if m >= met_at or m == len(leaves):  # the chunk's end is snapshotted once the frontier holds it
            break
        # The frontier at size z: the one before the chunk, then the chunk's perfect subtrees covering m leaves.
        result.snapshots[z] = before + [levels[b][(m >> b) - 1] for b in range(top, -1, -1) if m >> b & 1]
    if bad:
        return bad[1]
    problem = checker.completed(frontier.append_subtree(top, levels[top][0]))
    if problem is None and inside and inside[-1] == start + len(leaves):
        result.snapshots[inside[-1]] = list(frontier.hashes)
    return problem


def _leaf_by_leaf(
    frontier: merkle.Frontier,
    leaves: list[bytes],
    start: int,
    inside: list[int],
    checker: _Checker,
    result: RangeResult,
) -> Problem | None:
    """A partial or unaligned chunk, through the frontier, stopping at each checkpoint size inside it."""
    pos = 0
    for z in [*inside, start + len(leaves)]:
        problem = checker.completed(frontier.extend(leaves[pos : z - start], TILE))
        if problem is not None:
            return problem
        pos = z - start
        if z in inside:
            result.snapshots[z] = list(frontier.hashes)
    return None


def verify_range(
    raw: Any,
    stream_id: int,
    lo: int,
    hi: int,
    sizes: Sequence[int],
    nodes: dict[tuple[int, int], bytes],
    tree: merkle.Frontier | None = None,
) -> RangeResult:
    """Check records [lo, hi) read through the DB-API connection `raw`.

    Without `tree`, lo must be aligned to the range's width and the frontiers
    reported cover the range's own records; with it (the stored tree at size
    lo), they are the whole tree's.
    """
    result = RangeResult(lo, whole_tree=tree is not None)
    frontier = tree if tree is not None else merkle.Frontier()
    checker = _Checker(nodes, 0 if tree is not None else lo)
    wanted = sorted(z for z in sizes if lo < z <= hi)
    postgres = _is_psycopg(raw)
    sql = {name: _placeholders(raw, q) for name, q in (("span", _SPAN), ("seqs", _SEQS), ("rows", _ROWS))}
    # psycopg: binary results, so bytea arrives as bytes without the hex text decoding of the default.
    cur = raw.cursor(binary=True) if postgres else raw.cursor()
    sha = hashlib.sha256
    zero = b"\x00"
    width = 1 << CHUNK_LEVEL
    expected = lo
    try:
        with collector_paused():
            a = lo
            while a < hi:
                b = min(((a >> CHUNK_LEVEL) + 1) << CHUNK_LEVEL, hi)  # chunks aligned in the whole tree
                got = _fetch(cur, sql, stream_id, a, b, expected)
                a = b
                if isinstance(got, tuple):
                    result.problem = got
                    break
                if not got:
                    continue
                leaves = [sha(zero + payload).digest() for payload, _ in got]
                if leaves != [h for _, h in got]:
                    bad = expected + next(k for k, (_, h) in enumerate(got) if leaves[k] != h)
                    result.problem = (
                        bad,
                        "changed",
                        f"record {bad}: its payload does not match the leaf hash stored with it",
                    )
                    break
                end = expected + len(got)
                inside = [z for z in wanted if expected < z <= end]
                whole = len(got) == width and frontier.size % width == 0
                step = _aligned_chunk if whole else _leaf_by_leaf
                problem = step(frontier, leaves, expected, inside, checker, result)
                if problem is not None:
                    result.problem = problem
                    break
                expected = end
                result.count = expected - lo
    finally:
        cur.close()
    if result.problem is None and lo + result.count < hi:
        result.gap_after = True
    result.hashes = list(frontier.hashes)
    return result


def _in_worker(url: str, stream_id: int, lo: int, hi: int, sizes: Sequence[int]) -> RangeResult:
    raw = _engine(url).raw_connection()
    try:
        conn = raw.driver_connection
        # The range's own tile nodes, read here, in parallel; the parent reads those above the ranges.
        return verify_range(conn, stream_id, lo, hi, sizes, tile_nodes(conn, stream_id, lo, hi))
    finally:
        raw.close()


def run(
    url: str,
    stream_id: int,
    start: int,
    stop: int,
    sizes: Sequence[int],
    processes: int,
) -> list[RangeResult]:
    """Verify [start, stop) in aligned ranges on `processes` forked workers; results in range order."""
    width = 1 << RANGE_LEVEL
    bounds = [(lo, min(lo + width, stop)) for lo in range(start, stop, width)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(_in_worker, url, stream_id, lo, hi, sizes) for lo, hi in bounds]
        return [f.result() for f in futures]


def subtrees(lo: int, count: int, hashes: list[bytes]) -> list[tuple[int, bytes]]:
    """The (level, hash) perfect subtrees a range's frontier stands for, largest first."""
    levels = [bit for bit in range(count.bit_length() - 1, -1, -1) if count >> bit & 1]
    assert len(levels) == len(hashes)
    return list(zip(levels, hashes, strict=True))
