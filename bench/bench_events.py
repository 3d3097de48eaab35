"""Ingestion benchmark (issue: access-event ingestion). Run: python bench/bench_events.py [--lines N]

OpenSSH_2k.log from ../shared/data, repeated to --lines lines (default
1,000,000), ingested end to end into a fresh installation through the same
path as `portcullis events ingest`: read, parse, normalise, resolve identity,
hash into the source's ledger stream, insert events, commit with the cursor.
Big files are prepared in a second process (events/parallel.py) while this one
writes, so the end-to-end figures use both cores of the machine; a one-process
run is measured too.

Baselines in the same run: parsing alone (the syslog parser over the same
lines, one core), and the whole preparation (parse, resolve, hash, build rows)
without a database.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from common import PgDatabases, write_section
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.migrate import upgrade
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.events import sources
from portcullis.events.files import lines_from
from portcullis.events.parsers import build_parser
from portcullis.events.runner import Ingestion
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "data" / "logs" / "OpenSSH_2k.log"
SYSTEM = Principal.system("bench")
CONFIG = {"parser": {"year": 2026}, "accounts": {"fztu": "HR-1"}}


def make_log(path: Path, lines: int) -> Path:
    sample = SAMPLE.read_bytes().rstrip(b"\n") + b"\n"
    per = sample.count(b"\n")
    with path.open("wb") as f:
        for _ in range(lines // per):
            f.write(sample)
    return path


def install(data_dir: Path, url: str | None) -> Runtime:
    settings = Settings(data_dir=data_dir, database_url=url) if url else Settings(data_dir=data_dir)
    rt = Runtime.build(settings, FrozenClock(datetime(2026, 11, 24, tzinfo=UTC)))
    upgrade(rt.engine)
    with rt.work(SYSTEM) as ctx:
        owner = inventory.create_person(
            ctx, PersonIn(external_id="HR-1", email="ops@example.eu", full_name="Ops", status="active")
        )
        inventory.create_asset(
            ctx,
            AssetIn(external_id="A-BASTION", name="Bastion", type="server", criticality="critical", owner_id=owner.id),
        )
        sources.create_source(
            ctx, sources.SourceIn(key="bastion", name="Bastion", format="syslog", asset="A-BASTION", config=CONFIG)
        )
    return rt


def parse_only(log: Path) -> float:
    parser = build_parser("syslog", CONFIG["parser"])
    parse = parser.parse
    with log.open("rb") as f:
        lines = [r.data.decode() for r in lines_from(f, 0, 0, final=True)]
    t = time.perf_counter()
    for line in lines:
        parse(line)
    return len(lines) / (time.perf_counter() - t)


def prepare_only(rt: Runtime, log: Path) -> float:
    run = Ingestion(rt, SYSTEM, "bastion")
    preparer = run.pipeline.preparer()
    n = 0
    t = time.perf_counter()
    with log.open("rb") as f:
        records = lines_from(f, 0, 0, final=True)
        while batch := list(islice(records, run.batch_size)):
            preparer.prepare(batch)
            n += len(batch)
    return n / (time.perf_counter() - t)


def end_to_end(rt: Runtime, log: Path, parallel: bool) -> dict[str, Any]:
    t = time.perf_counter()
    totals = Ingestion(rt, SYSTEM, "bastion", parallel=parallel).file(log)
    elapsed = time.perf_counter() - t
    return {"rate": totals.raw / elapsed, "seconds": elapsed, **totals.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="portcullis-bench-events-"))
    pg = PgDatabases()
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    try:
        log = make_log(tmp / "auth.log", args.lines)
        parse_rate = parse_only(log)
        sq = install(tmp / "sqlite-2", None)
        prepare_rate = prepare_only(sq, log)
        two = end_to_end(sq, log, parallel=True)
        one = end_to_end(install(tmp / "sqlite-1", None), log, parallel=False)
        rows.append(("SQLite", two, one))
        if pg.available():
            two = end_to_end(install(tmp / "pg-2", pg("two")), log, parallel=True)
            one = end_to_end(install(tmp / "pg-1", pg("one")), log, parallel=False)
            rows.append(("PostgreSQL", two, one))
    finally:
        pg.drop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    first = rows[0][1]
    lines = [
        "## Access-event ingestion",
        "",
        f"`python bench/bench_events.py` on {when}: `OpenSSH_2k.log` repeated to {args.lines:,} lines "
        f"({first['events']:,} events, the rest kept in the ledger only), ingested end to end into a fresh "
        "installation as `portcullis events ingest` does it: parse, normalise, resolve identity, hash into the "
        "source's ledger stream, insert the events, commit each batch of 20,000 with the cursor.",
        "",
        "| database | end to end, preparing in a second process: lines/s (events/s) | end to end, one process: "
        "lines/s (events/s) |",
        "|---|---:|---:|",
    ]
    for name, two, one in rows:
        lines.append(
            f"| {name} | {two['rate']:,.0f} ({two['events'] / two['seconds']:,.0f}) in {two['seconds']:.1f} s "
            f"| {one['rate']:,.0f} ({one['events'] / one['seconds']:,.0f}) |"
        )
    lines += [
        "",
        f"Baselines from the same run, one core, no database: parsing alone {parse_rate:,.0f} lines/s; the whole "
        f"preparation (parse, resolve, hash, build the rows) {prepare_rate:,.0f} lines/s.",
        "",
        "Targets (issue 5): at least 100,000 events/s on SQLite and 50,000 on PostgreSQL, end to end.",
        "",
        "What the figures rest on: the preparation runs in a second process for files of 8 MiB or more, so on",
        "two cores the database writes are the limit; rows go to the driver as tuples (multi-row VALUES on",
        "SQLite, binary COPY on PostgreSQL); access events are indexed by the hour rather than the exact time,",
        "because this input repeats the same two hours 500 times and an exact-time index then inserts all over",
        "the tree; and the two append-only tables carry no foreign keys, whose per-row trigger checks halved",
        "the PostgreSQL rate.",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("events", lines)


if __name__ == "__main__":
    main()
