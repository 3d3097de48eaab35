"""The demo firm's access governance, built through the access services as a short history.

The demo plays the firm's first three weeks on Portcullis on a story clock that
ends when the demo is built: the catalogue and the role grants on the first day,
then requests made, approved, rejected and left to expire, an ad hoc grant that
ran out, a revocation, and on the last day a directory reconciliation and the
daily policy pass. Every step goes through the same services as real use, in
order of time, so the ledger reads as that history; the people who request and
approve act as themselves (platform users linked to their person, `via` "demo").

Problems Portcullis would refuse or undo when they go through it (a leaver's
access, privileged access without MFA, a separation-of-duties conflict) reach
the demo the way they reach a real firm: as access that existed before
Portcullis, imported from the old spreadsheet (import_legacy_grant).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pyotp

from portcullis import demo_access_data as acc
from portcullis import demo_data as data
from portcullis.access import catalogue, grants, policy, reconcile, requests
from portcullis.access.account_csv import AccountRecord
from portcullis.access.models import AccessRequest, Grant, GrantKind, GrantStatus
from portcullis.access.schemas import (
    AccessRoleIn,
    DecisionIn,
    EntitlementIn,
    GroupMappingIn,
    RequestIn,
    SodRuleIn,
    TrainingRecordIn,
)
from portcullis.accounts import service as accounts
from portcullis.accounts.models import User
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Context, Principal
from portcullis.ledger.service import record_change

# How long before the build the firm started using Portcullis.
STORY_DAYS = 21
VIA = "demo"


@dataclass
class Story:
    """Contexts on one session whose clock moves forward through the demo's history, never back."""

    base: Context  # the demo's unit of work, on the real clock
    system: Principal
    clock: FrozenClock
    end: datetime

    @classmethod
    def start(cls, base: Context, system: Principal, days: int = STORY_DAYS) -> Story:
        end = base.now()
        return cls(base, system, FrozenClock(end - timedelta(days=days)), end)

    def at(self, day: float) -> None:
        """Move to `day` days after the end (0: the build; -1: the day before)."""
        target = self.end + timedelta(days=day)
        step = target - self.clock.now()
        if step < timedelta(0):
            raise ValueError(f"the demo's story goes back in time (to day {day})")
        self.clock.advance(step)

    def ctx(self, principal: Principal | None = None) -> Context:
        return Context(self.base.session, principal or self.system, self.clock, self.base.autosign)

    def as_user(self, user: User) -> Context:
        # mfa=True: these users approve access, which the platform allows only after MFA; they are enrolled.
        return self.ctx(accounts.principal_for(user, VIA, mfa=True))


@dataclass(frozen=True)
class Refs:
    people: dict[str, int]
    assets: dict[str, int]
    zones: dict[str, int]
    users: dict[str, User]  # by person external id

    def user(self, person: str) -> User:
        return self.users[person]


# --- platform users behind the people -------------------------------------------------


@dataclass(frozen=True)
class Approver:
    person: str
    role: str


# Owners and a manager who approve or request in the story. Their passwords are random
# and never shown: they exist so that the history is made by the people it names.
APPROVERS = [Approver("AUR-006", "approver"), Approver("AUR-012", "approver"), Approver("AUR-015", "approver")]
LINKS = {data.ADMIN_EMAIL: "AUR-022", data.AUDITOR_EMAIL: "AUR-036"}  # the CISO; a compliance officer
ADMIN_PERSON_NAME = next(p.full_name for p in data.PEOPLE_SPECS if p.external_id == LINKS[data.ADMIN_EMAIL])


def build_users(story: Story, people: dict[str, int], demo_users: dict[str, User]) -> dict[str, User]:
    ctx = story.ctx()
    by_person: dict[str, User] = {}
    for email, person in LINKS.items():
        user = demo_users[email]
        catalogue.link_user_to_person(ctx, user.id, people[person])
        by_person[person] = user
    specs = {p.external_id: p for p in data.PEOPLE_SPECS}
    for a in APPROVERS:
        spec = specs[a.person]
        user = accounts.create_user(ctx, spec.email, spec.full_name, a.role, secrets.token_urlsafe(24))
        catalogue.link_user_to_person(ctx, user.id, people[a.person])
        own = story.ctx(accounts.principal_for(user, VIA, mfa=False))
        enrolment = accounts.begin_totp_enrolment(own)
        accounts.confirm_totp_enrolment(own, pyotp.TOTP(enrolment.secret).at(story.clock.now()))
        by_person[a.person] = user
    return by_person


# --- catalogue ----------------------------------------------------------------------------


