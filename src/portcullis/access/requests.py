"""Access requests and their approval (§19 "ad hoc", §21, §22 two approvers, §24, §25 four eyes).

A person asks for an entitlement or a role, for themselves or someone else, with
the need to know and a duration. The request fixes how many distinct approvers
it needs and of which kinds (owner of the asset or zone, manager of the subject,
security officer); access to a critical asset or zone always needs its owner
among them. Nobody approves a request they made or a request for themselves.
A request not decided by decide_by expires; that is separate from the grant's
duration, whose clock starts at approval.

Concurrent approvals: decide() locks the request row (SELECT ... FOR UPDATE on
PostgreSQL) and then bumps its version only if it is still the version it read,
so exactly one decision completes a request; the others see it decided and get
a Conflict. A unique (request, entitlement) constraint on grants backs this up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from portcullis.access import catalogue
from portcullis.access.grants import assess, issue, linked_person
from portcullis.access.models import (
    AccessRequest,
    AccessRole,
    Approval,
    ApproverKind,
    Entitlement,
    GrantKind,
    RequestStatus,
)
from portcullis.access.schemas import DecisionIn, RequestIn
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, ErrorCollector, FieldError, NotFound, PermissionDenied, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission, Role
from portcullis.inventory.models import Asset, Criticality, Person, Zone
from portcullis.ledger.service import record_change

# How long approvers have to decide; a setting-like constant until the
# organisation profile carries it.
DECIDE_WITHIN_DAYS = 7
# Duration of ad hoc access when neither the request nor the entitlement says.
DEFAULT_DURATION_DAYS = 30
# Which kind an approver counts as when they are several: the owner first, as
# only the owner's approval satisfies the critical-asset rule.
KIND_ORDER = (ApproverKind.OWNER.value, ApproverKind.MANAGER.value, ApproverKind.SECURITY_OFFICER.value)
OFFICER_ROLES = frozenset({Role.SECURITY_OFFICER, Role.ADMIN})


def _session(obj: object) -> Session:
    s = object_session(obj)
    assert s is not None, "a view needs an object attached to a session"
    return s


def _email(session: Session, person_id: int | None) -> str | None:
    return None if person_id is None else session.scalar(select(Person.email).where(Person.id == person_id))


def _approvals(session: Session, request_id: int) -> list[Approval]:
    return list(session.scalars(select(Approval).where(Approval.request_id == request_id).order_by(Approval.id)))


def request_view(r: AccessRequest) -> dict[str, Any]:
    s = _session(r)
    decisions = _approvals(s, r.id)
    ent_key = s.scalar(select(Entitlement.key).where(Entitlement.id == r.entitlement_id)) if r.entitlement_id else None
    role_key = s.scalar(select(AccessRole.key).where(AccessRole.id == r.role_id)) if r.role_id else None
    return {
        "id": r.id,
        "requester_id": r.requester_id,
        "requester_email": _email(s, r.requester_id),
        "subject_id": r.subject_id,
        "subject_email": _email(s, r.subject_id),
        "entitlement_id": r.entitlement_id,
        "entitlement_key": ent_key,
        "role_id": r.role_id,
        "role_key": role_key,
        "justification": r.justification,
        "duration_days": r.duration_days,
        "status": r.status,
        "required_approvals": r.required_approvals,
        "approver_kinds": list(r.approver_kinds or []),
        "approvals": len({a.approver_id for a in decisions if a.approve}),
        "decisions": [
            {
                "approver_id": a.approver_id,
                "approver_email": _email(s, a.approver_id),
                "acting_as": a.acting_as,
                "approve": a.approve,
                "comment": a.comment,
                "at": a.at,
            }
            for a in decisions
        ],
        "created_at": r.created_at,
        "decide_by": r.decide_by,
        "decided_at": r.decided_at,
        "version": r.version,
    }


# --- what a request is for --------------------------------------------------------


def _entitlements(session: Session, r: AccessRequest) -> list[Entitlement]:
    if r.entitlement_id is not None:
        ent = session.get(Entitlement, r.entitlement_id)
        return [ent] if ent is not None else []
    ids = catalogue.role_entitlement_ids(session, r.role_id or 0)
    return [
        e
        for e in session.scalars(select(Entitlement).where(Entitlement.id.in_(ids)).order_by(Entitlement.id))
        if e.active
    ]


def _target(session: Session, ent: Entitlement) -> tuple[str, str, int | None]:
    """(label, criticality, owner id) of the entitlement's asset or zone."""
    if ent.asset_id is not None:
        a = session.get(Asset, ent.asset_id)
        assert a is not None
        return f"ICT asset {a.external_id}", a.criticality, a.owner_id
    z = session.get(Zone, ent.zone_id or 0)
    assert z is not None
    return f"zone {z.external_id}", z.criticality, z.owner_id


