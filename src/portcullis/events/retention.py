"""How long a source's raw records are kept (§23): by the criticality of what it reports on.

The ledger's purge asks this for streams named events:<key>. A source's own
override (with its reason) wins; else the proportionality default for the
criticality of its ICT asset or zone, taking the higher when it names both.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.events.models import EventSource
from portcullis.inventory.models import Asset, Zone
from portcullis.inventory.proportionality import default_value
from portcullis.ledger.models import LedgerStream
from portcullis.ledger.retention import register_resolver

PREFIX = "events:"
_RANK = {"critical": 0, "important": 1, "other": 2}


def source_retention_days(session: Session, source: EventSource) -> int:
    if source.retention_days is not None:
        return source.retention_days
    levels = []
    if source.asset_id is not None:
        levels.append(session.scalar(select(Asset.criticality).where(Asset.id == source.asset_id)))
    if source.zone_id is not None:
        levels.append(session.scalar(select(Zone.criticality).where(Zone.id == source.zone_id)))
    level = min((lv for lv in levels if lv in _RANK), key=_RANK.__getitem__, default="critical")
    return default_value(session, f"retention_days.{level}")


def event_stream_retention(session: Session, stream: LedgerStream) -> int | None:
    if not stream.name.startswith(PREFIX):
        return None
    source = session.scalars(select(EventSource).where(EventSource.key == stream.name[len(PREFIX) :])).one_or_none()
    return None if source is None else source_retention_days(session, source)


register_resolver(event_stream_retention)
