"""Ledger benchmarks (issue: tamper-evident ledger). Run: python bench/bench_ledger.py [--big N]

Each figure is measured in this process, one core, against a baseline run in the
same process where one exists, and written into BENCHMARKS.md between markers.

- append: batches of 10,000 records through store.append_entries (hashing, tree,
  tile nodes, insert), against a plain executemany of the same rows into an
  identical, empty table;
- verify: verify_stream over the appended stream, records per second, the median
  of three runs after one untimed run, in one process and on one process per core; baseline: reading
  the same rows (payload and leaf hash, in chunks as verification reads them)
  without hashing, in one process;
- proof: inclusion proofs from the stored tree of a stream of --big records
  (default 10,000,000), median and 99th percentile over 1,000 random leaves,
  against the same proof computed from an in-memory list of the leaf hashes.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from common import PgDatabases, write_section
from portcullis.core.canonical import canonical_bytes
from portcullis.core.db import make_engine, session_factory
from portcullis.core.settings import Settings
from portcullis.ledger import merkle, verify_ranges
from portcullis.ledger.guard import install as install_guards
from portcullis.ledger.note import Signer
from portcullis.ledger.signing import load_or_create_signer
from portcullis.ledger.store import Entry, StoredTree, append_entries, get_stream, lock_stream
from portcullis.ledger.verify import verify_stream
from portcullis.models import metadata

BATCH = 10_000


def event(i: int) -> bytes:
    # Shaped like an sshd login record: the ledger's heaviest producer.
    return canonical_bytes(
        {
            "action": "ssh.login",
            "actor": f"user{i % 60}",
            "host": "bastion-1",
            "method": "publickey",
            "outcome": "success" if i % 7 else "failure",
            "source": f"10.0.{i % 250}.{i % 200}",
            "time": "2026-11-24T09:00:00Z",
            "seq": i,
        }
    )


def fresh(url_for: Callable[[str], str], name: str) -> str:
    url = url_for(name)
    engine = make_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        install_guards(conn)
    engine.dispose()
    return url


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_append_verify(url: str, baseline_url: str, n: int, signer: Signer) -> dict[str, float]:
    now = datetime.now(UTC)
    # Raw access events: what the ledger takes in by the million (audit records,
    # which carry an object and are indexed by it, are a trickle beside them).
    entries = [Entry(event(i)) for i in range(n)]
    factory = session_factory(make_engine(url))

    def append() -> None:
        with factory() as s:
            stream = lock_stream(s, "bench", now)
            for k in range(0, n, BATCH):
                append_entries(s, stream, entries[k : k + BATCH], now)
            s.commit()

    append_s = timed(append)

    # Baseline: the same rows (leaf hashes precomputed, outside the clock) into an identical table.
    base_engine = make_engine(baseline_url)
    with base_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO ledger_stream (name, size, frontier, purged_below, checkpoint_size, "
                "description, created_at) VALUES ('bench', 0, :f, 0, 0, '', :t)"
            ),
            {"f": b"", "t": now},
        )
    rows = [
        (1, i, now.isoformat(), e.data, merkle.leaf_hash(e.data), e.action, e.object_type, e.object_id)
        for i, e in enumerate(entries)
    ]
    raw = base_engine.raw_connection()
    mark = "?" if base_engine.dialect.paramstyle == "qmark" else "%s"
    sql = (
        "INSERT INTO ledger_record (stream_id, seq, recorded_at, payload, leaf_hash, action, object_type, "
        f"object_id) VALUES ({', '.join([mark] * 8)})"
    )

    def baseline() -> None:
        cur = raw.cursor()
        for k in range(0, n, BATCH):
            cur.executemany(sql, rows[k : k + BATCH])
        raw.commit()

    baseline_s = timed(baseline)
    raw.close()
    base_engine.dispose()

    result: dict[str, Any] = {}
    rates: dict[str, float] = {"read": n / statistics.median(timed(lambda: read_rows(url, n)) for _ in range(3))}
    for label, processes in (("verify", 1), ("verify_cores", verify_ranges.workers())):

        def verify(processes: int = processes) -> None:
            with factory() as s:
                result["report"] = verify_stream(s, get_stream(s, "bench"), signer.verifier, parallel=processes)

        # One untimed run first: the first reading of freshly bulk-loaded rows on PostgreSQL also sets
        # their hint bits (writing pages), which a ledger verified daily pays once, not at each check.
        verify()
        runs = [timed(verify) for _ in range(3)]
        assert result["report"].ok, result["report"].problems
        assert result["report"].records == n
        rates[label] = n / statistics.median(runs)
    return {"append": n / append_s, "baseline": n / baseline_s, **rates}


def read_rows(url: str, n: int) -> None:
    """The verification baseline: the rows read as verification reads them, nothing hashed."""
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        conn: Any = raw.driver_connection  # sqlite3 or psycopg
        pg = engine.dialect.name == "postgresql"
        cur = conn.cursor(binary=True) if pg else conn.cursor()
        sql = "SELECT payload, leaf_hash FROM ledger_record WHERE stream_id = ? AND seq >= ? AND seq < ? ORDER BY seq"
        width = 1 << verify_ranges.CHUNK_LEVEL
        for lo in range(0, n, width):
            cur.execute(sql.replace("?", "%s") if pg else sql, (1, lo, lo + width))
            cur.fetchall()
    finally:
        raw.close()
        engine.dispose()


def bench_proofs(url: str, size: int) -> dict[str, float]:
    now = datetime.now(UTC)
    factory = session_factory(make_engine(url))
    leaves: list[bytes] = []
    t = time.perf_counter()
    with factory() as s:
        stream = lock_stream(s, "big", now)
        for k in range(0, size, 100_000):
            batch = [Entry(i.to_bytes(8, "big")) for i in range(k, min(size, k + 100_000))]
            append_entries(s, stream, batch, now)
            leaves.extend(merkle.leaf_hash(e.data) for e in batch)
            s.commit()
            stream = lock_stream(s, "big", now)
        s.commit()
    build_s = time.perf_counter() - t
    rng = random.Random(9162)
    picks = [rng.randrange(size) for _ in range(1000)]
    stored, memory = [], []
    mth = merkle.memory_range_hash(leaves)
    with factory() as s:
        stream = get_stream(s, "big")
        root = StoredTree(s, stream).root()
        for i in picks:
            t0 = time.perf_counter()
            proof = StoredTree(s, stream).inclusion_proof(i)
            stored.append(time.perf_counter() - t0)
            assert merkle.verify_inclusion(leaves[i], i, size, proof, root)
    for i in picks[:3]:  # the in-memory baseline rehashes about every leaf per proof: slow, so only three
        t0 = time.perf_counter()
        merkle.inclusion_proof(mth, i, size)
        memory.append(time.perf_counter() - t0)
    stored.sort()
    return {
        "size": size,
        "build_s": build_s,
        "median_ms": statistics.median(stored) * 1000,
        "p99_ms": stored[int(len(stored) * 0.99) - 1] * 1000,
        "memory_median_ms": statistics.median(memory) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="portcullis-bench-"))
    signer = load_or_create_signer(Settings(data_dir=tmp))

    def sqlite_for(name: str) -> str:
        return f"sqlite:///{tmp / (name + '.db')}"

    rows = []
    pg = PgDatabases()
    try:
        sq = bench_append_verify(fresh(sqlite_for, "a"), fresh(sqlite_for, "b"), args.records, signer)
        rows.append(("SQLite", sq))
        if pg.available():
            rows.append(("PostgreSQL", bench_append_verify(fresh(pg, "a"), fresh(pg, "b"), args.records, signer)))
        proofs = [("SQLite", bench_proofs(fresh(sqlite_for, "big"), args.big))]
        if pg.available():
            proofs.append(("PostgreSQL", bench_proofs(fresh(pg, "big"), args.big)))
    finally:
        pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Ledger",
        "",
        f"`python bench/bench_ledger.py` on {when}, one process (one core of this 2-core machine), "
        f"{args.records:,} sshd-shaped records of ~{len(event(1))} bytes, appended in batches of {BATCH:,}.",
        "",
        "| database | append (records/s) | baseline: executemany of the same rows (records/s) | append / baseline "
        "| verify, one process (records/s) | baseline: reading the rows, nothing hashed, one process (records/s) "
        f"| verify, {verify_ranges.workers()} processes (records/s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['append']:,.0f} | {r['baseline']:,.0f} | {r['append'] / r['baseline']:.2f} "
            f"| {r['verify']:,.0f} | {r['read']:,.0f} | {r['verify_cores']:,.0f} |"
        )
    lines += [
        "",
        f"Inclusion proofs from the stored tree at {args.big:,} records, over 1,000 random leaves; baseline, the "
        "same proof computed from an in-memory list of all leaf hashes (three leaves):",
        "",
        "| database | proof median (ms) | proof 99th percentile (ms) | baseline median (ms) | stream built in (s) |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {p['median_ms']:.3f} | {p['p99_ms']:.3f} | {p['memory_median_ms']:,.0f} | {p['build_s']:.0f} |"
            for name, p in proofs
        ),
        "",
        "Targets (issue 3): append >= 200,000/s on SQLite; verify >= 1,000,000/s; proof < 1 ms at 10,000,000.",
        "",
        "Verification figures are the median of three runs after an untimed one. One process cannot verify",
        "1,000,000 records/s: each record costs two SHA-256 calls (its leaf and, on average, one interior node) at",
        "about 0.45 us each in CPython 3.11 here, plus reading the row (the baseline column). Verification therefore",
        f"reads and hashes aligned chunks of {1 << verify_ranges.CHUNK_LEVEL:,} records level by level, with the "
        "garbage collector paused,",
        f"and cuts long streams into aligned ranges of {1 << verify_ranges.RANGE_LEVEL:,} records verified on one "
        "forked process per core",
        "(ledger/verify_ranges.py; the parent joins the ranges' subtrees and checks the tile nodes above them and",
        "the checkpoints); the tamper tests run both ways. On PostgreSQL the server's own work for each row (about",
        "0.35 us) runs on the same two cores, which is why it verifies more slowly than SQLite.",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("ledger", lines)


if __name__ == "__main__":
    main()