def _owners(session: Session, ents: Sequence[Entitlement]) -> tuple[set[int], set[int]]:
    """(owners of any target, owners whose approval is required: those of critical targets)."""
    owners: set[int] = set()
    needed: set[int] = set()
    for ent in ents:
        _, criticality, owner = _target(session, ent)
        if owner is not None:
            owners.add(owner)
            if criticality == Criticality.CRITICAL.value:
                needed.add(owner)
    return owners, needed


def _default_duration(ents: Sequence[Entitlement]) -> int:
    limits = [e.max_duration_days for e in ents if e.max_duration_days is not None]
    return min(limits) if limits else DEFAULT_DURATION_DAYS


def _approver_kinds(session: Session, ents: Sequence[Entitlement]) -> list[str]:
    kinds: dict[str, None] = {}
    for e in ents:
        for k in e.approvers or []:
            kinds.setdefault(str(k), None)
    if _owners(session, ents)[1]:
        kinds.setdefault(ApproverKind.OWNER.value, None)
    return [k for k in KIND_ORDER if k in kinds]


# --- asking -------------------------------------------------------------------------


def request_access(ctx: Context, data: RequestIn) -> AccessRequest:
    ctx.require(Permission.ACCESS_REQUEST)
    s = ctx.session
    requester = catalogue.acting_person(ctx)
    errs = ErrorCollector()
    subject = s.get(Person, data.subject_id)
    if subject is None:
        errs.add("subject_id", f"no person with id {data.subject_id}")
    ents: list[Entitlement] = []
    role: AccessRole | None = None
    field = "entitlement_id"
    if data.entitlement_id is not None:
        ent = s.get(Entitlement, data.entitlement_id)
        if ent is None:
            errs.add("entitlement_id", f"no entitlement with id {data.entitlement_id}")
        elif not ent.active:
            errs.add("entitlement_id", f"entitlement {ent.key} is withdrawn from the catalogue (not active)")
        else:
            ents = [ent]
    else:
        field = "role_id"
        role = s.get(AccessRole, data.role_id or 0)
        if role is None:
            errs.add("role_id", f"no role with id {data.role_id}")
        elif role.retired_at is not None:
            errs.add("role_id", f"role {role.key} is retired: nobody can be given it any more")
    errs.raise_if_any("The request cannot be made")
    assert subject is not None
    now = ctx.now()
    if role is not None:
        ids = catalogue.role_entitlement_ids(s, role.id)
        ents = [
            e
            for e in s.scalars(select(Entitlement).where(Entitlement.id.in_(ids)).order_by(Entitlement.id))
            if e.active
        ]
        if not ents:
            errs.add("role_id", f"role {role.key} has no active entitlement")
        for problem in catalogue.role_eligibility_problems(s, subject, role, now):
            errs.add("role_id", problem)
    duration = data.duration_days or _default_duration(ents)
    for ent in ents:
        label, criticality, owner = _target(s, ent)
        if criticality != Criticality.CRITICAL.value:
            continue
        if owner is None:
            errs.add(field, f"{label} is critical and has no owner to approve access to it")
        elif owner in (requester.id, subject.id):
            errs.add(
                field,
                f"{label} is critical, so its owner must approve, and nobody approves a request they made "
                "or one for themselves: ask another person to make the request, or change the owner",
            )
    blocking_errors, checks = assess(s, subject, ents, now, duration_days=duration, field=field)
    errs.errors.extend(blocking_errors)
    errs.raise_if_any(f"The request for {subject.email} is refused")
    _refuse_duplicate(s, subject.id, data.entitlement_id, data.role_id)
    r = AccessRequest(
        requester_id=requester.id,
        subject_id=subject.id,
        entitlement_id=data.entitlement_id,
        role_id=data.role_id,
        justification=data.justification,
        duration_days=duration,
        status=RequestStatus.PENDING.value,
        required_approvals=max(catalogue.required_approvals(s, e) for e in ents),
        approver_kinds=_approver_kinds(s, ents),
        created_at=now,
        decide_by=now + timedelta(days=DECIDE_WITHIN_DAYS),
        version=0,
    )
    s.add(r)
    s.flush()
    # Checks that do not refuse travel with the request, and become findings once granted.
    noted = [{"code": c.code, "reason": c.reason} for cs in checks.values() for c in cs if not c.blocking]
    record_change(ctx, "request.created", "access_request", r.id, None, request_view(r), policy_checks=noted)
    return r