def _training(story: Story, people: dict[str, int]) -> None:
    ctx = story.ctx()
    for t in acc.training():
        done = _midday(story.end - timedelta(days=t.days_ago))
        catalogue.record_training(
            ctx,
            TrainingRecordIn(
                person_id=people[t.person],
                course=t.course,
                completed_at=done,
                expires_at=done + timedelta(days=acc.VALIDITY[t.course]),
            ),
        )


def _midday(at: datetime) -> datetime:
    # A course is completed during the working day, whenever the demo is built.
    return datetime.combine(at.date(), time(10, 0), tzinfo=UTC)


def _catalogue(story: Story, refs: Refs) -> tuple[dict[str, int], dict[str, int]]:
    ctx = story.ctx()
    ents: dict[str, int] = {}
    for e in acc.ENTITLEMENTS:
        ents[e.key] = catalogue.create_entitlement(
            ctx,
            EntitlementIn.model_validate(
                {
                    "key": e.key,
                    "name": e.name,
                    "description": e.description,
                    "asset_id": refs.assets[e.asset] if e.asset else None,
                    "zone_id": refs.zones[e.zone] if e.zone else None,
                    "privileged": e.privileged,
                    "remote_admin": e.remote_admin,
                    "required_training": list(e.training),
                    "max_duration_days": e.max_days,
                    "approvers": list(e.approvers),
                    "min_approvals": e.min_approvals,
                    "scope": e.scope,
                }
            ),
        ).id
    roles: dict[str, int] = {}
    for r in acc.ROLES:
        roles[r.key] = catalogue.create_role(
            ctx,
            AccessRoleIn(
                key=r.key,
                name=r.name,
                description=r.description,
                departments=list(r.departments),
                person_kinds=list(r.kinds),
                entitlement_ids=[ents[k] for k in r.entitlements],
            ),
        ).id
    for s in acc.SOD_RULES:
        catalogue.create_sod_rule(
            ctx,
            SodRuleIn(
                name=s.name, left_entitlement_id=ents[s.left], right_entitlement_id=ents[s.right], reason=s.reason
            ),
        )
    for group, key in acc.GROUP_MAPPINGS.items():
        catalogue.create_group_mapping(
            ctx, GroupMappingIn(system=acc.DIRECTORY_SYSTEM, group_name=group, entitlement_id=ents[key])
        )
    return ents, roles


# --- access from before Portcullis ---------------------------------------------------------


def import_legacy_grant(
    ctx: Context,
    person_id: int,
    entitlement_id: int,
    *,
    kind: GrantKind,
    starts_at: datetime,
    expires_at: datetime | None,
    note: str,
) -> Grant:
    """Bring in access that already existed before Portcullis, as it stands, with no checks.

    Not a way to grant access: the workflow (requests.decide, grants.grant_role)
    refuses a leaver, privileged access without MFA and a separation-of-duties
    conflict. Access that predates Portcullis was never through that door, so the
    demo records it as found, says where it came from in the ledger, and leaves it
    to the daily policy pass to report what is wrong with it.
    """
    g = Grant(
        person_id=person_id,
        entitlement_id=entitlement_id,
        kind=kind.value,
        status=GrantStatus.ACTIVE.value,
        starts_at=starts_at,
        expires_at=expires_at,
        created_at=ctx.now(),
    )
    ctx.session.add(g)
    ctx.session.flush()
    record_change(ctx, "grant.imported", "grant", g.id, None, grants.grant_view(g), source=acc.LEGACY_SOURCE,
                  note=note)
    return g


def _legacy(story: Story, refs: Refs, ents: dict[str, int]) -> dict[tuple[str, str], int]:
    ctx = story.ctx()
    made: dict[tuple[str, str], int] = {}
    for g in acc.LEGACY_GRANTS:
        if g.since is not None:
            kind, starts, expires = GrantKind.STANDING, _midday(datetime.fromisoformat(g.since)), None
        else:
            assert g.days_ago is not None
            assert g.days is not None
            kind = GrantKind.TIME_BOUND
            starts = story.end - timedelta(days=g.days_ago)
            expires = starts + timedelta(days=g.days)
        made[(g.person, g.entitlement)] = import_legacy_grant(
            ctx, refs.people[g.person], ents[g.entitlement], kind=kind, starts_at=starts, expires_at=expires,
            note=g.note,
        ).id
    return made


# --- roles --------------------------------------------------------------------------------


def all_staff() -> list[str]:
    """Everyone with a badge who works here, or is about to start."""
    return [
        p.external_id
        for p in data.PEOPLE_SPECS
        if p.badge and p.kind in ("employee", "contractor") and p.status in ("active", "joiner")
    ]


