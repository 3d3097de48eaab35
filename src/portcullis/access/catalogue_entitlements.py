"""Entitlements: one right on one ICT asset (logical, §21) or zone (physical, §19).

Rules checked before anything is written:
- the key is unique (Conflict naming `key`);
- the asset or zone exists (ValidationFailed naming `asset_id` / `zone_id`);
- remote administration is on an ICT asset, never on a zone;
- privileged or remote-administration access to a critical asset lists the owner
  among its approvers: §24 makes the owner the one who decides who administers it;
- privileged access never needs fewer than two approvers (the two-approver rule, §22).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
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
from portcullis.access.models import ApproverKind, Entitlement, TargetKind
from portcullis.access.schemas import EntitlementIn
from portcullis.core.context import Context
from portcullis.core.errors import ErrorCollector
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Asset, Criticality, Zone
from portcullis.inventory.proportionality import MIN_PRIVILEGED_APPROVERS, default_value
from portcullis.ledger.service import record_change


def entitlement_view(e: Entitlement) -> dict[str, Any]:
    s = session_of(e)
    asset_ext = s.scalar(select(Asset.external_id).where(Asset.id == e.asset_id)) if e.asset_id else None
    zone_ext = s.scalar(select(Zone.external_id).where(Zone.id == e.zone_id)) if e.zone_id else None
    return {
        "id": e.id,
        "key": e.key,
        "name": e.name,
        "description": e.description,
        "target_kind": (TargetKind.ASSET if e.asset_id is not None else TargetKind.ZONE).value,
        "asset_id": e.asset_id,
        "asset_external_id": asset_ext,
        "zone_id": e.zone_id,
        "zone_external_id": zone_ext,
        "privileged": e.privileged,
        "remote_admin": e.remote_admin,
        "required_training": list(e.required_training or []),
        "max_duration_days": e.max_duration_days,
        "approvers": list(e.approvers or []),
        "min_approvals": e.min_approvals,
        "required_approvals": required_approvals(s, e),
        "scope": e.scope,
        "active": e.active,
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    }


def required_approvals(session: Session, entitlement: Entitlement) -> int:
    """How many distinct people must approve a request for this entitlement.

    Unset: the tier's `privileged_approvers` for privileged access (§11, §22), else one.
    Privileged access never goes below two whatever was stored.
    """
    if entitlement.min_approvals is not None:
        n = entitlement.min_approvals
    elif entitlement.privileged:
        n = default_value(session, "privileged_approvers")
    else:
        n = 1
    if entitlement.privileged:
        n = max(n, MIN_PRIVILEGED_APPROVERS)
    return n


def _fields(data: EntitlementIn) -> dict[str, Any]:
    fields = data.model_dump()
    fields["required_training"] = unique_in_order(data.required_training)
    fields["approvers"] = unique_in_order(str(a) for a in data.approvers)
    return fields


def _check(ctx: Context, fields: dict[str, Any], own_id: int | None) -> None:
    errs = ErrorCollector()
    asset: Asset | None = None
    if fields["asset_id"] is not None:
        asset = ctx.session.get(Asset, fields["asset_id"])
        if asset is None:
            errs.add("asset_id", f"no ICT asset with id {fields['asset_id']}")
    if fields["zone_id"] is not None:
        if ctx.session.get(Zone, fields["zone_id"]) is None:
            errs.add("zone_id", f"no zone with id {fields['zone_id']}")
        if fields["remote_admin"]:
            errs.add("remote_admin", "remote administration is access to an ICT asset, not to a zone: use asset_id")
    sensitive = fields["privileged"] or fields["remote_admin"]
    critical = asset is not None and asset.criticality == Criticality.CRITICAL.value
    if sensitive and critical and ApproverKind.OWNER.value not in fields["approvers"]:
        assert asset is not None
        errs.add(
            "approvers",
            f"privileged or remote-administration access to critical asset {asset.external_id} must be "
            "approved by its owner (§24): add 'owner'",
        )
    minimum = fields["min_approvals"]
    if fields["privileged"] and minimum is not None and minimum < MIN_PRIVILEGED_APPROVERS:
        errs.add(
            "min_approvals",
            f"privileged access needs at least {MIN_PRIVILEGED_APPROVERS} distinct approvers "
            "(the two-approver rule, §22)",
        )
    errs.raise_if_any("The entitlement cannot be saved")
    check_unique(ctx, Entitlement.key, fields["key"], own_id, "entitlement", "key")


def create_entitlement(ctx: Context, data: EntitlementIn) -> Entitlement:
    ctx.require(Permission.ACCESS_ADMIN)
    fields = _fields(data)
    _check(ctx, fields, None)
    now = ctx.now()
    e = Entitlement(**fields, created_at=now, updated_at=now)
    ctx.session.add(e)
    ctx.session.flush()
    record_change(ctx, "entitlement.created", "entitlement", e.id, None, entitlement_view(e))
    return e


def update_entitlement(ctx: Context, entitlement_id: int, data: EntitlementIn) -> Entitlement:
    ctx.require(Permission.ACCESS_ADMIN)
    e = load(ctx, Entitlement, entitlement_id, "entitlement")
    fields = _fields(data)
    _check(ctx, fields, e.id)
    before = entitlement_view(e)
    for k, v in fields.items():
        setattr(e, k, v)
    ctx.session.flush()
    if unchanged(before, entitlement_view(e)):
        return e
    e.updated_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, "entitlement.updated", "entitlement", e.id, before, entitlement_view(e))
    return e


def get_entitlement(ctx: Context, entitlement_id: int) -> Entitlement:
    # Staff see the catalogue: they must know what they can ask for.
    require_any(ctx, Permission.ACCESS_READ, Permission.ACCESS_REQUEST)
    return load(ctx, Entitlement, entitlement_id, "entitlement")


def find_entitlement_by_key(ctx: Context, key: str) -> Entitlement | None:
    require_any(ctx, Permission.ACCESS_READ, Permission.ACCESS_REQUEST)
    return ctx.session.scalars(select(Entitlement).where(Entitlement.key == key.strip())).one_or_none()


def list_entitlements(
    ctx: Context,
    *,
    asset_id: int | None = None,
    zone_id: int | None = None,
    privileged: bool | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
    active: bool | None = None,
) -> Rows:
    require_any(ctx, Permission.ACCESS_READ, Permission.ACCESS_REQUEST)
    stmt = select(Entitlement)
    if asset_id is not None:
        stmt = stmt.where(Entitlement.asset_id == asset_id)
    if zone_id is not None:
        stmt = stmt.where(Entitlement.zone_id == zone_id)
    if privileged is not None:
        stmt = stmt.where(Entitlement.privileged.is_(privileged))
    if active is not None:
        stmt = stmt.where(Entitlement.active.is_(active))
    stmt = search(stmt, q, Entitlement.key, Entitlement.name, Entitlement.description)
    return paginate(ctx.session, stmt, Entitlement.id, after, limit)