def _refuse_duplicate(session: Session, subject_id: int, entitlement_id: int | None, role_id: int | None) -> None:
    stmt = select(AccessRequest.id).where(
        AccessRequest.subject_id == subject_id, AccessRequest.status == RequestStatus.PENDING.value
    )
    if entitlement_id is not None:
        stmt = stmt.where(AccessRequest.entitlement_id == entitlement_id)
    else:
        stmt = stmt.where(AccessRequest.role_id == role_id)
    pending = session.scalar(stmt.limit(1))
    if pending is not None:
        raise Conflict(f"Request {pending} for the same access and person is still pending")


# --- deciding -----------------------------------------------------------------------


def _eligible_kinds(ctx: Context, me: Person, r: AccessRequest, ents: Sequence[Entitlement]) -> list[str]:
    owners, _ = _owners(ctx.session, ents)
    manager = ctx.session.scalar(select(Person.manager_id).where(Person.id == r.subject_id))
    eligible = {
        ApproverKind.OWNER.value: me.id in owners,
        ApproverKind.MANAGER.value: manager is not None and manager == me.id,
        ApproverKind.SECURITY_OFFICER.value: ctx.principal.role in OFFICER_ROLES,
    }
    return [k for k in KIND_ORDER if k in (r.approver_kinds or []) and eligible[k]]


