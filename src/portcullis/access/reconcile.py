"""Reconciliation: the accounts that really exist against the access that was approved (§21, §25).

A run reads every account of one target system (an LDAP directory, or a CSV
export), keeps them as TargetAccount rows (first and last seen; an account gone
from the system is marked inactive), links each to a person (by IdP id, then
email, then employee id = the person's external id) and reports, as findings
with an owner and a due date:

- orphan_account: a live account that belongs to no person in the register;
- access_without_grant: a live account in a group that group mappings say is an
  entitlement, held by a person with no active grant of it;
- leaver_account_live: a leaver's account is still live;
- grant_not_provisioned: an active grant of an entitlement mapped in this system,
  older than a day, and the person's live accounts are in none of its groups.

Grants seen in the system are marked provisioned. A finding is keyed by the
system and what it is about, so a second run opens nothing new and a run that no
longer sees the problem closes it. A disabled account is no access, so only live
accounts raise the first three. The run, its findings and its ledger record
("reconciliation.run", with counts) commit together or not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select

from portcullis.access import grants as grants_service
from portcullis.access.account_csv import AccountRecord, read_accounts
from portcullis.access.findings import HIGH, LOW, MEDIUM, FindingSpec, open_keys, open_many, resolve_missing
from portcullis.access.grants import security_officer
from portcullis.access.ldap_source import LdapQuery
from portcullis.access.ldap_source import read_accounts as read_directory
from portcullis.access.models import Entitlement, Grant, GroupMapping, TargetAccount
from portcullis.access.policy import target_owner
from portcullis.core.canonical import canonical_bytes
from portcullis.core.clock import as_utc
from portcullis.core.context import Context
from portcullis.core.errors import ErrorCollector, FieldError, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person, PersonStatus
from portcullis.ledger.service import record_change

ORPHAN = "orphan_account"
WITHOUT_GRANT = "access_without_grant"
LEAVER_LIVE = "leaver_account_live"
NOT_PROVISIONED = "grant_not_provisioned"
KINDS = (ORPHAN, WITHOUT_GRANT, LEAVER_LIVE, NOT_PROVISIONED)
URGENT_DAYS = 7  # a live account nobody answers for, or a leaver's, is an open door
DUE_DAYS = 14
# Provisioning takes time; a grant younger than this is not yet expected in the system.
PROVISIONING_GRACE = timedelta(days=1)
MAX_SYSTEM = 100
# The ledger record names changed accounts up to this many per list; the counts and digest cover the rest.
NAMES_IN_RECORD = 200


@dataclass
class ReconcileReport:
    system: str
    source: dict[str, Any]
    accounts: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    matched: int = 0
    orphans: int = 0
    provisioned: int = 0
    opened: int = 0
    resolved: int = 0
    open_by_kind: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {
            "accounts": self.accounts,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "matched": self.matched,
            "orphans": self.orphans,
            "grants_provisioned": self.provisioned,
            "findings_opened": self.opened,
            "findings_resolved": self.resolved,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "source": self.source,
            "ok": self.ok,
            "committed": self.ok,
            **self.counts(),
            "open_findings": self.open_by_kind,
            "skipped": self.skipped,
            "errors": [e.as_dict() for e in self.errors],
        }


def check_system(system: str) -> str:
    name = (system or "").strip()
    if not name:
        raise ValidationFailed("Name the target system", [FieldError("system", "must not be empty")])
    if len(name) > MAX_SYSTEM:
        raise ValidationFailed(
            "The system name is too long", [FieldError("system", f"{len(name)} characters; the limit is {MAX_SYSTEM}")]
        )
    return name


def key_prefix(system: str) -> str:
    """The start of every finding key of this system's reconciliation; no system's prefix starts another's."""
    tag = quote(system, safe="")
    if len(tag) > 80:
        tag = "sha256-" + hashlib.sha256(system.encode()).hexdigest()[:24]
    return f"reconcile:{tag}:"


# --- people -------------------------------------------------------------------------


class _Register:
    """The people, indexed the three ways an account can name its holder."""

    def __init__(self, people: Iterable[Person]) -> None:
        self.by_id: dict[int, Person] = {}
        self.by_idp: dict[str, int] = {}
        self.by_email: dict[str, int] = {}
        self.by_external: dict[str, int] = {}
        for p in people:
            self.by_id[p.id] = p
            if p.idp_id:
                self.by_idp[p.idp_id] = p.id
            self.by_email[p.email.lower()] = p.id
            self.by_external[p.external_id] = p.id

    def resolve(self, rec: AccountRecord) -> tuple[int | None, str | None]:
        if rec.idp_id and rec.idp_id in self.by_idp:
            return self.by_idp[rec.idp_id], "idp_id"
        if rec.email and rec.email.lower() in self.by_email:
            return self.by_email[rec.email.lower()], "email"
        if rec.employee_id and rec.employee_id in self.by_external:
            return self.by_external[rec.employee_id], "employee_id"
        return None, None


