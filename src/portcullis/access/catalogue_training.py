"""Training records: who completed which course, and until when it counts (§13, §19, §21).

Course codes are free text until the governance issue brings a course catalogue.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portcullis.access.models import TrainingRecord
from portcullis.access.schemas import TrainingRecordIn
from portcullis.core.clock import as_utc
from portcullis.core.context import Context
from portcullis.core.errors import ErrorCollector
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person
from portcullis.ledger.service import record_change


def training_view(t: TrainingRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "person_id": t.person_id,
        "course": t.course,
        "completed_at": t.completed_at,
        "expires_at": t.expires_at,
        "created_at": t.created_at,
    }


def record_training(ctx: Context, data: TrainingRecordIn) -> TrainingRecord:
    ctx.require(Permission.ACCESS_ADMIN)
    errs = ErrorCollector()
    if ctx.session.get(Person, data.person_id) is None:
        errs.add("person_id", f"no person with id {data.person_id}")
    # A naive time from a form or file is taken as UTC, like everything stored.
    completed = as_utc(data.completed_at)
    expires = as_utc(data.expires_at) if data.expires_at is not None else None
    now = ctx.now()
    if completed > now:
        errs.add("completed_at", f"{completed.isoformat()} is in the future: record training once it is done")
    if expires is not None and expires <= completed:
        errs.add("expires_at", "must be after completed_at")
    errs.raise_if_any("The training record cannot be saved")
    t = TrainingRecord(
        person_id=data.person_id, course=data.course, completed_at=completed, expires_at=expires, created_at=now
    )
    ctx.session.add(t)
    ctx.session.flush()
    email = ctx.session.scalar(select(Person.email).where(Person.id == t.person_id))
    record_change(ctx, "training.recorded", "training_record", t.id, None, training_view(t), person_email=email)
    return t


def list_training(ctx: Context, person_id: int | None = None) -> list[TrainingRecord]:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(TrainingRecord)
    if person_id is not None:
        stmt = stmt.where(TrainingRecord.person_id == person_id)
    return list(ctx.session.scalars(stmt.order_by(TrainingRecord.person_id, TrainingRecord.course, TrainingRecord.id)))


def training_page(
    ctx: Context,
    *,
    person_id: int | None = None,
    course: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Any], int, int | None]:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(TrainingRecord)
    if person_id is not None:
        stmt = stmt.where(TrainingRecord.person_id == person_id)
    if course:
        stmt = stmt.where(TrainingRecord.course == course.strip())
    return paginate(ctx.session, stmt, TrainingRecord.id, after, limit)


def current_courses(session: Session, person_id: int, at: datetime) -> set[str]:
    """Courses completed by `at` and not lapsed at `at`; no permission: policy checks call it."""
    stmt = select(TrainingRecord.course).where(
        TrainingRecord.person_id == person_id,
        TrainingRecord.completed_at <= at,
        or_(TrainingRecord.expires_at.is_(None), TrainingRecord.expires_at > at),
    )
    return set(session.scalars(stmt))


def lapsed_courses(session: Session, person_id: int, at: datetime) -> set[str]:
    """Courses the person once completed whose every record has lapsed by `at`."""
    done = set(
        session.scalars(
            select(TrainingRecord.course).where(
                TrainingRecord.person_id == person_id, TrainingRecord.completed_at <= at
            )
        )
    )
    return done - current_courses(session, person_id, at)
