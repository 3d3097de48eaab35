"""Roles: bundles of entitlements held standing by those eligible (role-based access, §22).

Eligibility (department, kind of person, current training) is checked when a role
is granted or requested; an empty list means "any".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portcullis.access.catalogue_common import (
    Rows,
    check_unique,
    load,
    require_any,
    search,
    session_of,
    unchanged,
    unique_in_order,
)
from portcullis.access.catalogue_training import current_courses
from portcullis.access.models import AccessRole, Entitlement, RoleEntitlement, SodRule
from portcullis.access.schemas import AccessRoleIn
from portcullis.core.context import Context
from portcullis.core.errors import ErrorCollector
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person, PersonKind
from portcullis.ledger.service import record_change


def role_entitlement_ids(session: Session, role_id: int) -> list[int]:
    return list(
        session.scalars(
            select(RoleEntitlement.entitlement_id)
            .where(RoleEntitlement.role_id == role_id)
            .order_by(RoleEntitlement.entitlement_id)
        )
    )


def role_view(r: AccessRole) -> dict[str, Any]:
    s = session_of(r)
    ids = role_entitlement_ids(s, r.id)
    pairs = s.execute(select(Entitlement.id, Entitlement.key).where(Entitlement.id.in_(ids)))
    keys: dict[int, str] = {i: k for i, k in pairs}
    return {
        "id": r.id,
        "key": r.key,
        "name": r.name,
        "description": r.description,
        "departments": list(r.departments or []),
        "person_kinds": list(r.person_kinds or []),
        "required_training": list(r.required_training or []),
        "entitlement_ids": ids,
        "entitlement_keys": [keys[i] for i in ids],
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


def _fields(data: AccessRoleIn) -> dict[str, Any]:
    fields = data.model_dump(exclude={"entitlement_ids"})
    for name in ("departments", "person_kinds", "required_training"):
        fields[name] = unique_in_order(fields[name])
    return fields


def _check(ctx: Context, fields: dict[str, Any], entitlement_ids: list[int], own_id: int | None) -> None:
    errs = ErrorCollector()
    kinds = {k.value for k in PersonKind}
    bad_kinds = [k for k in fields["person_kinds"] if k not in kinds]
    if bad_kinds:
        errs.add("person_kinds", f"{', '.join(bad_kinds)} not a kind of person; choose from {', '.join(sorted(kinds))}")
    found = set(ctx.session.scalars(select(Entitlement.id).where(Entitlement.id.in_(entitlement_ids))))
    missing = [i for i in entitlement_ids if i not in found]
    if missing:
        errs.add("entitlement_ids", f"no entitlement with id {', '.join(str(i) for i in missing)}")
    else:
        # A role whose every holder breaches a separation-of-duties rule is a mistake in the catalogue.
        wanted = set(entitlement_ids)
        for rule in ctx.session.scalars(
            select(SodRule).where(SodRule.left_entitlement_id.is_not(None), SodRule.right_entitlement_id.is_not(None))
        ):
            if rule.left_entitlement_id in wanted and rule.right_entitlement_id in wanted:
                errs.add(
                    "entitlement_ids",
                    f"holds both sides of separation-of-duties rule {rule.name!r} "
                    f"(entitlements {rule.left_entitlement_id} and {rule.right_entitlement_id})",
                )
    errs.raise_if_any("The role cannot be saved")
    check_unique(ctx, AccessRole.key, fields["key"], own_id, "role", "key")


def _set_entitlements(ctx: Context, role_id: int, entitlement_ids: list[int]) -> None:
    ctx.session.execute(delete(RoleEntitlement).where(RoleEntitlement.role_id == role_id))
    for eid in sorted(set(entitlement_ids)):
        ctx.session.add(RoleEntitlement(role_id=role_id, entitlement_id=eid))
    ctx.session.flush()


def create_role(ctx: Context, data: AccessRoleIn) -> AccessRole:
    ctx.require(Permission.ACCESS_ADMIN)
    fields = _fields(data)
    _check(ctx, fields, data.entitlement_ids, None)
    now = ctx.now()
    role = AccessRole(**fields, created_at=now, updated_at=now)
    ctx.session.add(role)
    ctx.session.flush()
    _set_entitlements(ctx, role.id, data.entitlement_ids)
    record_change(ctx, "role.created", "access_role", role.id, None, role_view(role))
    return role


def update_role(ctx: Context, role_id: int, data: AccessRoleIn) -> AccessRole:
    ctx.require(Permission.ACCESS_ADMIN)
    role = load(ctx, AccessRole, role_id, "role")
    fields = _fields(data)
    _check(ctx, fields, data.entitlement_ids, role.id)
    before = role_view(role)
    for k, v in fields.items():
        setattr(role, k, v)
    _set_entitlements(ctx, role.id, data.entitlement_ids)
    if unchanged(before, role_view(role)):
        return role
    role.updated_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, "role.updated", "access_role", role.id, before, role_view(role))
    return role


def get_role(ctx: Context, role_id: int) -> AccessRole:
    require_any(ctx, Permission.ACCESS_READ, Permission.ACCESS_REQUEST)
    return load(ctx, AccessRole, role_id, "role")


def find_role_by_key(ctx: Context, key: str) -> AccessRole | None:
    require_any(ctx, Permission.ACCESS_READ, Permission.ACCESS_REQUEST)
    return ctx.session.scalars(select(AccessRole).where(AccessRole.key == key.strip())).one_or_none()


def list_roles(
    ctx: Context,
    *,
    entitlement_id: int | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    require_any(ctx, Permission.ACCESS_READ, Permission.ACCESS_REQUEST)
    stmt = select(AccessRole)
    if entitlement_id is not None:
        stmt = stmt.where(
            AccessRole.id.in_(select(RoleEntitlement.role_id).where(RoleEntitlement.entitlement_id == entitlement_id))
        )
    stmt = search(stmt, q, AccessRole.key, AccessRole.name, AccessRole.description)
    return paginate(ctx.session, stmt, AccessRole.id, after, limit)


def role_eligibility_problems(session: Session, person: Person, role: AccessRole, at: datetime) -> list[str]:
    """Why `person` may not hold `role` at `at`, in plain words; [] if eligible.

    Whether the person is active is the policy's person_inactive check, not repeated here.
    """
    problems: list[str] = []
    if role.departments and person.department not in role.departments:
        problems.append(
            f"department {person.department or '(none)'} is not one of: {', '.join(role.departments)}"
        )
    if role.person_kinds and person.kind not in role.person_kinds:
        problems.append(f"kind of person {person.kind} is not one of: {', '.join(role.person_kinds)}")
    if role.required_training:
        current = current_courses(session, person.id, at)
        problems.extend(
            f"training {course} missing or lapsed" for course in role.required_training if course not in current
        )
    return problems
