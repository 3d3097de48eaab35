"""Syslog from the network into sources: the receiver's sink.

Each received message is routed by the sender's address to the source whose
config lists it under `syslog_hosts`, else to the listener's default source,
and taken through the same pipeline as a file (ledger, events, quarantine).
A source's messages count as one input, "syslog", whose cursor keeps the
parser's state (the year of RFC 3164 timestamps) and the number taken.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.events.ingest import BatchResult, InputCursor
from portcullis.events.models import EventSource
from portcullis.events.prepare import RawRecord
from portcullis.events.runner import Ingestion
from portcullis.events.syslog_server import Received

INPUT_ID = "syslog"
# People and accounts change while a listener runs for weeks: reload the directory this often.
REFRESH_SECONDS = 300.0


def peer_host(peer: str) -> str:
    host = peer.rsplit(":", 1)[0]
    return host[1:-1] if host.startswith("[") else host


@dataclass
class SyslogIntake:
    rt: Runtime
    principal: Principal
    default_source: str
    totals: BatchResult = field(default_factory=BatchResult)
    _runs: dict[str, tuple[Ingestion, InputCursor, float]] = field(default_factory=dict)
    _routes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._load_routes()
        self._run(self.default_source)  # fails now, not at the first message, if the source is wrong

    def _load_routes(self) -> None:
        with self.rt.session() as s:
            for key, config in s.execute(select(EventSource.key, EventSource.config).where(EventSource.active)):
                for host in (config or {}).get("syslog_hosts", []):
                    self._routes[str(host)] = key

    def _run(self, key: str) -> tuple[Ingestion, InputCursor]:
        now = time.monotonic()
        held = self._runs.get(key)
        if held is not None and now - held[2] < REFRESH_SECONDS:
            return held[0], held[1]
        run = Ingestion(self.rt, self.principal, key)
        with self.rt.work(self.principal) as ctx:
            cursor = run.pipeline.open_input(ctx.session, INPUT_ID, "syslog listener", ctx.now())
        if held is not None:
            cursor = InputCursor(cursor.cursor_id, held[1].preparer, cursor.offset, cursor.position)
        self._runs[key] = (run, cursor, now)
        return run, cursor

    def __call__(self, batch: list[Received]) -> None:
        by_source: dict[str, list[Received]] = defaultdict(list)
        for msg in batch:
            by_source[self._routes.get(peer_host(msg.peer), self.default_source)].append(msg)
        for key, msgs in by_source.items():
            run, cursor = self._run(key)
            first = cursor.position
            records = [RawRecord(m.data.rstrip(b"\r\n"), first + i, None, 0) for i, m in enumerate(msgs, start=1)]
            run.feed(cursor, records, "syslog listener", None)
            self.totals.add(run.totals)
            run.totals = BatchResult()