def _locked(ctx: Context, request_id: int) -> AccessRequest:
    stmt = (
        select(AccessRequest)
        .where(AccessRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    r = ctx.session.scalars(stmt).one_or_none()
    if r is None:
        raise NotFound(f"No access request with id {request_id}")
    return r


def _bump(ctx: Context, r: AccessRequest) -> None:
    seen = r.version
    done = ctx.session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == r.id, AccessRequest.version == seen)
        .values(version=seen + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0) != 1:
        raise Conflict(f"Request {r.id} was decided by someone else meanwhile; reload it and decide again")
    set_committed_value(r, "version", seen + 1)


def _refuse_self(me: Person, r: AccessRequest) -> None:
    if me.id == r.requester_id:
        raise PermissionDenied(f"Nobody approves a request they made: {me.email} made request {r.id}")
    if me.id == r.subject_id:
        raise PermissionDenied(f"Nobody approves a request for themselves: request {r.id} is for {me.email}")


def decide(ctx: Context, request_id: int, data: DecisionIn) -> AccessRequest:
    """Record one approver's decision; the last approval needed approves the request and creates the grant(s)."""
    ctx.require(Permission.ACCESS_APPROVE)
    s = ctx.session
    r = _locked(ctx, request_id)
    me = catalogue.acting_person(ctx)
    now = ctx.now()
    if r.status != RequestStatus.PENDING.value:
        raise Conflict(f"Request {r.id} is already {r.status}")
    if now >= r.decide_by:
        raise Conflict(f"Request {r.id} was not decided by {r.decide_by.isoformat()} and has expired")
    _refuse_self(me, r)
    ents = _entitlements(s, r)
    kinds = _eligible_kinds(ctx, me, r, ents)
    if not kinds:
        raise PermissionDenied(
            f"{me.email} is not an eligible approver of request {r.id}: it needs "
            + " or ".join(k.replace("_", " ") for k in r.approver_kinds)
        )
    if s.scalar(select(Approval.id).where(Approval.request_id == r.id, Approval.approver_id == me.id)) is not None:
        raise Conflict(f"{me.email} has already decided request {r.id}")
    _bump(ctx, r)
    before = request_view(r)
    decision = Approval(
        request_id=r.id, approver_id=me.id, acting_as=kinds[0], approve=data.approve, comment=data.comment, at=now
    )
    s.add(decision)
    try:
        s.flush()
    except IntegrityError as exc:
        raise Conflict(f"{me.email} has already decided request {r.id}") from exc
    record_change(
        ctx,
        "request.decision",
        "access_request",
        r.id,
        None,
        None,
        approver_email=me.email,
        acting_as=kinds[0],
        approve=data.approve,
        comment=data.comment,
    )
    if not data.approve:
        r.status = RequestStatus.REJECTED.value
        r.decided_at = now
        s.flush()
        record_change(ctx, "request.rejected", "access_request", r.id, before, request_view(r))
        return r
    if _complete(s, r, ents):
        _approve(ctx, r, ents, before)
    return r


def _complete(session: Session, r: AccessRequest, ents: Sequence[Entitlement]) -> bool:
    approvers = {a.approver_id for a in _approvals(session, r.id) if a.approve}
    _, owners_needed = _owners(session, ents)
    return len(approvers) >= r.required_approvals and owners_needed <= approvers


def _approve(ctx: Context, r: AccessRequest, ents: Sequence[Entitlement], before: dict[str, Any]) -> None:
    s = ctx.session
    now = ctx.now()
    subject = s.get(Person, r.subject_id)
    assert subject is not None
    field = "entitlement_id" if r.entitlement_id is not None else "role_id"
    errors: list[FieldError] = []
    if not ents:
        errors.append(FieldError(field, "nothing left to grant: the access was withdrawn from the catalogue"))
    if r.role_id is not None:
        role = s.get(AccessRole, r.role_id)
        if role is not None and role.retired_at is not None:
            errors.append(FieldError("role_id", f"role {role.key} was retired after the request was made"))
    # Again at approval: training may have lapsed, the person may have left or moved since the request.
    blocking_errors, checks = assess(s, subject, ents, now, duration_days=r.duration_days, field=field)
    errors.extend(blocking_errors)
    if errors:
        raise ValidationFailed(f"Request {r.id} cannot be approved now", errors)
    r.status = RequestStatus.APPROVED.value
    r.decided_at = now
    s.flush()
    record_change(ctx, "request.approved", "access_request", r.id, before, request_view(r))
    issue(
        ctx,
        subject,
        ents,
        checks,
        kind=GrantKind.TIME_BOUND,
        duration_days=r.duration_days,
        reason=f"request {r.id}: {r.justification}",
        request_id=r.id,
        role_id=r.role_id,
    )


# --- ending without a grant ---------------------------------------------------------


def _close(ctx: Context, r: AccessRequest, status: RequestStatus, action: str, **extra: Any) -> AccessRequest:
    before = request_view(r)
    r.status = status.value
    r.decided_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, action, "access_request", r.id, before, request_view(r), **extra)
    return r


def cancel_request(ctx: Context, request_id: int) -> AccessRequest:
    """The requester or the subject withdraws a pending request (an access admin may too)."""
    ctx.require(Permission.ACCESS_REQUEST)
    r = _locked(ctx, request_id)
    if not ctx.principal.can(Permission.ACCESS_ADMIN):
        me = catalogue.acting_person(ctx)
        if me.id not in (r.requester_id, r.subject_id):
            raise PermissionDenied(f"Only who made request {r.id} or whom it is for may cancel it")
    if r.status != RequestStatus.PENDING.value:
        raise Conflict(f"Request {r.id} is already {r.status}")
    _bump(ctx, r)
    return _close(ctx, r, RequestStatus.CANCELLED, "request.cancelled")


