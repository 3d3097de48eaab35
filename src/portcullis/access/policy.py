"""Policy checks on who may hold an entitlement, at request, at approval and every day (§19, §21, §22, §24).

Each check gives a code and a plain reason:

    code               blocking  why
    person_inactive    yes       a leaver or suspended person holds nothing (§19, §22 "withdrawn")
    duration_exceeded  yes       longer than the entitlement allows (§19 "ad hoc", least privilege)
    sod_conflict       yes       one person must not hold both sides of a separation-of-duties rule
    mfa_missing        yes       privileged or remote-administration access needs strong authentication (§22, §24)
    training_missing   no        the person never completed a course the entitlement requires
    training_lapsed    no        the person's course has lapsed

Blocking checks refuse a request, an approval or a role grant. Training is not
blocking: it is often completed after the request (and a refresher lapses while
the access is needed), so a missing or lapsed course raises a finding owned by
the asset or zone owner, with a due date, instead of stopping the work.

The daily pass runs every active grant through the same checks (none refuse
there: each failing check is an open finding, and a finding whose check passes
again is closed). It loads what it needs in a handful of queries, not per grant.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from portcullis.access.findings import HIGH, MEDIUM, FindingSpec, open_keys, open_many, resolve_missing
from portcullis.access.models import (
    Entitlement,
    Grant,
    GrantKind,
    GrantStatus,
    RoleEntitlement,
    SodRule,
    TrainingRecord,
)
from portcullis.core.context import Context
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Asset, Person, PersonKind, PersonStatus, Zone

PERSON_INACTIVE = "person_inactive"
DURATION_EXCEEDED = "duration_exceeded"
SOD_CONFLICT = "sod_conflict"
MFA_MISSING = "mfa_missing"
TRAINING_MISSING = "training_missing"
TRAINING_LAPSED = "training_lapsed"
SCOPE_MISSING = "scope_missing"
CODES = (
    PERSON_INACTIVE, DURATION_EXCEEDED, SOD_CONFLICT, MFA_MISSING, TRAINING_MISSING, TRAINING_LAPSED, SCOPE_MISSING
)
BLOCKING = frozenset({PERSON_INACTIVE, DURATION_EXCEEDED, SOD_CONFLICT, MFA_MISSING, SCOPE_MISSING})
INACTIVE_STATUSES = frozenset({PersonStatus.LEAVER.value, PersonStatus.SUSPENDED.value})
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Check:
    code: str
    blocking: bool
    reason: str


def _check(code: str, reason: str) -> Check:
    return Check(code, code in BLOCKING, reason)


@dataclass
class SodIndex:
    """Separation-of-duties rules with roles expanded to their entitlements, looked up by entitlement."""

    # entitlement id -> [(rule name, entitlement ids on the other side)]
    by_entitlement: dict[int, list[tuple[str, frozenset[int]]]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> SodIndex:
        rules = list(session.scalars(select(SodRule).order_by(SodRule.id)))
        members: dict[int, set[int]] = defaultdict(set)
        if any(r.left_role_id is not None or r.right_role_id is not None for r in rules):
            for role_id, ent_id in session.execute(select(RoleEntitlement.role_id, RoleEntitlement.entitlement_id)):
                members[role_id].add(ent_id)

        def side(ent_id: int | None, role_id: int | None) -> frozenset[int]:
            if ent_id is not None:
                return frozenset({ent_id})
            return frozenset(members.get(role_id or 0, set()))

        index: dict[int, list[tuple[str, frozenset[int]]]] = defaultdict(list)
        for r in rules:
            left = side(r.left_entitlement_id, r.left_role_id)
            right = side(r.right_entitlement_id, r.right_role_id)
            for e in left:
                index[e].append((r.name, right))
            for e in right:
                index[e].append((r.name, left))
        return cls(dict(index))


@dataclass(frozen=True)
class PersonFacts:
    """What the checks need to know about one person."""

    status: str
    mfa_enrolled: bool
    current: frozenset[str]  # courses current at the time of the check
    ever: frozenset[str]  # courses ever completed by then
    held: Mapping[int, int]  # entitlement id -> number of active grants on it
    kind: str = PersonKind.EMPLOYEE.value


def evaluate(
    person: PersonFacts,
    ent: Entitlement,
    sod: SodIndex,
    keys: Mapping[int, str],
    *,
    duration_days: int | None,
    self_held: bool,
) -> list[Check]:
    """The checks for `person` holding `ent`; `self_held`: one of person.held is the grant under check."""
    checks: list[Check] = []
    if person.status in INACTIVE_STATUSES:
        checks.append(_check(PERSON_INACTIVE, f"the person is a {person.status} and may hold no access"))
    if duration_days is not None and ent.max_duration_days is not None and duration_days > ent.max_duration_days:
        checks.append(
            _check(
                DURATION_EXCEEDED,
                f"{duration_days} days is above the maximum of {ent.max_duration_days} days for {ent.key}",
            )
        )
    for rule_name, other_side in sod.by_entitlement.get(ent.id, ()):
        clashing = sorted(
            keys.get(x, str(x))
            for x in other_side
            if person.held.get(x, 0) - (1 if self_held and x == ent.id else 0) > 0
        )
        if clashing:
            checks.append(
                _check(
                    SOD_CONFLICT,
                    f"separation of duties ({rule_name}): {ent.key} may not be held with {', '.join(clashing)}",
                )
            )
    if person.kind == PersonKind.SERVICE_ACCOUNT.value and not (ent.scope or "").strip():
        # §21: access by applications limited to the minimum the service needs, which must be written down.
        reason = f"{ent.key} states no scope, and a service account holds only scoped access"
        checks.append(_check(SCOPE_MISSING, reason))
    if (ent.privileged or ent.remote_admin) and not person.mfa_enrolled:
        what = "privileged" if ent.privileged else "remote-administration"
        checks.append(_check(MFA_MISSING, f"MFA is not enrolled, and {what} access to {ent.key} requires it"))
    required = list(ent.required_training or [])
    missing = [c for c in required if c not in person.current and c not in person.ever]
    lapsed = [c for c in required if c not in person.current and c in person.ever]
    if missing:
        checks.append(
            _check(TRAINING_MISSING, f"training not completed: {', '.join(missing)} (required for {ent.key})")
        )
    if lapsed:
        checks.append(_check(TRAINING_LAPSED, f"training lapsed: {', '.join(lapsed)} (required for {ent.key})"))
    return checks


def _active(at: datetime) -> Any:
    return (Grant.status == GrantStatus.ACTIVE.value) & or_(Grant.expires_at.is_(None), Grant.expires_at > at)


def _training(session: Session, person_ids: Iterable[int] | None, at: datetime) -> dict[int, tuple[set[str], set[str]]]:
    """person id -> (courses current at `at`, courses ever completed by `at`)."""
    stmt = select(TrainingRecord.person_id, TrainingRecord.course, TrainingRecord.expires_at).where(
        TrainingRecord.completed_at <= at
    )
    if person_ids is not None:
        stmt = stmt.where(TrainingRecord.person_id.in_(list(person_ids)))
    out: dict[int, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    for pid, course, expires in session.execute(stmt):
        current, ever = out[pid]
        ever.add(course)
        if expires is None or expires > at:
            current.add(course)
    return out


def person_facts(
    session: Session, person: Person, at: datetime, extra_entitlement_ids: Iterable[int] = ()
) -> PersonFacts:
    held: Counter[int] = Counter(
        session.scalars(select(Grant.entitlement_id).where(Grant.person_id == person.id, _active(at)))
    )
    held.update(extra_entitlement_ids)
    current, ever = _training(session, [person.id], at).get(person.id, (set(), set()))
    return PersonFacts(person.status, person.mfa_enrolled, frozenset(current), frozenset(ever), held, person.kind)


def entitlement_keys(session: Session, ids: Iterable[int] | None = None) -> dict[int, str]:
    stmt = select(Entitlement.id, Entitlement.key)
    if ids is not None:
        stmt = stmt.where(Entitlement.id.in_(list(ids)))
    return {i: k for i, k in session.execute(stmt)}


def checks_for(
    session: Session,
    person: Person,
    entitlement: Entitlement,
    at: datetime,
    *,
    duration_days: int | None = None,
    extra_entitlement_ids: Sequence[int] = (),
) -> list[Check]:
    """Every check for `person` to hold `entitlement` at `at`.

    extra_entitlement_ids: what the person would hold alongside it (the other
    entitlements of a role being requested), for separation of duties.
    """
    others = [e for e in extra_entitlement_ids if e != entitlement.id]
    facts = person_facts(session, person, at, others)
    sod = SodIndex.load(session)
    keys = entitlement_keys(session)
    return evaluate(facts, entitlement, sod, keys, duration_days=duration_days, self_held=False)


def blocking(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.blocking]


def target_owner(session: Session, entitlement: Entitlement) -> int | None:
    """The owner of the entitlement's ICT asset or zone."""
    if entitlement.asset_id is not None:
        return session.scalar(select(Asset.owner_id).where(Asset.id == entitlement.asset_id))
    if entitlement.zone_id is not None:
        return session.scalar(select(Zone.owner_id).where(Zone.id == entitlement.zone_id))
    return None


