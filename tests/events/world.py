"""An event-ingestion world on top of the access workflow's small firm.

The firm's critical custody database (A-DB) is the bastion the OpenSSH sample
was written on; its server room (Z-SRV) has a badge reader. Ana holds the
privileged db-admin entitlement from the start of the tests (2026-11-24 09:00).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from portcullis.access.grants import issue
from portcullis.access.models import Entitlement, Finding, Grant, GrantKind
from portcullis.core.runtime import Runtime
from portcullis.events import sources
from portcullis.events.models import AccessEvent, EventSource, QuarantinedRecord, stream_name
from portcullis.events.runner import Ingestion
from portcullis.inventory.models import Person
from portcullis.ledger.models import LedgerRecord, LedgerStream
from tests.access.workflow_world import SYSTEM, World, build_world

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
OPENSSH = DATA / "logs" / "OpenSSH_2k.log"
OPENSSH_CSV = DATA / "logs" / "OpenSSH_2k.log_structured.csv"
BADGES = DATA / "badges" / "proxOut-MC2.csv"


@dataclass
class EventWorld:
    w: World
    grant_id: int

    @property
    def rt(self) -> Runtime:
        return self.w.rt

    def add_source(
        self,
        key: str,
        fmt: str,
        *,
        asset: str | None = "A-DB",
        zone: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        with self.rt.work(SYSTEM) as ctx:
            sources.create_source(
                ctx,
                sources.SourceIn(key=key, name=key.title(), format=fmt, asset=asset, zone=zone, config=config or {}),
            )

    def ingest(self, key: str, path: Path, batch_size: int = 5000) -> dict[str, int]:
        return Ingestion(self.rt, SYSTEM, key, batch_size).file(path).as_dict()

    def ledger(self, key: str) -> list[tuple[int, bytes, bytes]]:
        with self.rt.session() as s:
            sid = s.scalar(select(LedgerStream.id).where(LedgerStream.name == stream_name(key)))
            rows = s.execute(
                select(LedgerRecord.seq, LedgerRecord.payload, LedgerRecord.leaf_hash)
                .where(LedgerRecord.stream_id == sid)
                .order_by(LedgerRecord.seq)
            )
            return [tuple(r) for r in rows]  # type: ignore[misc]

    def events(self, key: str) -> list[AccessEvent]:
        with self.rt.session() as s:
            sid = s.scalar(select(EventSource.id).where(EventSource.key == key))
            return list(s.scalars(select(AccessEvent).where(AccessEvent.source_id == sid).order_by(AccessEvent.id)))

    def quarantine(self, key: str) -> list[QuarantinedRecord]:
        with self.rt.session() as s:
            sid = s.scalar(select(EventSource.id).where(EventSource.key == key))
            return list(
                s.scalars(
                    select(QuarantinedRecord).where(QuarantinedRecord.source_id == sid).order_by(QuarantinedRecord.id)
                )
            )

    def source(self, key: str) -> EventSource:
        with self.rt.session() as s:
            src = s.scalars(select(EventSource).where(EventSource.key == key)).one()
            s.expunge(src)
            return src

    def findings(self, kind: str) -> list[Finding]:
        with self.rt.session() as s:
            return list(s.scalars(select(Finding).where(Finding.kind == kind).order_by(Finding.id)))

    def grant_last_used(self) -> datetime | None:
        with self.rt.session() as s:
            return s.scalar(select(Grant.last_used_at).where(Grant.id == self.grant_id))

    def count(self, model: Any) -> int:
        with self.rt.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)


def build_event_world(rt: Runtime) -> EventWorld:
    w = build_world(rt)
    with rt.work(SYSTEM) as ctx:
        ana = ctx.session.get(Person, w.people["ana"])
        ent = ctx.session.get(Entitlement, w.ents["db-admin"])
        assert ana is not None
        assert ent is not None
        [g] = issue(ctx, ana, [ent], {}, kind=GrantKind.STANDING, duration_days=None, reason="event tests")
        gid = g.id
    return EventWorld(w, gid)


def openssh_lines() -> list[str]:
    return OPENSSH.read_text(encoding="utf-8").splitlines()


def openssh_templates() -> list[str]:
    with OPENSSH_CSV.open(encoding="utf-8", newline="") as f:
        return [row["EventId"] for row in csv.DictReader(f)]
