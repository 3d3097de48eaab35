"""Findings: something wrong, found by a check, with an owner and a due date (§17 iii, §22, §25).

A finding is keyed by what is wrong ("<check>:grant:<id>", "orphan:account:<id>" ...):
checks run every day and must neither pile up duplicates nor forget to close what
has been put right, so opening is idempotent on the key while open, and a check
run closes the findings of its kind that it no longer sees (resolve_missing).

open_finding and resolve_missing check no permission: they are called inside
services that did (a decision, a person's change, the daily pass, reconciliation),
and a finding must be raised whoever caused it. resolve_finding, the human act of
closing one, needs ACCESS_ADMIN.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from portcullis.access.models import Finding, FindingStatus
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person
from portcullis.ledger.service import Change, record_changes

DUE_DAYS = 14
HIGH = "high"
MEDIUM = "medium"
LOW = "low"
SEVERITIES = (HIGH, MEDIUM, LOW)
CONDITION_GONE = "the check no longer finds this"


@dataclass(frozen=True)
class FindingSpec:
    """A finding to open, as a check produces it."""

    key: str
    kind: str
    severity: str
    detail: str
    person_id: int | None = None
    grant_id: int | None = None
    account_id: int | None = None
    owner_id: int | None = None
    due_days: int = DUE_DAYS


def _emails(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {i: e for i, e in session.execute(select(Person.id, Person.email).where(Person.id.in_(wanted)))}


def _view(f: Finding, emails: dict[int, str]) -> dict[str, Any]:
    return {
        "id": f.id,
        "key": f.key,
        "kind": f.kind,
        "severity": f.severity,
        "detail": f.detail,
        "person_id": f.person_id,
        "person_email": emails.get(f.person_id) if f.person_id is not None else None,
        "grant_id": f.grant_id,
        "account_id": f.account_id,
        "owner_id": f.owner_id,
        "owner_email": emails.get(f.owner_id) if f.owner_id is not None else None,
        "due_on": f.due_on,
        "status": f.status,
        "opened_at": f.opened_at,
        "resolved_at": f.resolved_at,
        "resolution": f.resolution,
    }


def finding_view(f: Finding) -> dict[str, Any]:
    s = object_session(f)
    assert s is not None, "a view needs an object attached to a session"
    return _view(f, _emails(s, (f.person_id, f.owner_id)))


def _open_by_key(session: Session, key: str) -> Finding | None:
    return session.scalars(
        select(Finding).where(Finding.key == key, Finding.status == FindingStatus.OPEN.value).limit(1)
    ).one_or_none()


def _new(ctx: Context, spec: FindingSpec) -> Finding:
    if spec.severity not in SEVERITIES:
        raise ValueError(f"unknown severity {spec.severity!r}")
    now = ctx.now()
    return Finding(
        key=spec.key,
        kind=spec.kind,
        severity=spec.severity,
        detail=spec.detail,
        person_id=spec.person_id,
        grant_id=spec.grant_id,
        account_id=spec.account_id,
        owner_id=spec.owner_id,
        due_on=now + timedelta(days=spec.due_days),
        status=FindingStatus.OPEN.value,
        opened_at=now,
    )


def _insert(ctx: Context, fresh: list[Finding]) -> None:
    # One flush for the lot (a batched INSERT ... RETURNING) and one query for the emails
    # in the views: a daily pass may open thousands.
    ctx.session.add_all(fresh)
    ctx.session.flush()
    emails = _emails(ctx.session, [x for f in fresh for x in (f.person_id, f.owner_id)])
    record_changes(ctx, [Change("finding.opened", "finding", f.id, None, _view(f, emails)) for f in fresh])


def open_finding(
    ctx: Context,
    *,
    key: str,
    kind: str,
    severity: str,
    detail: str,
    person_id: int | None = None,
    grant_id: int | None = None,
    account_id: int | None = None,
    owner_id: int | None = None,
    due_days: int = DUE_DAYS,
) -> Finding:
    """The open finding with this key, opened now if there is none."""
    existing = _open_by_key(ctx.session, key)
    if existing is not None:
        return existing
    f = _new(ctx, FindingSpec(key, kind, severity, detail, person_id, grant_id, account_id, owner_id, due_days))
    _insert(ctx, [f])
    return f


def open_many(ctx: Context, specs: Iterable[FindingSpec], already_open: set[str]) -> int:
    """Open each spec whose key is not in `already_open` (the caller loaded them in one query)."""
    fresh: list[Finding] = []
    for spec in specs:
        if spec.key in already_open:
            continue
        already_open.add(spec.key)
        fresh.append(_new(ctx, spec))
    if fresh:
        _insert(ctx, fresh)
    return len(fresh)


def _close(ctx: Context, closing: list[Finding], resolution: str) -> None:
    emails = _emails(ctx.session, [x for f in closing for x in (f.person_id, f.owner_id)])
    before = [_view(f, emails) for f in closing]
    now = ctx.now()
    for f in closing:
        f.status = FindingStatus.RESOLVED.value
        f.resolved_at = now
        f.resolution = resolution
    ctx.session.flush()
    pairs = zip(closing, before, strict=True)
    record_changes(ctx, [Change("finding.resolved", "finding", f.id, b, _view(f, emails)) for f, b in pairs])


def resolve_finding(ctx: Context, finding_id: int, resolution: str) -> Finding:
    ctx.require(Permission.ACCESS_ADMIN)
    f = ctx.session.get(Finding, finding_id)
    if f is None:
        raise NotFound(f"No finding with id {finding_id}")
    resolution = (resolution or "").strip()
    if not resolution:
        raise ValidationFailed("Say how the finding was resolved", [FieldError("resolution", "must not be empty")])
    if f.status != FindingStatus.OPEN.value:
        raise Conflict(f"Finding {finding_id} is already resolved ({f.resolution})")
    _close(ctx, [f], resolution)
    return f


def open_keys(session: Session, prefixes: Iterable[str]) -> dict[str, Finding]:
    """Open findings whose key starts with one of `prefixes`, by key."""
    out: dict[str, Finding] = {}
    for prefix in prefixes:
        stmt = select(Finding).where(
            Finding.status == FindingStatus.OPEN.value,
            Finding.key.startswith(prefix, autoescape=True),
        )
        for f in session.scalars(stmt):
            out[f.key] = f
    return out


def resolve_key(ctx: Context, key: str, resolution: str = CONDITION_GONE) -> bool:
    """Close the open finding with exactly this key, if there is one (a single object put right)."""
    f = _open_by_key(ctx.session, key)
    if f is None:
        return False
    _close(ctx, [f], resolution)
    return True


def resolve_missing(ctx: Context, prefix: str, still_true: set[str]) -> int:
    """Close the open findings of one check run (keys starting with `prefix`) it no longer found."""
    gone = [f for key, f in sorted(open_keys(ctx.session, [prefix]).items()) if key not in still_true]
    if gone:
        _close(ctx, gone, CONDITION_GONE)
    return len(gone)


def list_findings(
    ctx: Context,
    *,
    kind: str | None = None,
    status: str | None = FindingStatus.OPEN.value,
    owner_id: int | None = None,
    person_id: int | None = None,
    grant_id: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Finding], int, int | None]:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(Finding)
    if kind:
        stmt = stmt.where(Finding.kind == kind)
    if status:
        stmt = stmt.where(Finding.status == status)
    if owner_id is not None:
        stmt = stmt.where(Finding.owner_id == owner_id)
    if person_id is not None:
        stmt = stmt.where(Finding.person_id == person_id)
    if grant_id is not None:
        stmt = stmt.where(Finding.grant_id == grant_id)
    return paginate(ctx.session, stmt, Finding.id, after, limit)
