"""Preparing a big file in a second process while this one writes.

Parsing, hashing and building rows (prepare.py) need no database, and the
database writes need no parsing: on two cores the two halves overlap, which
roughly doubles what one process ingests. The worker reads the file from the
cursor and sends prepared batches through a bounded queue; this process commits
them in order, each with the cursor, exactly as the one-process path does, so a
crash of either side loses only the batch in flight and the ledger is the same.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from portcullis.core.errors import PortcullisError, ValidationFailed
from portcullis.events.files import lines_from
from portcullis.events.identity import Directory
from portcullis.events.parsers import build_parser
from portcullis.events.prepare import Prepared, Preparer, fewer_collections, time_binder

# Below this size a second process costs more to start than it saves.
MIN_BYTES = 8 * 1024 * 1024
# Batches in flight: enough to keep both sides busy, few enough to bound memory.
QUEUE_DEPTH = 3


@dataclass(frozen=True)
class WorkerSpec:
    """Everything the worker needs, as plain data (it is pickled to a fresh interpreter)."""

    path: str
    offset: int
    position: int
    batch_size: int
    fmt: str
    parser_config: dict[str, Any]
    parser_state: dict[str, Any]
    directory: Directory
    asset_id: int | None
    zone_id: int | None
    dialect: str

    def preparer(self) -> Preparer:
        parser = build_parser(self.fmt, self.parser_config, self.parser_state)
        return Preparer(parser, self.directory, self.asset_id, self.zone_id, time_binder(self.dialect))


@dataclass(frozen=True)
class WorkerFailed:
    message: str
    refused: bool  # the input or configuration was refused (a PortcullisError), not a crash


def _send(out: Any, item: object, parent: int) -> None:
    """Put, waiting while the writer is busy, but not for a writer that is gone (killed, say)."""
    while True:
        try:
            out.put(item, timeout=1.0)
            return
        except queue.Full:
            if os.getppid() != parent:
                os._exit(1)


def _produce(spec: WorkerSpec, out: Any, parent: int) -> None:
    try:
        preparer = spec.preparer()
        with fewer_collections(), Path(spec.path).open("rb") as f:
            records = lines_from(f, spec.offset, spec.position, final=True)
            while batch := list(islice(records, spec.batch_size)):
                _send(out, preparer.prepare(batch), parent)
        _send(out, None, parent)
    except PortcullisError as e:
        _send(out, WorkerFailed(str(e), refused=True), parent)
    except BaseException:
        _send(out, WorkerFailed(traceback.format_exc(), refused=False), parent)


def prepared_batches(spec: WorkerSpec) -> Iterator[Prepared]:
    """The file's prepared batches, made by a worker process, in order."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited database connections
    out = ctx.Queue(maxsize=QUEUE_DEPTH)
    worker = ctx.Process(target=_produce, args=(spec, out, os.getpid()), name="portcullis-prepare", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if not worker.is_alive():
                    raise RuntimeError(f"the preparing process died (exit code {worker.exitcode})") from None
                continue
            if item is None:
                return
            if isinstance(item, WorkerFailed):
                if item.refused:
                    raise ValidationFailed(item.message)
                raise RuntimeError(f"preparing {spec.path} failed: {item.message}")
            yield item
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join(timeout=5)
        out.close()