# --- accounts -----------------------------------------------------------------------


def _state(a: TargetAccount) -> tuple[Any, ...]:
    return (a.account_name, a.person_id, a.active, list(a.groups), dict(a.attributes))


def _upsert(
    ctx: Context, system: str, records: Sequence[AccountRecord], register: _Register, report: ReconcileReport
) -> dict[str, list[str]]:
    now = ctx.now()
    existing = {
        a.account_name.casefold(): a
        for a in ctx.session.scalars(select(TargetAccount).where(TargetAccount.system == system))
    }
    names: dict[str, list[str]] = {"created": [], "updated": [], "deactivated": []}
    seen: set[str] = set()
    for rec in records:
        person_id, how = register.resolve(rec)
        attributes = rec.attributes() | ({"matched_by": how} if how else {})
        acct = existing.get(rec.account_name.casefold())
        seen.add(rec.account_name.casefold())
        report.matched += person_id is not None
        if acct is None:
            acct = TargetAccount(
                system=system,
                account_name=rec.account_name,
                person_id=person_id,
                active=rec.active,
                groups=list(rec.groups),
                attributes=attributes,
                first_seen_at=now,
                last_seen_at=now,
            )
            ctx.session.add(acct)
            report.created += 1
            names["created"].append(rec.account_name)
            continue
        before = _state(acct)
        acct.account_name = rec.account_name
        acct.person_id = person_id
        acct.active = rec.active
        acct.groups = list(rec.groups)
        acct.attributes = attributes
        acct.last_seen_at = now
        if _state(acct) != before:
            report.updated += 1
            names["updated"].append(rec.account_name)
        else:
            report.unchanged += 1
    for key, acct in existing.items():
        if key not in seen and acct.active:
            # Gone from the system: no longer access, but kept as history of what was there.
            acct.active = False
            report.deactivated += 1
            names["deactivated"].append(acct.account_name)
    ctx.session.flush()
    return names


# --- findings -----------------------------------------------------------------------


@dataclass
class _Catalogue:
    """The entitlements this system's groups stand for, and who owns each."""

    by_group: dict[str, set[int]]
    entitlements: dict[int, Entitlement]
    owners: dict[int, int | None]
    # Every finding has an owner: when neither the asset's owner nor a manager answers, the security officer does.
    fallback_owner: int | None

    def of(self, groups: Iterable[str]) -> list[int]:
        out: set[int] = set()
        for g in groups:
            out |= self.by_group.get(g.casefold(), set())
        return sorted(out)

    def groups_of(self, entitlement_id: int) -> list[str]:
        return sorted(g for g, ents in self.by_group.items() if entitlement_id in ents)

    def severity(self, entitlement_id: int) -> str:
        ent = self.entitlements[entitlement_id]
        return HIGH if ent.privileged or ent.remote_admin else MEDIUM


def _catalogue(ctx: Context, system: str) -> _Catalogue:
    by_group: dict[str, set[int]] = {}
    for m in ctx.session.scalars(select(GroupMapping).where(GroupMapping.system == system)):
        by_group.setdefault(m.group_name.casefold(), set()).add(m.entitlement_id)
    ids = sorted({e for ents in by_group.values() for e in ents})
    entitlements = {e.id: e for e in ctx.session.scalars(select(Entitlement).where(Entitlement.id.in_(ids)))}
    owners = {e.id: target_owner(ctx.session, e) for e in entitlements.values()}
    return _Catalogue(by_group, entitlements, owners, security_officer(ctx.session))


def _owner(cat: _Catalogue, entitlement_ids: Sequence[int], person: Person | None) -> int | None:
    """The owner of the first mapped entitlement's asset or zone that has one, else the person's manager,
    else the security officer."""
    for e in entitlement_ids:
        if cat.owners.get(e) is not None:
            return cat.owners[e]
    if person is not None and person.manager_id is not None:
        return person.manager_id
    return cat.fallback_owner


