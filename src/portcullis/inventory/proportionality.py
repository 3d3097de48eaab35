"""Proportionality (§11): a tier from the organisation's size, risk profile and complexity.

§11 asks that the guidelines be applied in proportion to "the organisation's size,
its overall risk profile, and the nature, scope, and complexity of its activities".
Each of the three gives points:

    staff_count     < 50 -> 0,  < 250 -> 1,  otherwise 2
    risk_profile    low 0, medium 1, high 2
    complexity      low 0, medium 1, high 2

    points 0-1 -> simplified,  2-3 -> standard,  4-6 -> enhanced
    no organisation profile yet -> standard

The tier sets these defaults, each overridable by the firm with a recorded reason:

    key                         simplified  standard  enhanced
    review_days.critical               180        90        30
    review_days.important              365       180        90
    review_days.other                  365       365       180
    retention_days.critical           1825      1825      2555
    retention_days.important           365       730      1825
    retention_days.other               180       365       730
    privileged_approvers                 2         2         3
    cert_renew_percent.critical         33        33        33
    cert_renew_percent.important        33        33        33
    cert_renew_percent.other            33        33        33

review_days is how often access to an asset of that criticality is reviewed
(§19, §22); retention_days how long its access logs are kept (§23);
privileged_approvers how many distinct people approve a privileged grant (§22),
never fewer than two (the two-approver rule in DESIGN.md);
cert_renew_percent how much of a certificate's lifetime is left when its
renewal starts, by the criticality of the assets relying on it (§30: a third).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portcullis.core.context import Context
from portcullis.core.errors import FieldError, NotFound, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Organisation, ProportionalityOverride
from portcullis.inventory.schemas import OverrideIn
from portcullis.ledger.service import record_change


class Tier(StrEnum):
    SIMPLIFIED = "simplified"
    STANDARD = "standard"
    ENHANCED = "enhanced"


_LEVEL_POINTS = {"low": 0, "medium": 1, "high": 2}
SMALL_STAFF = 50
LARGE_STAFF = 250
MIN_PRIVILEGED_APPROVERS = 2

DEFAULTS: dict[str, dict[Tier, int]] = {
    "review_days.critical": {Tier.SIMPLIFIED: 180, Tier.STANDARD: 90, Tier.ENHANCED: 30},
    "review_days.important": {Tier.SIMPLIFIED: 365, Tier.STANDARD: 180, Tier.ENHANCED: 90},
    "review_days.other": {Tier.SIMPLIFIED: 365, Tier.STANDARD: 365, Tier.ENHANCED: 180},
    "retention_days.critical": {Tier.SIMPLIFIED: 1825, Tier.STANDARD: 1825, Tier.ENHANCED: 2555},
    "retention_days.important": {Tier.SIMPLIFIED: 365, Tier.STANDARD: 730, Tier.ENHANCED: 1825},
    "retention_days.other": {Tier.SIMPLIFIED: 180, Tier.STANDARD: 365, Tier.ENHANCED: 730},
    "cert_renew_percent.critical": {Tier.SIMPLIFIED: 33, Tier.STANDARD: 33, Tier.ENHANCED: 33},
    "cert_renew_percent.important": {Tier.SIMPLIFIED: 33, Tier.STANDARD: 33, Tier.ENHANCED: 33},
    "cert_renew_percent.other": {Tier.SIMPLIFIED: 33, Tier.STANDARD: 33, Tier.ENHANCED: 33},
    "privileged_approvers": {Tier.SIMPLIFIED: 2, Tier.STANDARD: 2, Tier.ENHANCED: 3},
}
KEYS: tuple[str, ...] = tuple(DEFAULTS)


def points(staff_count: int, risk_profile: str, complexity: str) -> int:
    size = 0 if staff_count < SMALL_STAFF else 1 if staff_count < LARGE_STAFF else 2
    return size + _LEVEL_POINTS[str(risk_profile)] + _LEVEL_POINTS[str(complexity)]


def compute_tier(staff_count: int, risk_profile: str, complexity: str) -> Tier:
    p = points(staff_count, risk_profile, complexity)
    if p <= 1:
        return Tier.SIMPLIFIED
    if p <= 3:
        return Tier.STANDARD
    return Tier.ENHANCED


def tier_of(org: Organisation | None) -> Tier:
    if org is None:
        return Tier.STANDARD
    return compute_tier(org.staff_count, org.risk_profile, org.complexity)


def _organisation(session: Session) -> Organisation | None:
    return session.scalars(select(Organisation).order_by(Organisation.id).limit(1)).one_or_none()


def _override(session: Session, key: str) -> ProportionalityOverride | None:
    return session.scalars(select(ProportionalityOverride).where(ProportionalityOverride.key == key)).one_or_none()


def current_tier(ctx_or_session: Context | Session) -> Tier:
    session = ctx_or_session.session if isinstance(ctx_or_session, Context) else ctx_or_session
    return tier_of(_organisation(session))


def default_value(ctx_or_session: Context | Session, key: str) -> int:
    """The value in force for `key`: the firm's override, else the tier's default.

    Other domains call this (with their own session) when they schedule reviews,
    set retention or count approvers, so no permission is checked here.
    """
    _check_key(key)
    session = ctx_or_session.session if isinstance(ctx_or_session, Context) else ctx_or_session
    override = _override(session, key)
    if override is not None:
        return override.value
    return DEFAULTS[key][current_tier(session)]


def effective_defaults(ctx: Context) -> dict[str, dict[str, Any]]:
    ctx.require(Permission.INVENTORY_READ)
    tier = current_tier(ctx)
    overrides = {o.key: o for o in ctx.session.scalars(select(ProportionalityOverride))}
    out: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        o = overrides.get(key)
        default = DEFAULTS[key][tier]
        out[key] = {
            "value": o.value if o else default,
            "default": default,
            "tier": tier.value,
            "overridden": o is not None,
            "reason": o.reason if o else None,
            "set_by": o.set_by if o else None,
            "set_at": o.set_at if o else None,
        }
    return out


def _check_key(key: str) -> None:
    if key not in DEFAULTS:
        raise ValidationFailed(
            f"Unknown default {key!r}",
            [FieldError("key", f"{key!r} is not a default; valid keys: {', '.join(KEYS)}")],
        )


def _check_value(key: str, value: int) -> None:
    if key == "privileged_approvers" and value < MIN_PRIVILEGED_APPROVERS:
        raise ValidationFailed(
            "Privileged access needs at least two approvers",
            [
                FieldError(
                    "value",
                    f"privileged_approvers must be at least {MIN_PRIVILEGED_APPROVERS}: privileged access "
                    "needs two distinct approvers (the two-approver rule, §22)",
                )
            ],
        )
    if key.startswith("cert_renew_percent.") and not 1 <= value <= 99:
        raise ValidationFailed(
            f"{key} is a percentage of the lifetime",
            [FieldError("value", f"{key} must be between 1 and 99, got {value}")],
        )
    if "_days." in key and value <= 0:
        raise ValidationFailed(
            f"{key} must be at least one day", [FieldError("value", f"{key} must be at least 1 day, got {value}")]
        )


def set_override(ctx: Context, data: OverrideIn) -> None:
    ctx.require(Permission.ORGANISATION_WRITE)
    _check_key(data.key)
    _check_value(data.key, data.value)
    old_value = default_value(ctx, data.key)
    existing = _override(ctx.session, data.key)
    before = _override_view(existing) if existing else None
    if existing is None:
        existing = ProportionalityOverride(key=data.key, value=0, reason="", set_by="", set_at=ctx.now())
        ctx.session.add(existing)
    existing.value = data.value
    existing.reason = data.reason
    existing.set_by = ctx.principal.name
    existing.set_at = ctx.now()
    ctx.session.flush()
    record_change(
        ctx,
        "organisation.default_overridden",
        "proportionality_override",
        data.key,
        before,
        _override_view(existing),
        key=data.key,
        old_value=old_value,
        new_value=data.value,
        tier_default=DEFAULTS[data.key][current_tier(ctx)],
        reason=data.reason,
    )


def clear_override(ctx: Context, key: str, reason: str) -> None:
    ctx.require(Permission.ORGANISATION_WRITE)
    _check_key(key)
    reason = reason.strip()
    if len(reason) < 10:
        raise ValidationFailed(
            "A reason is needed to return to the tier's default",
            [FieldError("reason", "give a reason of at least 10 characters")],
        )
    existing = _override(ctx.session, key)
    if existing is None:
        raise NotFound(f"{key} is not overridden", [FieldError("key", f"{key!r} has no override to clear")])
    before = _override_view(existing)
    default = DEFAULTS[key][current_tier(ctx)]
    ctx.session.delete(existing)
    ctx.session.flush()
    record_change(
        ctx,
        "organisation.default_restored",
        "proportionality_override",
        key,
        before,
        None,
        key=key,
        old_value=before["value"],
        new_value=default,
        tier_default=default,
        reason=reason,
    )


def _override_view(o: ProportionalityOverride) -> dict[str, Any]:
    return {"key": o.key, "value": o.value, "reason": o.reason, "set_by": o.set_by, "set_at": o.set_at}