def _role_grants(story: Story, refs: Refs, roles: dict[str, int]) -> None:
    ctx = story.ctx()
    for r in acc.ROLES:
        holders: Iterable[str] = all_staff() if r.key == acc.ALL_STAFF else r.holders
        for person in holders:
            grants.grant_role(ctx, refs.people[person], roles[r.key], f"role model adopted: {r.name}")


# --- the history ----------------------------------------------------------------------------


def _ask(story: Story, requester: User, subject: str, ent: str, why: str, days: int, refs: Refs,
         ents: dict[str, int]) -> AccessRequest:
    return requests.request_access(
        story.as_user(requester),
        RequestIn(subject_id=refs.people[subject], entitlement_id=ents[ent], justification=why, duration_days=days),
    )


def _decide(story: Story, approver: User, request: AccessRequest, approve: bool, comment: str) -> None:
    requests.decide(story.as_user(approver), request.id, DecisionIn(approve=approve, comment=comment))


def _history(story: Story, refs: Refs, ents: dict[str, int], legacy: dict[tuple[str, str], int]) -> None:
    ciso, sre_lead, dba, platform = (refs.user(x) for x in ("AUR-022", "AUR-012", "AUR-015", "AUR-006"))

    story.at(-14)  # left undecided by the database's owner: it will expire
    _ask(story, ciso, "AUR-056", "db-prod-readonly",
         "Market risk back-testing needs order book history from the production replicas", 30, refs, ents)

    story.at(-12)  # physical access, ad hoc, approved by the cage's owner; it runs out by itself
    cage = _ask(story, ciso, "AUR-013", "dc-cage-entry",
                "Replace the failed disk in database node 3 with the vendor's engineer (ticket OPS-2291)", 2, refs,
                ents)
    story.at(-11.9)
    _decide(story, sre_lead, cage, True, "Escorted by colocation staff; badge returned at the desk")

    story.at(-10)  # privileged access the owner refuses
    bucket = _ask(story, sre_lead, "AUR-020", "cloud-prod-admin",
                  "Create the data pipeline's storage buckets in the production account", 7, refs, ents)
    story.at(-9.5)
    _decide(story, platform, bucket, False, "Buckets are created by Terraform through CI: open a merge request")

    story.at(-7)  # what the scheduler does every day
    requests.expire_requests(story.ctx())
    grants.expire_grants(story.ctx())

    story.at(-6)
    person, key, reason = acc.REVOKED_LEGACY
    grants.revoke_grant(story.as_user(ciso), legacy[(person, key)], reason)

    story.at(-5)  # privileged, time-bound, two approvers: the owner and the security officer
    upgrade = _ask(story, sre_lead, "AUR-013", "db-prod-admin",
                   "PostgreSQL 16 to 17 upgrade of the production cluster, change CHG-1043 (Saturday window)", 5,
                   refs, ents)
    story.at(-4)
    _decide(story, dba, upgrade, True, "Rollback plan reviewed")
    story.at(-3.9)
    _decide(story, ciso, upgrade, True, "Session recording on; revoke after the window if not needed")

    story.at(-2)  # waiting in the CISO's approvals inbox: the owner has approved, the security officer not yet
    nodes = _ask(story, sre_lead, "AUR-014", "cloud-prod-admin",
                 "Roll the production Kubernetes node pools to the new base image (change CHG-1051)", 7, refs, ents)
    story.at(-1)
    _decide(story, platform, nodes, True, "Planned change, approved at the change board")


def _reconcile(story: Story) -> None:
    records = [
        AccountRecord(system=acc.DIRECTORY_SYSTEM, account_name=a.account, email=a.email, active=a.active,
                      groups=a.groups, dn=a.dn)
        for a in acc.directory()
    ]
    reconcile.reconcile_accounts(story.ctx(), acc.DIRECTORY_SYSTEM, records, source={"kind": "demo"})


def build_access(
    story: Story, people: dict[str, int], assets: dict[str, int], zones: dict[str, int], demo_users: dict[str, User]
) -> None:
    """Everything access governance holds for the demo firm; `story` starts STORY_DAYS before the build."""
    refs = Refs(people, assets, zones, build_users(story, people, demo_users))
    _training(story, refs.people)
    ents, roles = _catalogue(story, refs)
    legacy = _legacy(story, refs, ents)
    story.at(-STORY_DAYS + 1)
    _role_grants(story, refs, roles)
    _history(story, refs, ents, legacy)
    story.at(0)
    _reconcile(story)
    policy.daily_pass(story.ctx())