def _findings(
    ctx: Context, system: str, register: _Register, report: ReconcileReport
) -> tuple[list[FindingSpec], list[int]]:
    now = ctx.now()
    prefix = key_prefix(system)
    cat = _catalogue(ctx, system)
    live = list(
        ctx.session.scalars(
            select(TargetAccount)
            .where(TargetAccount.system == system, TargetAccount.active.is_(True))
            .order_by(TargetAccount.id)
        )
    )
    grants = list(
        ctx.session.scalars(
            select(Grant)
            .where(Grant.entitlement_id.in_(sorted(cat.entitlements)), grants_service.is_active(now))
            .order_by(Grant.id)
        )
    )
    held = {(g.person_id, g.entitlement_id) for g in grants}
    specs: list[FindingSpec] = []
    # What each person's live accounts in this system really give them, and through which account.
    provided: dict[tuple[int, int], int] = {}
    first_account: dict[int, int] = {}
    for acct in live:
        ents = cat.of(acct.groups)
        person = register.by_id.get(acct.person_id) if acct.person_id is not None else None
        where = f"account {acct.account_name!r} in {system}"
        if person is None:
            report.orphans += 1
            specs.append(
                FindingSpec(
                    key=f"{prefix}{ORPHAN}:{acct.id}",
                    kind=ORPHAN,
                    severity=HIGH,
                    detail=f"{where} belongs to no person in the register (no match by IdP id, email "
                    f"{acct.attributes.get('email') or '-'} or employee id {acct.attributes.get('employee_id') or '-'})"
                    + (f"; its groups give {_names(cat, ents)}" if ents else ""),
                    account_id=acct.id,
                    owner_id=_owner(cat, ents, None),
                    due_days=URGENT_DAYS,
                )
            )
            continue
        first_account.setdefault(person.id, acct.id)
        if person.status == PersonStatus.LEAVER.value:
            specs.append(
                FindingSpec(
                    key=f"{prefix}{LEAVER_LIVE}:{acct.id}",
                    kind=LEAVER_LIVE,
                    severity=HIGH,
                    detail=f"{where} of {person.email} is live, but {person.email} is a leaver"
                    + (f" (left {person.end_date.isoformat()})" if person.end_date else ""),
                    person_id=person.id,
                    account_id=acct.id,
                    owner_id=_owner(cat, ents, person),
                    due_days=URGENT_DAYS,
                )
            )
        for e in ents:
            provided.setdefault((person.id, e), acct.id)
            if (person.id, e) in held:
                continue
            ent = cat.entitlements[e]
            specs.append(
                FindingSpec(
                    key=f"{prefix}{WITHOUT_GRANT}:{acct.id}:{e}",
                    kind=WITHOUT_GRANT,
                    severity=cat.severity(e),
                    detail=f"{where} of {person.email} is in group(s) {', '.join(cat.groups_of(e))}, which give "
                    f"{ent.key} ({ent.name}), but {person.email} holds no active grant of it",
                    person_id=person.id,
                    account_id=acct.id,
                    owner_id=_owner(cat, [e], person),
                    due_days=DUE_DAYS,
                )
            )
    seen_grants: list[int] = []
    for g in grants:
        if (g.person_id, g.entitlement_id) in provided:
            seen_grants.append(g.id)
            continue
        if now - as_utc(g.starts_at) < PROVISIONING_GRACE:
            continue
        ent = cat.entitlements[g.entitlement_id]
        person = register.by_id.get(g.person_id)
        email = person.email if person else f"person {g.person_id}"
        specs.append(
            FindingSpec(
                key=f"{prefix}{NOT_PROVISIONED}:{g.id}",
                kind=NOT_PROVISIONED,
                severity=LOW,
                detail=f"grant {g.id} of {ent.key} ({ent.name}) to {email} is not provisioned in {system}: "
                f"no live account of theirs is in group(s) {', '.join(cat.groups_of(g.entitlement_id))}",
                person_id=g.person_id,
                grant_id=g.id,
                account_id=first_account.get(g.person_id),
                owner_id=_owner(cat, [g.entitlement_id], person),
                due_days=DUE_DAYS,
            )
        )
    return specs, seen_grants


def _names(cat: _Catalogue, ents: Sequence[int]) -> str:
    return ", ".join(cat.entitlements[e].key for e in ents)


# --- a run --------------------------------------------------------------------------


def _digest(records: Sequence[AccountRecord]) -> str:
    rows = [[r.account_name, r.email, r.employee_id, r.idp_id, r.active, sorted(r.groups)] for r in records]
    rows.sort(key=lambda row: str(row[0]).casefold())
    return hashlib.sha256(canonical_bytes(rows)).hexdigest()


def _check_records(system: str, records: Sequence[AccountRecord]) -> None:
    errs = ErrorCollector()
    seen: set[str] = set()
    for n, rec in enumerate(records, start=1):
        if rec.system != system:
            errs.add(
                "system", f"account {rec.account_name!r} is of system {rec.system!r}, not {system!r}", rec.line or n
            )
        if rec.account_name.casefold() in seen:
            errs.add("account", f"{rec.account_name!r} appears more than once", rec.line or n)
        seen.add(rec.account_name.casefold())
    errs.raise_if_any(f"The accounts of {system} cannot be reconciled")


