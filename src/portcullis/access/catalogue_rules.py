"""Separation-of-duties rules (§22) and group mappings (how an entitlement looks in a target system, §21, §25)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from portcullis.access.catalogue_common import Rows, search, session_of
from portcullis.access.catalogue_roles import role_entitlement_ids
from portcullis.access.models import AccessRole, Entitlement, GroupMapping, RoleEntitlement, SodRule
from portcullis.access.schemas import GroupMappingIn, SodRuleIn
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, ErrorCollector, FieldError
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.ledger.service import record_change

# --- separation of duties ------------------------------------------------------------------------


def _side_label(s: Session, entitlement_id: int | None, role_id: int | None) -> str | None:
    if entitlement_id is not None:
        key = s.scalar(select(Entitlement.key).where(Entitlement.id == entitlement_id))
        return f"entitlement {key}"
    if role_id is not None:
        key = s.scalar(select(AccessRole.key).where(AccessRole.id == role_id))
        return f"role {key}"
    return None


def sod_rule_view(r: SodRule) -> dict[str, Any]:
    s = session_of(r)
    return {
        "id": r.id,
        "name": r.name,
        "left_entitlement_id": r.left_entitlement_id,
        "left_role_id": r.left_role_id,
        "right_entitlement_id": r.right_entitlement_id,
        "right_role_id": r.right_role_id,
        "left": _side_label(s, r.left_entitlement_id, r.left_role_id),
        "right": _side_label(s, r.right_entitlement_id, r.right_role_id),
        "reason": r.reason,
        "created_at": r.created_at,
    }


def _check_side(ctx: Context, errs: ErrorCollector, side: str, entitlement_id: int | None, role_id: int | None) -> bool:
    if entitlement_id is not None and ctx.session.get(Entitlement, entitlement_id) is None:
        errs.add(f"{side}_entitlement_id", f"no entitlement with id {entitlement_id}")
        return False
    if role_id is not None and ctx.session.get(AccessRole, role_id) is None:
        errs.add(f"{side}_role_id", f"no role with id {role_id}")
        return False
    return True


def _check_sod(ctx: Context, data: SodRuleIn) -> None:
    errs = ErrorCollector()
    left_ok = _check_side(ctx, errs, "left", data.left_entitlement_id, data.left_role_id)
    right_ok = _check_side(ctx, errs, "right", data.right_entitlement_id, data.right_role_id)
    if left_ok and right_ok:
        _check_distinct(ctx, errs, data)
    errs.raise_if_any("The separation-of-duties rule cannot be saved")
    le, lr, re_, rr = data.left_entitlement_id, data.left_role_id, data.right_entitlement_id, data.right_role_id
    same = and_(
        SodRule.left_entitlement_id.is_(le) if le is None else SodRule.left_entitlement_id == le,
        SodRule.left_role_id.is_(lr) if lr is None else SodRule.left_role_id == lr,
        SodRule.right_entitlement_id.is_(re_) if re_ is None else SodRule.right_entitlement_id == re_,
        SodRule.right_role_id.is_(rr) if rr is None else SodRule.right_role_id == rr,
    )
    mirrored = and_(
        SodRule.left_entitlement_id.is_(re_) if re_ is None else SodRule.left_entitlement_id == re_,
        SodRule.left_role_id.is_(rr) if rr is None else SodRule.left_role_id == rr,
        SodRule.right_entitlement_id.is_(le) if le is None else SodRule.right_entitlement_id == le,
        SodRule.right_role_id.is_(lr) if lr is None else SodRule.right_role_id == lr,
    )
    existing = ctx.session.scalars(select(SodRule).where(or_(same, mirrored)).limit(1)).one_or_none()
    side = "right_entitlement_id" if re_ is not None else "right_role_id"
    if existing is not None:
        raise Conflict(
            f"Separation-of-duties rule {existing.name!r} already keeps these two apart",
            [FieldError(side, f"the same pair is already rule {existing.id}")],
        )


def _check_distinct(ctx: Context, errs: ErrorCollector, data: SodRuleIn) -> None:
    """A rule needs two different things, neither contained in the other."""
    le, lr, re_, rr = data.left_entitlement_id, data.left_role_id, data.right_entitlement_id, data.right_role_id
    if le is not None and le == re_:
        errs.add("right_entitlement_id", "the same entitlement is on both sides")
        return
    if lr is not None and lr == rr:
        errs.add("right_role_id", "the same role is on both sides")
        return
    # An entitlement against a role that bundles it would forbid the role itself.
    if le is not None and rr is not None and le in role_entitlement_ids(ctx.session, rr):
        errs.add("right_role_id", f"role {rr} includes entitlement {le}: the rule would forbid the role itself")
    if re_ is not None and lr is not None and re_ in role_entitlement_ids(ctx.session, lr):
        errs.add("left_role_id", f"role {lr} includes entitlement {re_}: the rule would forbid the role itself")
    if le is not None and re_ is not None:
        both = select(RoleEntitlement.role_id).where(RoleEntitlement.entitlement_id == le)
        roles = list(
            ctx.session.scalars(
                select(AccessRole.key)
                .where(AccessRole.id.in_(both))
                .where(
                    AccessRole.id.in_(select(RoleEntitlement.role_id).where(RoleEntitlement.entitlement_id == re_))
                )
                .order_by(AccessRole.key)
            )
        )
        if roles:
            errs.add(
                "right_entitlement_id",
                f"role {', '.join(roles)} bundles both entitlements: split the role before adding this rule",
            )


def create_sod_rule(ctx: Context, data: SodRuleIn) -> SodRule:
    ctx.require(Permission.ACCESS_ADMIN)
    _check_sod(ctx, data)
    rule = SodRule(**data.model_dump(), created_at=ctx.now())
    ctx.session.add(rule)
    ctx.session.flush()
    record_change(ctx, "sod_rule.created", "sod_rule", rule.id, None, sod_rule_view(rule))
    return rule


def list_sod_rules(ctx: Context) -> list[SodRule]:
    ctx.require(Permission.ACCESS_READ)
    return list(ctx.session.scalars(select(SodRule).order_by(SodRule.id)))


def sod_rules_page(
    ctx: Context,
    *,
    entitlement_id: int | None = None,
    role_id: int | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    """Rules with `entitlement_id` or `role_id` on either side."""
    ctx.require(Permission.ACCESS_READ)
    stmt = select(SodRule)
    if entitlement_id is not None:
        stmt = stmt.where(
            or_(SodRule.left_entitlement_id == entitlement_id, SodRule.right_entitlement_id == entitlement_id)
        )
    if role_id is not None:
        stmt = stmt.where(or_(SodRule.left_role_id == role_id, SodRule.right_role_id == role_id))
    stmt = search(stmt, q, SodRule.name, SodRule.reason)
    return paginate(ctx.session, stmt, SodRule.id, after, limit)


# --- group mappings -----------------------------------------------------------------------------


def group_mapping_view(m: GroupMapping) -> dict[str, Any]:
    s = session_of(m)
    return {
        "id": m.id,
        "system": m.system,
        "group_name": m.group_name,
        "entitlement_id": m.entitlement_id,
        "entitlement_key": s.scalar(select(Entitlement.key).where(Entitlement.id == m.entitlement_id)),
    }


def create_group_mapping(ctx: Context, data: GroupMappingIn) -> GroupMapping:
    ctx.require(Permission.ACCESS_ADMIN)
    errs = ErrorCollector()
    if ctx.session.get(Entitlement, data.entitlement_id) is None:
        errs.add("entitlement_id", f"no entitlement with id {data.entitlement_id}")
    errs.raise_if_any("The group mapping cannot be saved")
    taken = ctx.session.scalar(
        select(GroupMapping.id).where(GroupMapping.system == data.system, GroupMapping.group_name == data.group_name)
    )
    if taken is not None:
        raise Conflict(
            f"Group {data.group_name!r} in {data.system} is already mapped",
            [FieldError("group_name", f"{data.group_name!r} in system {data.system!r} is already mapped ({taken})")],
        )
    m = GroupMapping(**data.model_dump())
    ctx.session.add(m)
    ctx.session.flush()
    record_change(ctx, "group_mapping.created", "group_mapping", m.id, None, group_mapping_view(m))
    return m


def list_group_mappings(ctx: Context, system: str | None = None) -> list[GroupMapping]:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(GroupMapping)
    if system is not None:
        stmt = stmt.where(GroupMapping.system == system)
    return list(ctx.session.scalars(stmt.order_by(GroupMapping.system, GroupMapping.group_name)))


def group_mappings_page(
    ctx: Context,
    *,
    system: str | None = None,
    entitlement_id: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(GroupMapping)
    if system is not None:
        stmt = stmt.where(GroupMapping.system == system)
    if entitlement_id is not None:
        stmt = stmt.where(GroupMapping.entitlement_id == entitlement_id)
    return paginate(ctx.session, stmt, GroupMapping.id, after, limit)
