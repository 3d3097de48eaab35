"""Driving the pipeline over an input: a file (once, or followed as it grows), stdin, or a batch.

Each batch commits on its own, with the cursor, so an interrupted run loses at
most the batch in flight, and the next run takes it again from the start.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from portcullis.core.context import Principal
from portcullis.core.errors import ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.core.runtime import Runtime
from portcullis.events.files import HEAD, fingerprint_of, json_records_from, lines_from, read_head
from portcullis.events.ingest import BatchResult, InputCursor, Pipeline
from portcullis.events.models import EventCursor
from portcullis.events.parallel import MIN_BYTES, WorkerSpec, prepared_batches
from portcullis.events.parsers import parser_class
from portcullis.events.prepare import RawRecord, fewer_collections

BATCH = 20000
Progress = Callable[[int, BatchResult], None]  # (bytes or records done, totals so far)


@dataclass
class Ingestion:
    """One run over one input, for a caller that wants to feed it and see the totals."""

    rt: Runtime
    principal: Principal
    source_key: str
    batch_size: int = BATCH
    # Prepare in a second process: None decides by the size left to take (parallel.MIN_BYTES).
    parallel: bool | None = None

    def __post_init__(self) -> None:
        with self.rt.work(self.principal) as ctx:
            ctx.require(Permission.EVENTS_INGEST)
            self.pipeline = Pipeline.load(ctx.session, self.source_key)
        self.framing: str = parser_class(self.pipeline.fmt).framing
        self.totals = BatchResult()

    def _take(self, cursor: InputCursor, records: Sequence[RawRecord], label: str) -> BatchResult:
        with self.rt.work(self.principal) as ctx:
            result = self.pipeline.take(ctx, cursor, records, label)
        self.totals.add(result)
        return result

    def feed(self, cursor: InputCursor, records: Iterable[RawRecord], label: str, progress: Progress | None) -> None:
        it = iter(records)
        with fewer_collections():
            while batch := list(islice(it, self.batch_size)):
                self._take(cursor, batch, label)
                if progress is not None:
                    progress(batch[-1].end or batch[-1].position, self.totals)

    # --- files ---------------------------------------------------------------------------

    def open_file(self, path: Path) -> InputCursor:
        """The cursor this file resumes from, recognised by its first bytes."""
        head = read_head(path)
        with self.rt.work(self.principal) as ctx:
            s = ctx.session
            rows = s.scalars(
                select(EventCursor).where(
                    EventCursor.source_id == self.pipeline.source_id, EventCursor.input_id.startswith("file:")
                )
            ).all()
            for row in rows:
                if row.head_len <= len(head) and _digest(head[: row.head_len]) == row.input_id:
                    if row.head_len < min(len(head), HEAD):
                        # The file has grown past the bytes it was first known by: know it by more.
                        fp = fingerprint_of(head)
                        if not any(r.input_id == fp.input_id for r in rows):
                            row.input_id, row.head_len = fp.input_id, fp.head_len
                    return self.pipeline.open_input(s, row.input_id, str(path), ctx.now())
            fp = fingerprint_of(head)
            cursor = self.pipeline.open_input(s, fp.input_id, str(path), ctx.now())
            fresh = s.get(EventCursor, cursor.cursor_id)
            assert fresh is not None
            fresh.head_len = fp.head_len
            return cursor

    def file(
        self,
        path: Path,
        *,
        follow: bool = False,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        poll: float = 0.5,
    ) -> BatchResult:
        """Take what is new in `path`; with `follow`, keep taking as it grows until `stop` is set."""
        if not path.is_file():
            raise ValidationFailed(f"{path}: no such file")
        stop = stop or threading.Event()
        while True:
            if path.stat().st_size == 0:
                if not follow or stop.wait(poll):
                    return self.totals
                continue
            cursor = self.open_file(path)
            if self.framing == "json-records":
                records: Iterator[RawRecord] = json_records_from(path.read_bytes(), cursor.position)
                self.feed(cursor, records, str(path), progress)
                if not follow:
                    return self.totals
            elif not follow and self._use_worker(path, cursor):
                self._file_in_parallel(path, cursor, progress)
                return self.totals
            else:
                with path.open("rb") as f:
                    lines = lines_from(f, cursor.offset, cursor.position, final=not follow)
                    self.feed(cursor, lines, str(path), progress)
                    if not follow:
                        return self.totals
                    if self._follow(f, path, cursor, progress, stop, poll):
                        return self.totals
            if stop.wait(poll):
                return self.totals

    def _use_worker(self, path: Path, cursor: InputCursor) -> bool:
        if self.parallel is not None:
            return self.parallel
        return path.stat().st_size - cursor.offset >= MIN_BYTES

    def _file_in_parallel(self, path: Path, cursor: InputCursor, progress: Progress | None) -> None:
        p = self.pipeline
        spec = WorkerSpec(
            path=str(path),
            offset=cursor.offset,
            position=cursor.position,
            batch_size=self.batch_size,
            fmt=p.fmt,
            parser_config=p.parser_config,
            parser_state=cursor.preparer.parser.state(),
            directory=p.directory,
            asset_id=p.asset_id,
            zone_id=p.zone_id,
            dialect=self.rt.engine.dialect.name,
        )
        with fewer_collections():
            for batch in prepared_batches(spec):
                with self.rt.work(self.principal) as ctx:
                    self.totals.add(p.commit(ctx, cursor, batch, str(path)))
                if progress is not None:
                    progress(batch.last_end, self.totals)

    def _follow(
        self,
        f: BinaryIO,
        path: Path,
        cursor: InputCursor,
        progress: Progress | None,
        stop: threading.Event,
        poll: float,
    ) -> bool:
        """Take lines as they are written; returns True when stopped, False when the file was rotated."""
        ino = os.fstat(f.fileno()).st_ino
        while not stop.wait(poll):
            self.feed(cursor, lines_from(f, cursor.offset, cursor.position, final=False), str(path), progress)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # between the rename and the new file
            if st.st_ino != ino or st.st_size < cursor.offset:
                # Rotated or truncated: finish the old file, unfinished last line included, then start the new one.
                self.feed(cursor, lines_from(f, cursor.offset, cursor.position, final=True), str(path), progress)
                return False
        self.feed(cursor, lines_from(f, cursor.offset, cursor.position, final=False), str(path), progress)
        return True

    # --- streams without a position ----------------------------------------------------

    def stream(self, f: BinaryIO, label: str, progress: Progress | None = None) -> BatchResult:
        """stdin and the like: taken whole, with no cursor (there is nothing to resume)."""
        cursor = InputCursor(None, self.pipeline.preparer())
        if self.framing == "json-records":
            records: Iterator[RawRecord] = json_records_from(f.read(), 0)
        else:
            records = lines_from(f, 0, 0, final=True) if f.seekable() else _unseekable_lines(f)
        self.feed(cursor, records, label, progress)
        return self.totals


def _digest(head: bytes) -> str:
    return "file:" + hashlib.sha256(head).hexdigest()


def _unseekable_lines(f: BinaryIO) -> Iterator[RawRecord]:
    offset = 0
    for position, line in enumerate(f, start=1):
        end = offset + len(line)
        yield RawRecord(line.rstrip(b"\n").rstrip(b"\r"), position, offset, end)
        offset = end
