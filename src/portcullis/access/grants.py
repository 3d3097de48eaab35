"""Grants: who holds which entitlement, from when, until when (§19, §21, §22, §25).

A grant is time-bound (from an approved request; its clock starts at approval) or
standing (from a role). It ends by itself when it expires (the scheduler), or at
once when revoked, with the reason and who revoked it in the ledger.

Joiners, movers and leavers (on_person_changed, called by inventory.update_person
in the same transaction): a leaver's grants are all revoked the moment they
become a leaver; a suspended person's grants each raise a person_inactive
finding; a mover's (department or manager changed) each raise a mover_review
finding owned by the new manager, for them to confirm or withdraw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, object_session

from portcullis.access import catalogue
from portcullis.access.findings import HIGH, MEDIUM, FindingSpec, open_finding, open_keys, open_many
from portcullis.access.models import AccessRole, Entitlement, Grant, GrantKind, GrantStatus, RoleMembership
from portcullis.access.policy import INACTIVE_STATUSES, Check, blocking, checks_for, grant_finding, target_owner
from portcullis.accounts.models import User
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, ErrorCollector, FieldError, NotFound, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission, Role
from portcullis.inventory.models import Person, PersonStatus
from portcullis.inventory.service import PERSON_LISTENERS
from portcullis.ledger.service import record_change

LEAVER_REASON = "leaver"
RETIRED_REASON = "role retired"
EXPIRED_REASON = "expired"
MOVER_REVIEW = "mover_review"


def _session(obj: object) -> Session:
    s = object_session(obj)
    assert s is not None, "a view needs an object attached to a session"
    return s


def grant_view(g: Grant) -> dict[str, Any]:
    s = _session(g)
    ent = s.get(Entitlement, g.entitlement_id)
    assert ent is not None
    return {
        "id": g.id,
        "person_id": g.person_id,
        "person_email": s.scalar(select(Person.email).where(Person.id == g.person_id)),
        "entitlement_id": g.entitlement_id,
        "entitlement_key": ent.key,
        "entitlement_name": ent.name,
        "asset_id": ent.asset_id,
        "zone_id": ent.zone_id,
        "privileged": ent.privileged,
        "remote_admin": ent.remote_admin,
        "kind": g.kind,
        "request_id": g.request_id,
        "role_id": g.role_id,
        "status": g.status,
        "starts_at": g.starts_at,
        "expires_at": g.expires_at,
        "ended_at": g.ended_at,
        "end_reason": g.end_reason,
        "provisioned_at": g.provisioned_at,
        "last_used_at": g.last_used_at,
        "created_at": g.created_at,
    }


def linked_person(ctx: Context) -> Person | None:
    """The Person behind the principal, or None: readers with nobody linked simply see nothing of their own."""
    if ctx.principal.user_id is None:
        return None
    pid = ctx.session.scalar(select(User.person_id).where(User.id == ctx.principal.user_id))
    return None if pid is None else ctx.session.get(Person, pid)


def is_active(at: datetime) -> Any:
    return (Grant.status == GrantStatus.ACTIVE.value) & or_(Grant.expires_at.is_(None), Grant.expires_at > at)


def active_grants(session: Session, person_id: int, at: datetime) -> list[Grant]:
    return list(session.scalars(select(Grant).where(Grant.person_id == person_id, is_active(at)).order_by(Grant.id)))


# --- issuing ------------------------------------------------------------------


def assess(
    session: Session,
    person: Person,
    entitlements: Sequence[Entitlement],
    at: datetime,
    *,
    duration_days: int | None,
    field: str,
) -> tuple[list[FieldError], dict[int, list[Check]]]:
    """Blocking problems as field errors, and every check by entitlement id.

    Checks about the person name subject_id; those about the entitlement name
    `field` (entitlement_id, or role_id for a role).
    """
    errors: list[FieldError] = []
    by_ent: dict[int, list[Check]] = {}
    ids = [e.id for e in entitlements]
    for ent in entitlements:
        checks = checks_for(session, person, ent, at, duration_days=duration_days, extra_entitlement_ids=ids)
        by_ent[ent.id] = checks
        for c in blocking(checks):
            where = "subject_id" if c.code in ("person_inactive", "mfa_missing") else field
            err = FieldError(where, c.reason)
            if err not in errors:
                errors.append(err)
    return errors, by_ent


def issue(
    ctx: Context,
    person: Person,
    entitlements: Sequence[Entitlement],
    checks: dict[int, list[Check]],
    *,
    kind: GrantKind,
    duration_days: int | None,
    reason: str,
    request_id: int | None = None,
    role_id: int | None = None,
) -> list[Grant]:
    """Create the grants and a finding for each non-blocking check (the caller refused on blocking ones)."""
    now = ctx.now()
    expires = now + timedelta(days=duration_days) if duration_days is not None else None
    made: list[Grant] = []
    for ent in entitlements:
        g = Grant(
            person_id=person.id,
            entitlement_id=ent.id,
            kind=kind.value,
            request_id=request_id,
            role_id=role_id,
            status=GrantStatus.ACTIVE.value,
            starts_at=now,
            expires_at=expires,
            created_at=now,
        )
        ctx.session.add(g)
        ctx.session.flush()
        record_change(ctx, "grant.created", "grant", g.id, None, grant_view(g), reason=reason)
        owner = target_owner(ctx.session, ent)
        specs = [grant_finding(c, g.id, person.id, ent, owner) for c in checks.get(ent.id, []) if not c.blocking]
        open_many(ctx, specs, set())
        made.append(g)
    return made


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason", [FieldError("reason", "must not be empty")])
    return reason


def membership_view(m: RoleMembership) -> dict[str, Any]:
    s = _session(m)
    return {
        "id": m.id,
        "person_id": m.person_id,
        "person_email": s.scalar(select(Person.email).where(Person.id == m.person_id)),
        "role_id": m.role_id,
        "role_key": s.scalar(select(AccessRole.key).where(AccessRole.id == m.role_id)),
        "source": m.source,
        "since": m.since,
        "ended_at": m.ended_at,
        "end_reason": m.end_reason,
    }


def open_membership(session: Session, person_id: int, role_id: int) -> RoleMembership | None:
    return session.scalars(
        select(RoleMembership).where(
            RoleMembership.person_id == person_id,
            RoleMembership.role_id == role_id,
            RoleMembership.ended_at.is_(None),
        )
    ).one_or_none()


def role_members(session: Session, role_id: int) -> list[RoleMembership]:
    """The open memberships of a role, oldest first."""
    return list(
        session.scalars(
            select(RoleMembership)
            .where(RoleMembership.role_id == role_id, RoleMembership.ended_at.is_(None))
            .order_by(RoleMembership.id)
        )
    )


def _standing_role_grants(session: Session, person_id: int, role_id: int, at: datetime) -> list[Grant]:
    return list(
        session.scalars(
            select(Grant)
            .where(
                Grant.person_id == person_id,
                Grant.role_id == role_id,
                Grant.kind == GrantKind.STANDING.value,
                is_active(at),
            )
            .order_by(Grant.id)
        )
    )


def grant_role(ctx: Context, person_id: int, role_id: int, reason: str, *, source: str = "manual") -> list[Grant]:
    """Make the person a member of the role, with a standing grant for each active entitlement it bundles.

    Eligibility and the blocking policy checks refuse the whole role. An open
    membership is reused: granting again issues only what is missing (an
    entitlement added to the role since), and is a conflict when nothing is.
    A role with no active entitlement is a membership alone.
    """
    ctx.require(Permission.ACCESS_ADMIN)
    errs = ErrorCollector()
    person = ctx.session.get(Person, person_id)
    role = ctx.session.get(AccessRole, role_id)
    if person is None:
        errs.add("person_id", f"no person with id {person_id}")
    if role is None:
        errs.add("role_id", f"no role with id {role_id}")
    elif role.retired_at is not None:
        errs.add("role_id", f"role {role.key} is retired and may be granted no more")
    if not (reason or "").strip():
        errs.add("reason", "must not be empty")
    errs.raise_if_any("The role cannot be granted")
    assert person is not None
    assert role is not None
    now = ctx.now()
    ids = catalogue.role_entitlement_ids(ctx.session, role.id)
    ents = [e for e in ctx.session.scalars(select(Entitlement).where(Entitlement.id.in_(ids))) if e.active]
    membership = open_membership(ctx.session, person.id, role.id)
    if membership is not None:
        covered = {g.entitlement_id for g in _standing_role_grants(ctx.session, person.id, role.id, now)}
        ents = [e for e in ents if e.id not in covered]
        if not ents:
            raise Conflict(f"{person.email} already holds role {role.key} (membership {membership.id})")
    errors = [FieldError("role_id", p) for p in catalogue.role_eligibility_problems(ctx.session, person, role, now)]
    if person.status in INACTIVE_STATUSES and not ents:
        # With entitlements, the policy's person_inactive check says this; a bare membership needs it said.
        errors.append(FieldError("subject_id", f"the person is a {person.status} and may hold no access"))
    blocking_errors, checks = assess(ctx.session, person, ents, now, duration_days=None, field="role_id")
    errors.extend(blocking_errors)
    if errors:
        raise ValidationFailed(f"{person.email} may not hold role {role.key}", errors)
    text = _reason(reason)
    if membership is None:
        membership = RoleMembership(person_id=person.id, role_id=role.id, source=source, since=now)
        ctx.session.add(membership)
        ctx.session.flush()
        record_change(
            ctx, "role_membership.started", "role_membership", membership.id, None, membership_view(membership),
            reason=text,
        )
    return issue(
        ctx, person, ents, checks, kind=GrantKind.STANDING, duration_days=None, reason=text, role_id=role.id
    )


def _end_membership(ctx: Context, m: RoleMembership, reason: str, at: datetime, *, revoke: bool) -> None:
    """End a membership and, with `revoke`, the standing grants it holds up."""
    before = membership_view(m)
    m.ended_at = at
    m.end_reason = reason
    ctx.session.flush()
    record_change(ctx, "role_membership.ended", "role_membership", m.id, before, membership_view(m), reason=reason)
    if revoke:
        for g in _standing_role_grants(ctx.session, m.person_id, m.role_id, at):
            _end(ctx, g, GrantStatus.REVOKED, reason, at, "grant.revoked")


def end_role(ctx: Context, person_id: int, role_id: int, reason: str) -> RoleMembership:
    """The person holds the role no more: the membership ends and its standing grants are revoked at once."""
    ctx.require(Permission.ACCESS_ADMIN)
    text = _reason(reason)
    m = open_membership(ctx.session, person_id, role_id)
    if m is None:
        raise NotFound(f"Person {person_id} holds no role with id {role_id}")
    _end_membership(ctx, m, text, ctx.now(), revoke=True)
    return m


def retire_role(ctx: Context, role_id: int, reason: str) -> AccessRole:
    """Nobody holds the role from now on, and it can be granted no more; the role and its history stay."""
    ctx.require(Permission.ACCESS_ADMIN)
    text = _reason(reason)
    role = ctx.session.get(AccessRole, role_id)
    if role is None:
        raise NotFound(f"No role with id {role_id}")
    if role.retired_at is not None:
        raise Conflict(f"Role {role.key} is already retired")
    now = ctx.now()
    for m in role_members(ctx.session, role.id):
        _end_membership(ctx, m, text, now, revoke=True)
    role.retired_at = now
    role.updated_at = now
    ctx.session.flush()
    record_change(
        ctx, "role.retired", "access_role", role.id, {"retired_at": None}, {"retired_at": now}, reason=text
    )
    return role


# --- ending -------------------------------------------------------------------


def _end(ctx: Context, g: Grant, status: GrantStatus, reason: str, at: datetime, action: str) -> Grant:
    before = grant_view(g)
    g.status = status.value
    g.ended_at = at
    g.end_reason = reason
    ctx.session.flush()
    record_change(ctx, action, "grant", g.id, before, grant_view(g), reason=reason)
    return g


def revoke_grant(ctx: Context, grant_id: int, reason: str) -> Grant:
    """Withdraw a grant now (§19, §22 "withdrawn"); the reason and who did it go in the ledger."""
    ctx.require(Permission.ACCESS_ADMIN)
    g = ctx.session.get(Grant, grant_id)
    if g is None:
        raise NotFound(f"No grant with id {grant_id}")
    text = _reason(reason)
    if g.status != GrantStatus.ACTIVE.value:
        raise Conflict(f"Grant {grant_id} is already {g.status} ({g.end_reason})")
    return _end(ctx, g, GrantStatus.REVOKED, text, ctx.now(), "grant.revoked")


def expire_grants(ctx: Context) -> int:
    """Scheduler job: active grants past their expiry end."""
    ctx.require(Permission.ACCESS_ADMIN)
    now = ctx.now()
    due = ctx.session.scalars(
        select(Grant)
        .where(Grant.status == GrantStatus.ACTIVE.value, Grant.expires_at.is_not(None), Grant.expires_at <= now)
        .order_by(Grant.id)
    )
    count = 0
    for g in due:
        assert g.expires_at is not None
        _end(ctx, g, GrantStatus.EXPIRED, EXPIRED_REASON, g.expires_at, "grant.expired")
        count += 1
    return count


# --- reading ------------------------------------------------------------------


def get_grant(ctx: Context, grant_id: int) -> Grant:
    ctx.require(Permission.ACCESS_READ)
    g = ctx.session.get(Grant, grant_id)
    if g is None:
        raise NotFound(f"No grant with id {grant_id}")
    return g


def list_grants(
    ctx: Context,
    *,
    person_id: int | None = None,
    entitlement_id: int | None = None,
    asset_id: int | None = None,
    zone_id: int | None = None,
    status: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Grant], int, int | None]:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(Grant)
    if person_id is not None:
        stmt = stmt.where(Grant.person_id == person_id)
    if entitlement_id is not None:
        stmt = stmt.where(Grant.entitlement_id == entitlement_id)
    if asset_id is not None:
        stmt = stmt.where(Grant.entitlement_id.in_(select(Entitlement.id).where(Entitlement.asset_id == asset_id)))
    if zone_id is not None:
        stmt = stmt.where(Grant.entitlement_id.in_(select(Entitlement.id).where(Entitlement.zone_id == zone_id)))
    if status:
        stmt = stmt.where(Grant.status == status)
    return paginate(ctx.session, stmt, Grant.id, after, limit)


def my_access(ctx: Context) -> list[Grant]:
    """The acting person's grants in force now; none if the user is linked to nobody."""
    ctx.require(Permission.ACCESS_REQUEST)
    me = linked_person(ctx)
    return [] if me is None else active_grants(ctx.session, me.id, ctx.now())