def withdraw_requests_for(ctx: Context, person_id: int, reason: str) -> int:
    """Cancel the pending requests for a person who can no longer hold access (a leaver)."""
    pending = list(
        ctx.session.scalars(
            select(AccessRequest)
            .where(AccessRequest.subject_id == person_id, AccessRequest.status == RequestStatus.PENDING.value)
            .order_by(AccessRequest.id)
        )
    )
    for r in pending:
        _close(ctx, r, RequestStatus.CANCELLED, "request.cancelled", reason=reason)
    return len(pending)


def expire_requests(ctx: Context) -> int:
    """Scheduler job: pending requests past their decision deadline expire."""
    ctx.require(Permission.ACCESS_ADMIN)
    due = list(
        ctx.session.scalars(
            select(AccessRequest)
            .where(AccessRequest.status == RequestStatus.PENDING.value, AccessRequest.decide_by <= ctx.now())
            .order_by(AccessRequest.id)
        )
    )
    for r in due:
        _close(ctx, r, RequestStatus.EXPIRED, "request.expired")
    return len(due)


# --- reading --------------------------------------------------------------------------


def _reader(ctx: Context) -> tuple[bool, int | None]:
    """(reads everything, else the id of the person whose own requests they may see; None: nobody linked)."""
    if ctx.principal.can(Permission.ACCESS_READ):
        return True, None
    ctx.require(Permission.ACCESS_REQUEST)
    me = linked_person(ctx)
    return False, None if me is None else me.id


def get_request(ctx: Context, request_id: int) -> AccessRequest:
    reads_all, me = _reader(ctx)
    r = ctx.session.get(AccessRequest, request_id)
    if r is None:
        raise NotFound(f"No access request with id {request_id}")
    if not reads_all and me not in (r.requester_id, r.subject_id):
        raise PermissionDenied(f"Request {request_id} is neither made by you nor for you")
    return r


def list_requests(
    ctx: Context,
    *,
    status: str | None = None,
    subject_id: int | None = None,
    requester_id: int | None = None,
    entitlement_id: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[AccessRequest], int, int | None]:
    reads_all, me = _reader(ctx)
    stmt = select(AccessRequest)
    if not reads_all:
        stmt = stmt.where(
            false() if me is None else or_(AccessRequest.requester_id == me, AccessRequest.subject_id == me)
        )
    if status:
        stmt = stmt.where(AccessRequest.status == status)
    if subject_id is not None:
        stmt = stmt.where(AccessRequest.subject_id == subject_id)
    if requester_id is not None:
        stmt = stmt.where(AccessRequest.requester_id == requester_id)
    if entitlement_id is not None:
        stmt = stmt.where(AccessRequest.entitlement_id == entitlement_id)
    return paginate(ctx.session, stmt, AccessRequest.id, after, limit)


def approvals_inbox(ctx: Context) -> list[AccessRequest]:
    """Pending requests the acting person may still decide, soonest deadline first."""
    ctx.require(Permission.ACCESS_APPROVE)
    me = linked_person(ctx)
    if me is None:
        return []
    s = ctx.session
    decided = select(Approval.request_id).where(Approval.approver_id == me.id)
    pending = s.scalars(
        select(AccessRequest)
        .where(
            AccessRequest.status == RequestStatus.PENDING.value,
            AccessRequest.decide_by > ctx.now(),
            AccessRequest.requester_id != me.id,
            AccessRequest.subject_id != me.id,
            AccessRequest.id.not_in(decided),
        )
        .order_by(AccessRequest.decide_by, AccessRequest.id)
    )
    return [r for r in pending if _eligible_kinds(ctx, me, r, _entitlements(s, r))]
