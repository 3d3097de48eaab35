"""Event sources: the feeds of access records, what they report on, and how they are read."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core import secrets
from portcullis.core.context import Context
from portcullis.core.errors import AuthenticationFailed, Conflict, FieldError, NotFound, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.events.identity import Directory
from portcullis.events.models import EventSource
from portcullis.events.parsers import build_parser
from portcullis.inventory.models import Asset, Zone
from portcullis.ledger.service import record_change

TOKEN_PREFIX = "pcs_"  # noqa: S105 - a prefix, not a secret
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
# The pipeline's own keys in a source's config; "parser" holds the parser's.
CONFIG_KEYS = {"parser", "accounts", "badges", "hosts", "syslog_hosts"}


class SourceIn(BaseModel):
    key: str = Field(description="Short name, lower case: the ledger stream is events:<key>")
    name: str
    format: str
    asset: str | None = Field(default=None, description="External id of the ICT asset it reports on")
    zone: str | None = Field(default=None, description="External id of the zone it reports on")
    config: dict[str, Any] = Field(default_factory=dict)
    retention_days: int | None = None
    retention_reason: str = ""
    active: bool = True

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _KEY.match(v):
            raise ValueError("lower-case letters, digits, '.', '_' and '-', starting with a letter or digit")
        return v


def source_view(s: EventSource, session: Session | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": s.id,
        "key": s.key,
        "name": s.name,
        "format": s.format,
        "asset_id": s.asset_id,
        "zone_id": s.zone_id,
        "stream": s.stream,
        "config": s.config,
        "retention_days": s.retention_days,
        "retention_reason": s.retention_reason,
        "active": s.active,
        "has_token": s.token_lookup is not None,
        "raw_total": s.raw_total,
        "events_total": s.events_total,
        "quarantined_total": s.quarantined_total,
        "last_event_at": s.last_event_at,
        "last_ingest_at": s.last_ingest_at,
    }
    if session is not None:
        from portcullis.events.retention import source_retention_days

        view["retention_in_force_days"] = source_retention_days(session, s)
    return view


def _check(ctx: Context, data: SourceIn) -> tuple[int | None, int | None]:
    errors: list[FieldError] = []
    s = ctx.session
    asset_id = zone_id = None
    if data.asset:
        asset_id = s.scalar(select(Asset.id).where(Asset.external_id == data.asset))
        if asset_id is None:
            errors.append(FieldError("asset", f"no ICT asset with external id {data.asset!r}"))
    if data.zone:
        zone_id = s.scalar(select(Zone.id).where(Zone.external_id == data.zone))
        if zone_id is None:
            errors.append(FieldError("zone", f"no zone with external id {data.zone!r}"))
    if not data.asset and not data.zone:
        errors.append(FieldError("asset", "a source reports on an ICT asset or a zone: its criticality sets retention"))
    unknown = set(data.config) - CONFIG_KEYS
    if unknown:
        errors.append(FieldError("config", f"unknown keys {sorted(unknown)}; parser settings go under 'parser'"))
    if data.retention_days is not None:
        if data.retention_days < 1:
            errors.append(FieldError("retention_days", "must be at least 1"))
        if not data.retention_reason.strip():
            errors.append(FieldError("retention_reason", "an override of the retention needs its reason"))
    if errors:
        raise ValidationFailed("The event source is not valid", errors)
    # The parser and the directory check their parts of the configuration, naming the field.
    build_parser(data.format, dict(data.config.get("parser", {})))
    Directory(s, data.config)
    return asset_id, zone_id


def create_source(ctx: Context, data: SourceIn) -> EventSource:
    ctx.require(Permission.EVENTS_ADMIN)
    if ctx.session.scalar(select(EventSource.id).where(EventSource.key == data.key)) is not None:
        raise Conflict(f"An event source with key {data.key!r} exists")
    asset_id, zone_id = _check(ctx, data)
    now = ctx.now()
    src = EventSource(
        key=data.key,
        name=data.name,
        format=data.format,
        asset_id=asset_id,
        zone_id=zone_id,
        config=data.config,
        retention_days=data.retention_days,
        retention_reason=data.retention_reason,
        active=data.active,
        created_at=now,
        updated_at=now,
    )
    ctx.session.add(src)
    ctx.session.flush()
    record_change(ctx, "event_source.created", "event_source", src.id, None, source_view(src))
    return src


def update_source(ctx: Context, key: str, data: SourceIn) -> EventSource:
    ctx.require(Permission.EVENTS_ADMIN)
    src = get_source(ctx, key)
    if data.key != key:
        raise ValidationFailed("A source's key names its ledger stream and cannot change", [FieldError("key", key)])
    if data.format != src.format and src.raw_total:
        raise ValidationFailed(
            "A source that has taken records keeps its format; make a new source",
            [FieldError("format", f"is {src.format!r}")],
        )
    asset_id, zone_id = _check(ctx, data)
    before = source_view(src)
    src.name, src.format, src.asset_id, src.zone_id = data.name, data.format, asset_id, zone_id
    src.config, src.active = data.config, data.active
    src.retention_days, src.retention_reason = data.retention_days, data.retention_reason
    src.updated_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, "event_source.updated", "event_source", src.id, before, source_view(src))
    return src


def get_source(ctx: Context, key: str) -> EventSource:
    ctx.require(Permission.EVENTS_READ)
    src = ctx.session.scalars(select(EventSource).where(EventSource.key == key)).one_or_none()
    if src is None:
        raise NotFound(f"No event source with key {key!r}")
    return src


def list_sources(ctx: Context) -> list[EventSource]:
    ctx.require(Permission.EVENTS_READ)
    return list(ctx.session.scalars(select(EventSource).order_by(EventSource.key)))


def issue_token(ctx: Context, key: str) -> str:
    """A new token for the source's HTTP batch endpoint; the previous one stops working. Shown once."""
    ctx.require(Permission.EVENTS_ADMIN)
    src = get_source(ctx, key)
    lookup, secret = secrets.new_token(9), secrets.new_token(32)
    src.token_lookup, src.token_hash = lookup, secrets.token_digest(secret)
    src.updated_at = ctx.now()
    # The lookup id says which credential is in force; the secret never leaves this function but once.
    record_change(ctx, "event_source.token_issued", "event_source", src.id, credential_id=lookup)
    return f"{TOKEN_PREFIX}{lookup}.{secret}"


def source_for_token(session: Session, key: str, presented: str) -> EventSource:
    """The source a batch token belongs to; the same refusal whatever is wrong with it."""
    refused = AuthenticationFailed("Not a valid token for this event source")
    if not presented.startswith(TOKEN_PREFIX):
        raise refused
    lookup, _, secret = presented[len(TOKEN_PREFIX) :].partition(".")
    src = session.scalars(select(EventSource).where(EventSource.token_lookup == lookup)).one_or_none()
    if src is None or src.key != key or src.token_hash is None:
        secrets.same(secrets.token_digest(secret), "0" * 64)  # the same work as a real comparison
        raise refused
    if not secrets.same(secrets.token_digest(secret), src.token_hash):
        raise refused
    return src