def reconcile_accounts(
    ctx: Context, system: str, records: Sequence[AccountRecord], *, source: dict[str, Any]
) -> ReconcileReport:
    """Bring the system's accounts up to `records` (all of them) and open and close its findings."""
    ctx.require(Permission.ACCESS_ADMIN)
    system = check_system(system)
    _check_records(system, records)
    report = ReconcileReport(system, source, accounts=len(records))
    register = _Register(ctx.session.scalars(select(Person)))
    names = _upsert(ctx, system, records, register, report)
    specs, seen_grants = _findings(ctx, system, register, report)
    now = ctx.now()
    newly: list[int] = []
    for gid in seen_grants:
        g = ctx.session.get(Grant, gid)
        if g is not None and g.provisioned_at is None:
            grants_service.mark_provisioned(ctx.session, gid, now)
            newly.append(gid)
    report.provisioned = len(newly)
    prefix = key_prefix(system)
    report.opened = open_many(ctx, specs, set(open_keys(ctx.session, [prefix])))
    report.resolved = resolve_missing(ctx, prefix, {s.key for s in specs})
    ctx.session.flush()
    report.open_by_kind = {k: 0 for k in KINDS}
    for spec in specs:
        report.open_by_kind[spec.kind] += 1
    record_change(
        ctx,
        "reconciliation.run",
        "reconciliation",
        system,
        system=system,
        source=source,
        counts=report.counts(),
        open_findings=report.open_by_kind,
        accounts_sha256=_digest(records),
        provisioned_grants=newly[:NAMES_IN_RECORD],
        accounts_created=names["created"][:NAMES_IN_RECORD],
        accounts_updated=names["updated"][:NAMES_IN_RECORD],
        accounts_deactivated=names["deactivated"][:NAMES_IN_RECORD],
    )
    return report


def reconcile_ldap(ctx: Context, query: LdapQuery, system: str) -> ReconcileReport:
    """Read the directory and reconcile it as `system`; the password goes to the bind and nowhere else."""
    # Before any connection: only those who may reconcile make the server reach out to a directory.
    ctx.require(Permission.ACCESS_ADMIN)
    system = check_system(system)
    read = read_directory(query, system)
    report = reconcile_accounts(ctx, system, read.records, source={"kind": "ldap", **query.describe()})
    report.skipped = read.skipped
    return report


def reconcile_csv(ctx: Context, data: bytes, system: str, *, filename: str | None = None) -> ReconcileReport:
    """Reconcile `system` from a CSV export; a file with any bad row is reported and changes nothing."""
    ctx.require(Permission.ACCESS_ADMIN)
    system = check_system(system)
    source: dict[str, Any] = {"kind": "csv", "sha256": hashlib.sha256(data).hexdigest()}
    if filename:
        source["filename"] = filename
    errors = ErrorCollector()
    records = read_accounts(data, errors, system=system)
    if errors.errors:
        return ReconcileReport(
            system, source, accounts=len(records), errors=sorted(errors.errors, key=lambda e: (e.line or 0, e.field))
        )
    return reconcile_accounts(ctx, system, records, source=source)


# --- reading ------------------------------------------------------------------------


def account_view(a: TargetAccount, person_email: str | None = None) -> dict[str, Any]:
    return {
        "id": a.id,
        "system": a.system,
        "account_name": a.account_name,
        "person_id": a.person_id,
        "person_email": person_email,
        "active": a.active,
        "groups": list(a.groups),
        "attributes": dict(a.attributes),
        "first_seen_at": a.first_seen_at,
        "last_seen_at": a.last_seen_at,
    }


def list_accounts(
    ctx: Context,
    *,
    system: str | None = None,
    person_id: int | None = None,
    orphan: bool | None = None,
    active: bool | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[TargetAccount], int, int | None]:
    ctx.require(Permission.ACCESS_READ)
    stmt = select(TargetAccount)
    if system is not None:
        stmt = stmt.where(TargetAccount.system == system)
    if person_id is not None:
        stmt = stmt.where(TargetAccount.person_id == person_id)
    if orphan is not None:
        stmt = stmt.where(TargetAccount.person_id.is_(None) if orphan else TargetAccount.person_id.is_not(None))
    if active is not None:
        stmt = stmt.where(TargetAccount.active.is_(active))
    if q:
        stmt = stmt.where(func.lower(TargetAccount.account_name).contains(q.lower(), autoescape=True))
    return paginate(ctx.session, stmt, TargetAccount.id, after, limit)


def account_views(ctx: Context, accounts: Sequence[TargetAccount]) -> list[dict[str, Any]]:
    ids = {a.person_id for a in accounts if a.person_id is not None}
    emails: dict[int, str] = {}
    if ids:
        for pid, email in ctx.session.execute(select(Person.id, Person.email).where(Person.id.in_(sorted(ids)))):
            emails[pid] = email
    return [account_view(a, emails.get(a.person_id) if a.person_id is not None else None) for a in accounts]