def severity_for(code: str, entitlement: Entitlement) -> str:
    # Privileged and remote-administration access, and anyone who should hold nothing, come first.
    if entitlement.privileged or entitlement.remote_admin or code == PERSON_INACTIVE:
        return HIGH
    return MEDIUM


def grant_finding(
    check: Check, grant_id: int, person_id: int, entitlement: Entitlement, owner_id: int | None
) -> FindingSpec:
    return FindingSpec(
        key=f"{check.code}:grant:{grant_id}",
        kind=check.code,
        severity=severity_for(check.code, entitlement),
        detail=f"grant {grant_id}: {check.reason}",
        person_id=person_id,
        grant_id=grant_id,
        owner_id=owner_id,
    )


def _duration_days(starts_at: datetime, expires_at: datetime | None) -> int | None:
    if expires_at is None:
        return None
    seconds = (expires_at - starts_at).total_seconds()
    return int(-(-seconds // DAY_SECONDS))  # whole days, rounded up


def daily_pass(ctx: Context) -> dict[str, Any]:
    """Every active grant through the checks: open a finding per failing check, close those that pass again."""
    ctx.require(Permission.ACCESS_ADMIN)
    s = ctx.session
    at = ctx.now()
    grants = s.execute(
        select(Grant.id, Grant.person_id, Grant.entitlement_id, Grant.kind, Grant.starts_at, Grant.expires_at).where(
            _active(at)
        )
    ).all()
    ents = {e.id: e for e in s.scalars(select(Entitlement))}
    keys = {i: e.key for i, e in ents.items()}
    asset_owner = {i: o for i, o in s.execute(select(Asset.id, Asset.owner_id))}
    zone_owner = {i: o for i, o in s.execute(select(Zone.id, Zone.owner_id))}
    people = {
        pid: (status, mfa, kind)
        for pid, status, mfa, kind in s.execute(select(Person.id, Person.status, Person.mfa_enrolled, Person.kind))
    }
    training = _training(s, None, at)
    sod = SodIndex.load(s)

    held: dict[int, Counter[int]] = defaultdict(Counter)
    for _gid, pid, eid, *_ in grants:
        held[pid][eid] += 1
    facts: dict[int, PersonFacts] = {}
    empty: tuple[set[str], set[str]] = (set(), set())
    for pid in held:
        status, mfa, kind = people[pid]
        current, ever = training.get(pid, empty)
        facts[pid] = PersonFacts(status, bool(mfa), frozenset(current), frozenset(ever), held[pid], kind)

    specs: list[FindingSpec] = []
    for gid, pid, eid, kind, starts_at, expires_at in grants:
        ent = ents[eid]
        # Standing grants (from a role) have no duration to exceed.
        duration = None if kind == GrantKind.STANDING.value else _duration_days(starts_at, expires_at)
        checks = evaluate(facts[pid], ent, sod, keys, duration_days=duration, self_held=True)
        if not checks:
            continue
        owner = asset_owner.get(ent.asset_id) if ent.asset_id is not None else zone_owner.get(ent.zone_id or 0)
        specs.extend(grant_finding(c, gid, pid, ent, owner) for c in checks)

    prefixes = [f"{code}:grant:" for code in CODES]
    already = set(open_keys(s, prefixes))
    opened = open_many(ctx, specs, already)
    wanted = {spec.key for spec in specs}
    resolved = sum(resolve_missing(ctx, prefix, wanted) for prefix in prefixes)
    by_code = Counter(spec.kind for spec in specs)
    return {
        "at": at,
        "grants": len(grants),
        "people": len(facts),
        "findings": len(wanted),
        "opened": opened,
        "resolved": resolved,
        "by_code": dict(sorted(by_code.items())),
    }
