"""Verification of a long stream in aligned ranges, one process per core.

Hashing is what verification spends its time on (two SHA-256 per record: the
leaf and, on average, one interior node), and one CPython process cannot do
much more than 600,000 records a second. An aligned range of 2**RANGE_LEVEL
records is a perfect subtree of the stream's tree, so it checks on its own:
its records are contiguous, each payload hashes to the leaf hash stored with it,
and every tile node stored inside it is the hash of the records under it. Each
range reports its subtree (or, for the last, partial one, its frontier) and its
frontier at every checkpoint size inside it; the parent joins them in order,
checks the tile nodes above the ranges, and the checkpoints. What is found, and
where, is what the one-process verification finds.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine

from portcullis.core.db import make_engine
from portcullis.ledger import merkle
from portcullis.ledger.store import TILE

RANGE_LEVEL = 17  # 131,072 records a range: a few tenths of a second of work, so start-up costs little
CHUNK = 20_000
_RANGE = "FROM ledger_record WHERE stream_id = ? AND seq >= ? AND seq < ?"
_SPAN = f"SELECT count(*), min(seq), max(seq) {_RANGE}"
_SEQS = f"SELECT seq {_RANGE} ORDER BY seq"
_ROWS = f"SELECT payload, leaf_hash {_RANGE} ORDER BY seq"


@dataclass
class RangeResult:
    lo: int
    count: int = 0  # contiguous records from lo
    hashes: list[bytes] = field(default_factory=list)  # the range's frontier at lo + count
    snapshots: dict[int, list[bytes]] = field(default_factory=dict)  # checkpoint size -> frontier at it
    problem: tuple[int, str, str] | None = None  # (index, kind, detail)
    gap_after: bool = False  # records stop before the range's end (then later ranges must be empty)


# Set in the parent before the workers fork, so that they inherit it instead of receiving it pickled.
_SHARED: dict[str, object] = {}
_ENGINE: Engine | None = None


def workers() -> int:
    """Processes to verify with: one per core, where the platform forks."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def _engine() -> Engine:
    # One engine per worker process, never the parent's (its pooled connections must not cross a fork).
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = make_engine(str(_SHARED["url"]))
    return _ENGINE


def verify_range(stream_id: int, lo: int, hi: int, sizes: Sequence[int]) -> RangeResult:
    nodes = _SHARED["nodes"]
    assert isinstance(nodes, dict)
    result = RangeResult(lo)
    frontier = merkle.Frontier()
    sha = hashlib.sha256
    wanted = sorted(z for z in sizes if lo < z <= hi)
    raw = _engine().raw_connection()
    try:
        postgres = _engine().dialect.name == "postgresql"
        cur = raw.cursor(binary=True) if postgres else raw.cursor()

        def q(sql: str) -> str:
            return sql.replace("?", "%s") if postgres else sql

        expected = lo
        at = lo
        while at < hi:
            top = min(at + CHUNK, hi)
            at += CHUNK
            # Contiguity from the index alone, so the rows fetched carry no seq: a third fewer objects to build.
            cur.execute(q(_SPAN), (stream_id, at - CHUNK, top))
            span = cur.fetchone()
            assert span is not None  # an aggregate always answers one row
            count, first, last = span
            if not count:
                continue
            if first != expected or last != expected + count - 1:
                cur.execute(q(_SEQS), (stream_id, at - CHUNK, top))
                seqs = [row[0] for row in cur.fetchall()]
                missing = next((expected + k for k, seq in enumerate(seqs) if seq != expected + k), expected)
                result.problem = (
                    missing,
                    "missing",
                    f"record {missing} is not stored (deleted, or the rest renumbered)",
                )
                break
            cur.execute(q(_ROWS), (stream_id, at - CHUNK, top))
            rows = cur.fetchall()
            leaves = [sha(b"\x00" + p).digest() for p, _ in rows]
            if leaves != [h for _, h in rows]:
                bad = expected + next(k for k, (_, h) in enumerate(rows) if leaves[k] != h)
                result.problem = (
                    bad,
                    "changed",
                    f"record {bad}: its payload does not match the leaf hash stored with it",
                )
                break
            pos = 0
            end = expected + len(rows)
            for z in [x for x in wanted if expected < x <= end] + [end]:
                for level, idx, node in frontier.extend(leaves[pos : z - expected], TILE):
                    absolute = (lo >> level) + idx
                    if level % TILE == 0 and nodes.get((level, absolute)) != node:
                        first = absolute << level
                        result.problem = (
                            first,
                            "subtree",
                            f"records {first}..{((absolute + 1) << level) - 1} hash differently from when they were "
                            "appended: one of them was changed, inserted or moved",
                        )
                        break
                if result.problem:
                    break
                pos = z - expected
                if z in wanted:
                    result.snapshots[z] = list(frontier.hashes)
            if result.problem:
                break
            expected = end
            result.count = expected - lo
        cur.close()
    finally:
        raw.close()
    if result.problem is None and lo + result.count < hi:
        result.gap_after = True
    result.hashes = list(frontier.hashes)
    return result


def run(
    url: str,
    nodes: dict[tuple[int, int], bytes],
    stream_id: int,
    start: int,
    stop: int,
    sizes: Sequence[int],
    processes: int,
) -> list[RangeResult]:
    """Verify [start, stop) in aligned ranges on `processes` forked workers; results in range order."""
    width = 1 << RANGE_LEVEL
    bounds = [(lo, min(lo + width, stop)) for lo in range(start, stop, width)]
    _SHARED.update(url=url, nodes=nodes)
    try:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            futures = [pool.submit(verify_range, stream_id, lo, hi, sizes) for lo, hi in bounds]
            return [f.result() for f in futures]
    finally:
        _SHARED.clear()


def subtrees(lo: int, count: int, hashes: list[bytes]) -> list[tuple[int, bytes]]:
    """The (level, hash) perfect subtrees a range's frontier stands for, largest first."""
    levels = [bit for bit in range(count.bit_length() - 1, -1, -1) if count >> bit & 1]
    assert len(levels) == len(hashes)
    return list(zip(levels, hashes, strict=True))