def mark_used(session: Session, grant_id: int, at: datetime) -> None:
    """An access event showed the grant in use (for least-privilege reviews, §22)."""
    g = session.get(Grant, grant_id)
    if g is not None and (g.last_used_at is None or g.last_used_at < at):
        g.last_used_at = at


def mark_provisioned(session: Session, grant_id: int, at: datetime) -> None:
    """Reconciliation saw the access in the target system; the first sighting counts."""
    g = session.get(Grant, grant_id)
    if g is not None and g.provisioned_at is None:
        g.provisioned_at = at


# --- joiners, movers, leavers ---------------------------------------------------


def security_officer(session: Session) -> int | None:
    # Who answers for a finding nobody else owns (a mover with no manager, an account that is
    # nobody's): the first security officer in the register.
    return session.scalar(
        select(User.person_id)
        .where(User.role == Role.SECURITY_OFFICER.value, User.person_id.is_not(None), User.active.is_(True))
        .order_by(User.id)
        .limit(1)
    )


def on_person_changed(ctx: Context, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Listener for inventory.update_person: withdraw, flag or put up for review the person's access."""
    s = ctx.session
    now = ctx.now()
    person_id = int(after["id"])
    status = after["status"]
    grants = active_grants(s, person_id, now)
    if status == PersonStatus.LEAVER.value:
        for g in grants:
            _end(ctx, g, GrantStatus.REVOKED, LEAVER_REASON, now, "grant.revoked")
        for m in s.scalars(
            select(RoleMembership)
            .where(RoleMembership.person_id == person_id, RoleMembership.ended_at.is_(None))
            .order_by(RoleMembership.id)
        ):
            _end_membership(ctx, m, LEAVER_REASON, now, revoke=False)  # the grants went just above
        from portcullis.access.requests import withdraw_requests_for

        withdraw_requests_for(ctx, person_id, LEAVER_REASON)
        return
    if status == PersonStatus.SUSPENDED.value and before["status"] != status:
        specs = []
        for g in grants:
            ent = s.get(Entitlement, g.entitlement_id)
            assert ent is not None
            specs.append(
                FindingSpec(
                    key=f"person_inactive:grant:{g.id}",
                    kind="person_inactive",
                    severity=HIGH,
                    detail=f"grant {g.id}: {after['email']} is suspended and still holds {ent.key}",
                    person_id=person_id,
                    grant_id=g.id,
                    owner_id=target_owner(s, ent),
                )
            )
        open_many(ctx, specs, set(open_keys(s, ["person_inactive:grant:"])))
    moved = before.get("department") != after.get("department") or before.get("manager_id") != after.get("manager_id")
    if moved and grants:
        owner = after.get("manager_id") or security_officer(s)
        change = _describe_move(before, after)
        for g in grants:
            ent = s.get(Entitlement, g.entitlement_id)
            assert ent is not None
            open_finding(
                ctx,
                key=f"{MOVER_REVIEW}:grant:{g.id}",
                kind=MOVER_REVIEW,
                severity=HIGH if ent.privileged or ent.remote_admin else MEDIUM,
                detail=f"grant {g.id}: {after['email']} moved ({change}); confirm {ent.key} is still needed",
                person_id=person_id,
                grant_id=g.id,
                owner_id=owner,
            )


def _describe_move(before: dict[str, Any], after: dict[str, Any]) -> str:
    parts = []
    if before.get("department") != after.get("department"):
        parts.append(f"department {before.get('department') or '(none)'} -> {after.get('department') or '(none)'}")
    if before.get("manager_id") != after.get("manager_id"):
        parts.append(f"manager {before.get('manager_email') or '(none)'} -> {after.get('manager_email') or '(none)'}")
    return "; ".join(parts)


# Registered once, at import: the access package imports this module, so the
# listener is in place whenever the app, the CLI or a test touches a person.
if on_person_changed not in PERSON_LISTENERS:
    PERSON_LISTENERS.append(on_person_changed)

__all__ = [
    "active_grants",
    "end_role",
    "expire_grants",
    "get_grant",
    "grant_role",
    "grant_view",
    "issue",
    "list_grants",
    "mark_provisioned",
    "mark_used",
    "membership_view",
    "my_access",
    "on_person_changed",
    "open_membership",
    "retire_role",
    "revoke_grant",
    "role_members",
]
