"""The dashboard: what needs doing, read from the registers."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import func, select

from portcullis.accounts import service as accounts
from portcullis.core.context import Context
from portcullis.core.permissions import MFA_REQUIRED, Permission
from portcullis.inventory import service as inventory
from portcullis.inventory.models import Asset, Criticality, Person, PersonStatus, Provider, Site, Zone
from portcullis.ledger.models import LedgerRecord, LedgerStream
from portcullis.ledger.service import AUDIT
from portcullis.web.admin_pages import record_row
from portcullis.web.pages import PageRoute
from portcullis.web.render import page
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
SignedIn = Annotated[WebUser, Depends(signed_in)]
CONTRACT_HORIZON_DAYS = 90
SHOWN = 10


def _count(ctx: Context, model: Any) -> int:
    return ctx.session.scalar(select(func.count(model.id))) or 0


def register_counts(ctx: Context) -> list[tuple[str, str, int]]:
    return [
        ("People", "/people", _count(ctx, Person)),
        ("ICT assets", "/assets", _count(ctx, Asset)),
        ("Sites", "/sites", _count(ctx, Site)),
        ("Zones", "/zones", _count(ctx, Zone)),
        ("ICT providers", "/providers", _count(ctx, Provider)),
    ]


def inventory_gaps(ctx: Context) -> dict[str, Any]:
    ctx.require(Permission.INVENTORY_READ)
    s = ctx.session
    today = ctx.now().date()
    unowned = select(Asset).where(Asset.criticality == Criticality.CRITICAL.value, Asset.owner_id.is_(None))
    leavers = select(Person).where(Person.status == PersonStatus.LEAVER.value)
    ending = select(Provider).where(
        Provider.contract_end.is_not(None), Provider.contract_end <= today + timedelta(days=CONTRACT_HORIZON_DAYS)
    )
    return {
        "counts": register_counts(ctx),
        "unowned_total": s.scalar(select(func.count()).select_from(unowned.subquery())) or 0,
        "unowned": list(s.scalars(unowned.order_by(Asset.name).limit(SHOWN))),
        "leavers_total": s.scalar(select(func.count()).select_from(leavers.subquery())) or 0,
        "leavers": list(s.scalars(leavers.order_by(Person.end_date.desc(), Person.id).limit(SHOWN))),
        "ending": list(s.scalars(ending.order_by(Provider.contract_end).limit(SHOWN))),
        "today": today,
        "horizon": CONTRACT_HORIZON_DAYS,
    }


def proportionality_tier(ctx: Context) -> str | None:
    try:
        defaults = inventory.effective_defaults(ctx)
    except NotImplementedError:
        return None
    for entry in defaults.values():
        return str(entry.get("tier", "")) or None
    return None


def mfa_status(ctx: Context) -> dict[str, Any]:
    users = [accounts.user_view(u) for u in accounts.list_users(ctx) if u.active]
    required = {r.value for r in MFA_REQUIRED}
    missing = [u for u in users if u["role"] in required and not u["mfa_enrolled"]]
    return {
        "active": len(users),
        "enrolled": sum(1 for u in users if u["mfa_enrolled"]),
        "missing": missing,
    }


def latest_audit(ctx: Context) -> list[dict[str, Any]]:
    ctx.require(Permission.AUDIT_READ)
    stmt = (
        select(LedgerRecord)
        .join(LedgerStream, LedgerStream.id == LedgerRecord.stream_id)
        .where(LedgerStream.name == AUDIT)
        .order_by(LedgerRecord.id.desc())
        .limit(SHOWN)
    )
    return [record_row(r) for r in ctx.session.scalars(stmt)]


def expiring_certificates(ctx: Context, days: int = 31) -> list[dict[str, Any]]:
    """Certificates in use expiring within the month (§30), soonest first."""
    from portcullis.certs.checks import expiring
    from portcullis.certs.policy import days_left

    now = ctx.now()
    return [
        {
            "id": c.id,
            "name": c.common_name or (c.sans[0] if c.sans else c.subject),
            "not_after": c.not_after,
            "days_left": days_left(c.not_after, now),
            "renewal_due": due,
            "status": c.status,
        }
        for c, due in expiring(ctx, days)[:20]
    ]


@router.get("/")
def dashboard(request: Request, who: SignedIn) -> Response:
    p = who.principal
    data: dict[str, Any] = {"gaps": None, "tier": None, "mfa": None, "audit": None, "certs": None}
    with runtime_of(request).work(p) as ctx:
        if p.can(Permission.INVENTORY_READ):
            data["gaps"] = inventory_gaps(ctx)
            data["tier"] = proportionality_tier(ctx)
        if p.can(Permission.USERS_READ):
            data["mfa"] = mfa_status(ctx)
        if p.can(Permission.AUDIT_READ):
            data["audit"] = latest_audit(ctx)
        if p.can(Permission.CERTS_READ):
            data["certs"] = expiring_certificates(ctx)
    return page(request, "dashboard.html", section="dashboard", **data)
