"""Reconciliation from CSV exports: the four findings, idempotence, resolution, bad files (both databases)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from portcullis.access import catalogue, grants
from portcullis.access.account_csv import AccountRecord
from portcullis.access.models import Finding, FindingStatus, Grant, TargetAccount
from portcullis.access.reconcile import reconcile_accounts, reconcile_csv
from portcullis.access.schemas import AccessRoleIn, EntitlementIn, GroupMappingIn
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.errors import PermissionDenied, ValidationFailed
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.models import AssetType, Criticality, Person, PersonStatus
from portcullis.inventory.schemas import AssetIn, PersonIn
from portcullis.ledger.models import LedgerRecord
from tests.factories import make_user

ADMIN = Principal.system("tests")
HEADER = "system,account,email,employee_id,active,groups\n"


@dataclass
class World:
    system: str
    people: dict[str, int]
    trading: int  # entitlement, not privileged, mapped to group trading-ops
    dba: int  # entitlement, privileged, mapped to group dba-admins
    dba_role: int
    trader_role: int


def _person(ctx: Any, ext: str, name: str, **kw: Any) -> int:
    data = PersonIn(external_id=ext, email=f"{name}@aurora.example", full_name=name.title(), **kw)
    return inventory.create_person(ctx, data).id


def build_world(rt: Runtime, clock: FrozenClock, system: str) -> World:
    """People, an asset owned by olga with two mapped entitlements, and two standing grants made two days ago."""
    active = PersonStatus.ACTIVE
    with rt.work(ADMIN) as ctx:
        people: dict[str, int] = {}
        people["olga"] = _person(ctx, "E100", "olga", status=active)
        people["mike"] = _person(ctx, "E101", "mike", status=active)
        mike = people["mike"]
        for ext, name in (("E1", "alice"), ("E4", "dave")):
            people[name] = _person(ctx, ext, name, status=active, manager_id=mike)
        people["bob"] = _person(ctx, "E2", "bob", status=active, manager_id=mike, mfa_enrolled=True)
        leaver = {"status": PersonStatus.LEAVER, "end_date": date(2026, 11, 1), "manager_id": mike}
        people["carol"] = _person(ctx, "E3", "carol", **leaver)
        people["frank"] = _person(ctx, "E6", "frank", **leaver)
        people["erin"] = _person(ctx, "E5", "erin", status=active, manager_id=mike, idp_id="idp-erin")
        asset = inventory.create_asset(
            ctx,
            AssetIn(
                external_id="A-EXCH",
                name="Exchange core",
                type=AssetType.APPLICATION,
                criticality=Criticality.CRITICAL,
                owner_id=people["olga"],
            ),
        )
        trading = catalogue.create_entitlement(
            ctx, EntitlementIn(key="exchange.trading-ops", name="Trading operations", asset_id=asset.id)
        )
        dba = catalogue.create_entitlement(
            ctx, EntitlementIn(key="exchange.db-admin", name="Database admin", asset_id=asset.id, privileged=True)
        )
        for group, ent in (("trading-ops", trading.id), ("dba-admins", dba.id)):
            catalogue.create_group_mapping(ctx, GroupMappingIn(system=system, group_name=group, entitlement_id=ent))
        trader = catalogue.create_role(ctx, AccessRoleIn(key="trader", name="Trader", entitlement_ids=[trading.id]))
        dba_role = catalogue.create_role(ctx, AccessRoleIn(key="dba", name="DBA", entitlement_ids=[dba.id]))
        for name in ("alice", "dave"):
            grants.grant_role(ctx, people[name], trader.id, "trading desk")
    clock.advance(timedelta(days=2))
    return World(system, people, trading.id, dba.id, dba_role.id, trader.id)


# The accounts that really exist, as the back office exports them. ghost belongs to
# nobody; erin's export has an old email, so only her employee id finds her; frank
# left, but his account is disabled.
ROWS = [
    "{s},alice,alice@aurora.example,E1,true,trading-ops",
    "{s},bob,bob@aurora.example,E2,true,dba-admins;wiki",
    "{s},carol,carol@aurora.example,E3,true,wiki",
    "{s},dave,dave@aurora.example,E4,yes,",
    "{s},ghost,ghost@contractor.example,,true,trading-ops",
    "{s},esmith,e.smith@legacy.example,E5,true,wiki",
    "{s},frank,frank@aurora.example,E6,false,trading-ops",
]
EXPECTED = {
    ("access_without_grant", "bob"),
    ("leaver_account_live", "carol"),
    ("grant_not_provisioned", "dave"),
    ("orphan_account", "ghost"),
}


def export(system: str, rows: list[str] | None = None) -> bytes:
    return (HEADER + "\n".join(r.format(s=system) for r in (rows or ROWS)) + "\n").encode()


def open_findings(rt: Runtime) -> dict[tuple[str, str], dict[str, Any]]:
    """Open findings by (kind, account name, or the email's local part for grant findings)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with rt.session() as s:
        for f in s.scalars(select(Finding).where(Finding.status == FindingStatus.OPEN.value)):
            acct = s.get(TargetAccount, f.account_id) if f.account_id is not None else None
            who = acct.account_name if acct is not None and f.grant_id is None else None
            if who is None:
                p = s.get(Person, f.person_id)
                who = p.email.split("@")[0] if p else "?"
            out[(f.kind, who)] = {
                "owner_id": f.owner_id,
                "severity": f.severity,
                "due_on": f.due_on,
                "person_id": f.person_id,
                "grant_id": f.grant_id,
                "key": f.key,
                "detail": f.detail,
            }
    return out


def count(rt: Runtime, model: type[Any]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def ledger(rt: Runtime, action: str) -> list[dict[str, Any]]:
    with rt.session() as s:
        rows = s.scalars(select(LedgerRecord).order_by(LedgerRecord.id))
        out = [json.loads(r.payload) for r in rows]
    return [r for r in out if r.get("action") == action]


def run_csv(rt: Runtime, system: str, data: bytes) -> dict[str, Any]:
    with rt.work(ADMIN) as ctx:
        return reconcile_csv(ctx, data, system).as_dict()


def test_each_finding_for_the_right_account_with_owner_and_due_date(rt: Runtime, clock: FrozenClock) -> None:
    w = build_world(rt, clock, "back-office")
    report = run_csv(rt, "back-office", export("back-office"))
    assert report["ok"], report["errors"]
    found = open_findings(rt)
    assert set(found) == EXPECTED
    p = w.people
    now = clock.now()
    # Owner: the asset owner when the access maps to an entitlement, else the manager.
    assert found[("access_without_grant", "bob")]["owner_id"] == p["olga"]
    assert found[("access_without_grant", "bob")]["severity"] == "high"  # db-admin is privileged
    assert found[("orphan_account", "ghost")]["owner_id"] == p["olga"]
    assert found[("orphan_account", "ghost")]["person_id"] is None
    assert found[("leaver_account_live", "carol")]["owner_id"] == p["mike"]
    assert found[("leaver_account_live", "carol")]["person_id"] == p["carol"]
    assert found[("grant_not_provisioned", "dave")]["owner_id"] == p["olga"]
    assert found[("grant_not_provisioned", "dave")]["person_id"] == p["dave"]
    # Seven days for a live orphan or leaver account, fourteen otherwise.
    due = {k: (v["due_on"].replace(tzinfo=None) - now.replace(tzinfo=None)).days for k, v in found.items()}
    assert due == {
        ("access_without_grant", "bob"): 14,
        ("leaver_account_live", "carol"): 7,
        ("grant_not_provisioned", "dave"): 14,
        ("orphan_account", "ghost"): 7,
    }
    with rt.session() as s:
        accounts = {a.account_name: a for a in s.scalars(select(TargetAccount))}
        assert accounts["esmith"].person_id == p["erin"]  # by employee id
        assert accounts["esmith"].attributes["matched_by"] == "employee_id"
        assert accounts["ghost"].person_id is None
        assert accounts["frank"].active is False
        # alice's grant is in the system now; dave's is not.
        provisioned = {g.person_id: g.provisioned_at for g in s.scalars(select(Grant))}
    assert provisioned[p["alice"]] is not None
    assert provisioned[p["dave"]] is None
    runs = ledger(rt, "reconciliation.run")
    assert len(runs) == 1
    assert runs[0]["counts"]["accounts"] == 7
    assert runs[0]["counts"]["orphans"] == 1
    assert runs[0]["counts"]["findings_opened"] == 4
    assert runs[0]["counts"]["grants_provisioned"] == 1


def test_second_run_adds_nothing_and_fixing_the_cause_resolves(rt: Runtime, clock: FrozenClock) -> None:
    w = build_world(rt, clock, "back-office")
    run_csv(rt, "back-office", export("back-office"))
    first = {k: v["key"] for k, v in open_findings(rt).items()}
    findings_before = count(rt, Finding)
    again = run_csv(rt, "back-office", export("back-office"))
    assert again["findings_opened"] == 0
    assert again["findings_resolved"] == 0
    assert again["created"] == 0
    assert count(rt, Finding) == findings_before == 4
    assert {k: v["key"] for k, v in open_findings(rt).items()} == first

    # Put things right: bob is granted db-admin, ghost's account is removed, dave
    # gets the group, carol's account is disabled.
    with rt.work(ADMIN) as ctx:
        grants.grant_role(ctx, w.people["bob"], w.dba_role, "on call DBA")
    fixed = [
        "{s},alice,alice@aurora.example,E1,true,trading-ops",
        "{s},bob,bob@aurora.example,E2,true,dba-admins;wiki",
        "{s},carol,carol@aurora.example,E3,false,wiki",
        "{s},dave,dave@aurora.example,E4,true,Trading-Ops",
        "{s},esmith,e.smith@legacy.example,E5,true,wiki",
        "{s},frank,frank@aurora.example,E6,false,trading-ops",
    ]
    report = run_csv(rt, "back-office", export("back-office", fixed))
    assert report["findings_resolved"] == 4
    assert report["deactivated"] == 1  # ghost, gone from the export
    assert open_findings(rt) == {}
    with rt.session() as s:
        resolved = list(s.scalars(select(Finding).where(Finding.status == FindingStatus.RESOLVED.value)))
        ghost = s.scalars(select(TargetAccount).where(TargetAccount.account_name == "ghost")).one()
        assert ghost.active is False
    assert len(resolved) == 4
    # A problem that comes back is a new finding.
    report = run_csv(rt, "back-office", export("back-office"))
    assert ("orphan_account", "ghost") in open_findings(rt)
    # ghost again, carol's account live again, dave's grant no longer in the system.
    assert report["findings_opened"] == 3


def test_systems_do_not_close_each_others_findings(rt: Runtime, clock: FrozenClock) -> None:
    build_world(rt, clock, "back-office")
    run_csv(rt, "back-office", export("back-office"))
    # An empty-of-problems run of another system, whose name starts like this one's.
    report = run_csv(rt, "back-office:2", export("back-office:2", ["{s},alice,alice@aurora.example,E1,true,"]))
    assert report["ok"]
    assert report["findings_resolved"] == 0
    assert set(open_findings(rt)) == EXPECTED


def test_account_that_disappears_is_kept_inactive(rt: Runtime, clock: FrozenClock) -> None:
    build_world(rt, clock, "back-office")
    run_csv(rt, "back-office", export("back-office"))
    with rt.session() as s:
        first_seen = s.scalars(select(TargetAccount.first_seen_at).where(TargetAccount.account_name == "alice")).one()
    clock.advance(timedelta(days=1))
    run_csv(rt, "back-office", export("back-office", [r for r in ROWS if ",alice," not in r]))
    with rt.session() as s:
        alice = s.scalars(select(TargetAccount).where(TargetAccount.account_name == "alice")).one()
        assert alice.active is False
        assert alice.first_seen_at == first_seen
    # And seen again: live, first_seen kept, last_seen moved.
    clock.advance(timedelta(days=1))
    run_csv(rt, "back-office", export("back-office"))
    with rt.session() as s:
        alice = s.scalars(select(TargetAccount).where(TargetAccount.account_name == "alice")).one()
        assert alice.active is True
        assert alice.first_seen_at == first_seen
        assert alice.last_seen_at.replace(tzinfo=None) == clock.now().replace(tzinfo=None)


def test_young_grant_is_not_yet_expected(rt: Runtime, clock: FrozenClock) -> None:
    w = build_world(rt, clock, "back-office")
    with rt.work(ADMIN) as ctx:
        grants.grant_role(ctx, w.people["bob"], w.trader_role, "new trader")
    clock.advance(timedelta(hours=23))
    run_csv(rt, "back-office", export("back-office"))
    assert ("grant_not_provisioned", "bob") not in open_findings(rt)
    clock.advance(timedelta(hours=2))
    run_csv(rt, "back-office", export("back-office"))
    assert ("grant_not_provisioned", "bob") in open_findings(rt)


BAD = (
    "system,account,email,employee_id,active,groups\n"
    "back-office,alice,alice@aurora.example,E1,true,trading-ops\n"  # line 2: good
    "back-office,,bob@aurora.example,E2,true,\n"  # line 3: no account
    "back-office,carol,not-an-email,E3,true,\n"  # line 4: bad email
    "back-office,dave,dave@aurora.example,E4,perhaps,\n"  # line 5: bad active
    "other-system,erin,erin@aurora.example,E5,true,\n"  # line 6: another system
    "back-office,ALICE,a2@aurora.example,E9,true,\n"  # line 7: duplicate of line 2
    "back-office,frank,frank@aurora.example\n"  # line 8: too few cells
)


def test_bad_rows_are_reported_by_line_and_field_and_nothing_is_written(rt: Runtime, clock: FrozenClock) -> None:
    build_world(rt, clock, "back-office")
    ledger_before = count(rt, LedgerRecord)
    report = run_csv(rt, "back-office", BAD.encode())
    assert not report["ok"]
    got = {(e["line"], e["field"]) for e in report["errors"]}
    assert got == {(3, "account"), (4, "email"), (5, "active"), (6, "system"), (7, "account"), (8, "row")}
    assert "line 2" in next(e["message"] for e in report["errors"] if e["line"] == 7)
    assert count(rt, TargetAccount) == 0
    assert count(rt, Finding) == 0
    assert count(rt, LedgerRecord) == ledger_before


@pytest.mark.parametrize(
    ("data", "field", "line"),
    [
        (b"system,account,email,employee_id,active\nx,a,,,true\n", "header", 1),  # no groups column
        (b"system,account,mail,employee_id,active,groups\nx,a,,,true,\n", "header", 1),  # unknown column
        (b"system,account,email,employee_id,active,groups\n", "file", 1),  # no accounts
        (b"system,account,email,employee_id,active,groups\nback-office,j\xe9r\xf4me,,,true,\n", "file", 2),
        (b"", "file", 1),
    ],
)
def test_unreadable_files_are_refused(rt: Runtime, clock: FrozenClock, data: bytes, field: str, line: int) -> None:
    report = run_csv(rt, "back-office", data)
    assert not report["ok"]
    assert (line, field) in {(e.get("line"), e["field"]) for e in report["errors"]}, report["errors"]
    assert count(rt, TargetAccount) == 0


def test_reconciliation_needs_access_admin(rt: Runtime, clock: FrozenClock) -> None:
    build_world(rt, clock, "back-office")
    auditor = make_user(rt, Role.AUDITOR)
    with pytest.raises(PermissionDenied), rt.work(auditor.principal) as ctx:
        reconcile_csv(ctx, export("back-office"), "back-office")
    with pytest.raises(ValidationFailed) as exc, rt.work(ADMIN) as ctx:
        reconcile_accounts(ctx, " ", [], source={"kind": "test"})
    assert exc.value.errors[0].field == "system"
    assert count(rt, TargetAccount) == 0


def test_resolution_order_idp_then_email_then_employee_id(rt: Runtime, clock: FrozenClock) -> None:
    w = build_world(rt, clock, "back-office")
    rows = [
        # employee id says alice, email says bob: email wins.
        "{s},x1,bob@aurora.example,E1,true,",
        # idp_id column names erin; the email is dave's: the IdP id wins.
        "{s},x2,dave@aurora.example,E4,true,",
    ]
    data = (
        "system,account,email,employee_id,active,groups,idp_id\n"
        + rows[0].format(s="back-office")
        + ",\n"
        + rows[1].format(s="back-office")
        + ",idp-erin\n"
    ).encode()
    report = run_csv(rt, "back-office", data)
    assert report["ok"], report["errors"]
    with rt.session() as s:
        by_name = {a.account_name: a.person_id for a in s.scalars(select(TargetAccount))}
    assert by_name == {"x1": w.people["bob"], "x2": w.people["erin"]}


def test_records_of_another_system_or_twice_the_same_account_are_refused(rt: Runtime, clock: FrozenClock) -> None:
    twice = [AccountRecord("back-office", "alice"), AccountRecord("back-office", "Alice")]
    other = [AccountRecord("hr", "bob")]
    for records, field in ((twice, "account"), (other, "system")):
        with pytest.raises(ValidationFailed) as exc, rt.work(ADMIN) as ctx:
            reconcile_accounts(ctx, "back-office", records, source={"kind": "test"})
        assert [e.field for e in exc.value.errors] == [field]
    assert count(rt, TargetAccount) == 0


def test_an_orphan_in_no_mapped_group_is_owned_by_the_security_officer(rt: Runtime, clock: FrozenClock) -> None:
    """Every finding has an owner: an account that is nobody's, in no group we know, goes to the security officer."""
    from portcullis.core.permissions import Role
    from tests.factories import make_user

    w = build_world(rt, clock, "hr-app")
    officer = make_user(rt, Role.SECURITY_OFFICER)
    with rt.work(ADMIN) as ctx:
        catalogue.link_user_to_person(ctx, officer.user.id, w.people["mike"])
    run_csv(rt, "hr-app", export("hr-app", ["{s},stray,stray@nowhere.example,,true,wiki"]))
    found = open_findings(rt)
    assert found[("orphan_account", "stray")]["owner_id"] == w.people["mike"]
