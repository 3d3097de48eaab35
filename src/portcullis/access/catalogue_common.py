"""Helpers shared by the catalogue modules: loading, uniqueness, searching, change detection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, object_session

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, NotFound, PermissionDenied
from portcullis.core.permissions import Permission

T = TypeVar("T")
Rows = tuple[list[Any], int, int | None]
VOLATILE = ("updated_at",)


def session_of(obj: object) -> Session:
    s = object_session(obj)
    if s is None:
        raise RuntimeError("a view needs an object attached to a session")
    return s


def load(ctx: Context, model: type[T], obj_id: int, label: str) -> T:
    obj = ctx.session.get(model, obj_id)
    if obj is None:
        raise NotFound(f"No {label} with id {obj_id}")
    return obj


def require_any(ctx: Context, *permissions: Permission) -> None:
    """Passes if the principal holds one of the permissions; else refuses naming the first."""
    if any(ctx.principal.can(p) for p in permissions):
        return
    try:
        ctx.require(permissions[0])
    except PermissionDenied as exc:
        others = ", ".join(p.value for p in permissions[1:])
        raise PermissionDenied(exc.detail + (f" (nor {others})" if others else "")) from exc


def check_unique(
    ctx: Context, col: InstrumentedAttribute[str], value: str, own_id: int | None, label: str, field: str
) -> None:
    """Conflict naming the field: checked before the insert, since a unique-index
    error aborts a PostgreSQL transaction and reads differently on each database."""
    model = col.class_
    stmt = select(model.id).where(col == value)
    if own_id is not None:
        stmt = stmt.where(model.id != own_id)
    if ctx.session.scalar(stmt) is not None:
        raise Conflict(
            f"A {label} with {field} {value!r} already exists",
            [FieldError(field, f"{value!r} is already used by another {label}")],
        )


def search(stmt: Select[Any], q: str | None, *cols: InstrumentedAttribute[str]) -> Select[Any]:
    if not q or not q.strip():
        return stmt
    needle = q.strip().lower()
    return stmt.where(or_(*(func.lower(c).contains(needle, autoescape=True) for c in cols)))


def unique_in_order(values: Iterable[str]) -> list[str]:
    # A list given twice the same course or approver kind means it once.
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(str(v), None)
    return list(seen)


def unchanged(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return {k: v for k, v in before.items() if k not in VOLATILE} == {
        k: v for k, v in after.items() if k not in VOLATILE
    }
