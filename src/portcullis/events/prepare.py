"""The first half of ingestion, which needs no database: parse, resolve, hash, build rows.

It is pure so that it can run in a second process while the first writes the
previous batch (see runner.py): everything it needs (the parser, the
directory of people, assets and zones, the source's ids) is plain data, and
everything it produces is plain data the writer appends in one transaction.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite

from portcullis.events.identity import Directory
from portcullis.events.models import AccessEvent
from portcullis.events.parsers.base import ActorKind, Category, Malformed, Outcome, Parser
from portcullis.events.usage import is_use

_string = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(slots=True)
class RawRecord:
    """One raw record as cut out of its input."""

    data: bytes
    position: int  # 1-based line or record number in the input
    offset: int | None = None  # byte offset of the record in the input, when it has one
    end: int = 0  # byte offset just after the record: where the cursor moves


def raw_payload(position: int, data: bytes) -> tuple[bytes, str | None]:
    """The ledger bytes of a raw record (RFC 8785: keys sorted, no spaces) and its text, if it is UTF-8.

    Built by hand because it runs once per record; the stdlib's string encoder
    escapes exactly as RFC 8785 asks (see core/canonical.py).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        b64 = base64.b64encode(data).decode("ascii")
        return f'{{"line":{position},"raw_b64":"{b64}"}}'.encode(), None
    return f'{{"line":{position},"raw":{_string(text)}}}'.encode(), text


def bad_encoding(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8: byte 0x{data[e.start]:02x} at byte {e.start + 1} of the record ({e.reason})"
    return "not UTF-8"


def time_binder(dialect_name: str) -> Callable[[datetime], Any]:
    """The driver value of an event time, as the commit side's dialect wants it."""
    dialect = sqlite.dialect() if dialect_name == "sqlite" else postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    processor = AccessEvent.__table__.c.time.type.dialect_impl(dialect).bind_processor(dialect)
    return processor if processor is not None else (lambda t: t)


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Ingestion makes millions of short-lived objects without cycles; the cyclic collector,
    run every 700 allocations by default and scanning every object still alive, then costs
    a quarter of the time. Older objects are frozen out of its sight and it runs less often."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def hour_of(t: datetime) -> int:
    """Hours since the epoch: the key access_event is indexed by for time ranges."""
    return int(t.timestamp()) // 3600


@dataclass(slots=True)
class Quarantine:
    index: int  # in the batch: the ledger seq is the batch's first seq plus this
    position: int
    offset: int | None
    reason: str
    raw: bytes


@dataclass
class Prepared:
    """One batch ready to append: ledger payloads and leaf hashes, event rows, quarantine, uses."""

    payloads: list[bytes] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    # Event rows without their first two columns (source id, ledger seq), with the batch index first.
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    quarantine: list[Quarantine] = field(default_factory=list)
    uses: list[tuple[int, int | None, int | None, bool, datetime]] = field(default_factory=list)
    unattributed: list[tuple[int | None, int | None, str, datetime]] = field(default_factory=list)
    last_time: datetime | None = None
    parser_state: dict[str, Any] = field(default_factory=dict)
    last_position: int = 0
    last_end: int = 0

    def __len__(self) -> int:
        return len(self.payloads)


@dataclass
class Preparer:
    """Turns batches of raw records into Prepared batches for one source."""

    parser: Parser
    directory: Directory
    asset_id: int | None
    zone_id: int | None
    bind_time: Callable[[datetime], Any]
    # Log lines come many to the second: the last time bound is reused when the next is equal.
    _last_time: datetime | None = None
    _last_bound: Any = None
    _last_hour: int = 0

    def prepare(self, records: Sequence[RawRecord]) -> Prepared:
        out = Prepared()
        payloads, leaves, rows = out.payloads, out.leaves, out.rows
        sha = hashlib.sha256
        parse = self.parser.parse
        other = Category.OTHER
        last_time = None
        for k, rec in enumerate(records):
            payload, text = raw_payload(rec.position, rec.data)
            payloads.append(payload)
            leaves.append(sha(b"\x00" + payload).digest())
            if text is None:
                out.quarantine.append(Quarantine(k, rec.position, rec.offset, bad_encoding(rec.data), rec.data))
                continue
            try:
                event = parse(text)
            except Malformed as e:
                out.quarantine.append(Quarantine(k, rec.position, rec.offset, e.reason, rec.data))
                continue
            if event is None or event.category is other:
                continue
            row = self._row(k, event, out)
            if isinstance(row, str):
                out.quarantine.append(Quarantine(k, rec.position, rec.offset, row, rec.data))
                continue
            rows.append(row)
            if last_time is None or event.time > last_time:
                last_time = event.time
        out.last_time = last_time
        out.parser_state = self.parser.state()
        if records:
            out.last_position = records[-1].position
            out.last_end = records[-1].end
        return out

    def _row(self, k: int, event: Any, out: Prepared) -> tuple[Any, ...] | str:
        """The event's row, or the reason it must be quarantined."""
        d = self.directory
        asset_id = self.asset_id
        zone_id = self.zone_id
        if event.category is Category.PHYSICAL_ENTRY:
            asset_id = None
            if event.target:
                zone_id = d.zone_ids.get(event.target)
                if zone_id is None:
                    return f"zone {event.target!r} is not in the zone register"
        elif event.host and d.hosts:
            asset_id = d.hosts.get(event.host, asset_id)
        person_id = d.person(event.actor, event.actor_kind)
        if person_id is None and event.actor_kind is ActorKind.BADGE:
            return f"unknown badge {event.actor!r}: no person holds it"
        if event.outcome is Outcome.SUCCESS and is_use(event.category, event.action):
            if person_id is not None:
                out.uses.append((person_id, asset_id, zone_id, event.privileged, event.time))
            elif event.actor and (asset_id is not None or zone_id is not None):
                out.unattributed.append((asset_id, zone_id, event.actor, event.time))
        t = event.time
        if t != self._last_time:
            self._last_time, self._last_bound, self._last_hour = t, self.bind_time(t), hour_of(t)
        # _value_ rather than .value: the property costs ten times the plain attribute, four times a row.
        return (
            k,
            self._last_bound,
            self._last_hour,
            event.category._value_,
            event.action,
            event.outcome._value_,
            event.actor,
            event.actor_kind._value_,
            person_id,
            asset_id,
            zone_id,
            event.host,
            event.source_address,
            event.method._value_,
            event.privileged,
            event.detail,
        )
