"""Grants: standing grants from roles, revocation, expiry, and joiners / movers / leavers."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portcullis.access import catalogue, grants, requests
from portcullis.access.models import AccessRequest, AccessRole, Finding, RoleMembership
from portcullis.access.schemas import AccessRoleIn
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.inventory.csvio import run_import
from portcullis.scheduler import run_once
from tests.access.workflow_world import SYSTEM, World, build_world, records
from tests.conftest import START


@pytest.fixture
def w(rt: Runtime) -> World:
    return build_world(rt)


def _role(w: World, key: str, *ents: str, **kw: object) -> int:
    with w.rt.work(SYSTEM) as ctx:
        return catalogue.create_role(
            ctx,
            AccessRoleIn(key=key, name=key.title(), entitlement_ids=[w.ents[e] for e in ents], **kw),
        ).id


def _grant_role(
    w: World, who: Principal, person: str, role_id: int, reason: str = "joins the on-call team"
) -> list[int]:
    with w.rt.work(who) as ctx:
        return [g.id for g in grants.grant_role(ctx, w.people[person], role_id, reason)]


def _approved(w: World, subject: str, ent: str, **kw: object) -> int:
    """An approved request's grant id (server-room: its owner zoe approves; pay-*: sofia)."""
    rid = w.ask("max" if subject != "max" else "ana", subject, ent, **kw)
    w.decide("zoe" if ent == "server-room" else "sofia", rid)
    [g] = [g for g in w.grants(subject) if g.request_id == rid]
    return g.id


# --- roles ----------------------------------------------------------------------------


def test_grant_role_makes_standing_grants(w: World) -> None:
    role = _role(w, "ops", "server-room", "pay-initiate")
    ids = _grant_role(w, w.p("sofia"), "ana", role)
    held = w.grants("ana")
    assert [g.id for g in held] == ids
    assert {(g.kind, g.role_id, g.expires_at, g.status) for g in held} == {("standing", role, None, "active")}
    assert sorted(g.entitlement_id for g in held) == sorted([w.ents["server-room"], w.ents["pay-initiate"]])
    created = records(w.rt, "grant.created")
    assert [r["reason"] for r in created] == ["joins the on-call team"] * 2
    assert all(r["actor"]["name"] == "sofia@kestrel.example.eu" for r in created)
    with pytest.raises(Conflict, match="already holds role ops"):
        _grant_role(w, w.p("sofia"), "ana", role)


def test_grant_role_refuses_ineligible_or_failing_checks(w: World) -> None:
    role = _role(w, "sec", "server-room", departments=["Security"], required_training=["SEC-900"])
    with pytest.raises(ValidationFailed) as exc:
        _grant_role(w, w.p("sofia"), "ana", role)
    messages = [(e.field, e.message) for e in exc.value.errors]
    assert ("role_id", "department Engineering is not one of: Security") in messages
    assert ("role_id", "training SEC-900 missing or lapsed") in messages
    priv = _role(w, "dba", "db-admin")
    with pytest.raises(ValidationFailed) as exc2:
        _grant_role(w, w.p("sofia"), "ben", priv)  # ben has no MFA
    assert exc2.value.errors[0].field == "subject_id"
    assert "MFA is not enrolled" in exc2.value.errors[0].message
    assert w.grants("ana") == []
    assert w.grants("ben") == []
    initiate = _approved(w, "ana", "pay-initiate")
    approvers = _role(w, "pay", "pay-approve")
    with pytest.raises(ValidationFailed) as exc3:
        _grant_role(w, w.p("sofia"), "ana", approvers)
    assert {e.field for e in exc3.value.errors} == {"role_id"}
    assert "four eyes on payments" in exc3.value.errors[0].message
    assert [g.id for g in w.grants("ana")] == [initiate]


def test_grant_role_needs_admin_and_a_reason(w: World) -> None:
    role = _role(w, "ops", "server-room")
    with pytest.raises(PermissionDenied):
        _grant_role(w, w.p("max"), "ana", role)
    with pytest.raises(ValidationFailed) as exc:
        _grant_role(w, w.p("sofia"), "ana", role, reason="  ")
    assert [e.field for e in exc.value.errors] == ["reason"]
    with pytest.raises(ValidationFailed) as exc2, w.rt.work(w.p("sofia")) as ctx:
        grants.grant_role(ctx, 999_999, 999_999, "x")
    assert {e.field for e in exc2.value.errors} == {"person_id", "role_id"}


# --- role memberships --------------------------------------------------------------------


def _memberships(w: World, person: str) -> list[RoleMembership]:
    with w.rt.session() as s:
        rows = s.scalars(
            select(RoleMembership).where(RoleMembership.person_id == w.people[person]).order_by(RoleMembership.id)
        )
        return list(rows)


def test_grant_role_opens_one_membership_audited(w: World) -> None:
    role = _role(w, "ops", "server-room")
    _grant_role(w, w.p("sofia"), "ana", role)
    [m] = _memberships(w, "ana")
    assert (m.role_id, m.source, m.since, m.ended_at) == (role, "manual", START, None)
    [rec] = records(w.rt, "role_membership.started")
    assert (rec["object_id"], rec["reason"], rec["actor"]["name"]) == (
        str(m.id),
        "joins the on-call team",
        "sofia@kestrel.example.eu",
    )


def test_a_role_without_entitlements_is_a_membership_alone(w: World) -> None:
    role = _role(w, "readers")
    assert _grant_role(w, w.p("sofia"), "ben", role) == []
    assert [(m.role_id, m.ended_at) for m in _memberships(w, "ben")] == [(role, None)]
    assert w.grants("ben") == []
    with pytest.raises(Conflict, match="already holds role readers"):
        _grant_role(w, w.p("sofia"), "ben", role)
    assert len(_memberships(w, "ben")) == 1


def test_granting_again_issues_only_what_the_role_gained(w: World) -> None:
    role = _role(w, "ops", "server-room")
    [first] = _grant_role(w, w.p("sofia"), "ana", role)
    with w.rt.work(SYSTEM) as ctx:
        catalogue.update_role(
            ctx, role, AccessRoleIn(key="ops", name="Ops", entitlement_ids=[w.ents["server-room"], w.ents["app-read"]])
        )
    [added] = _grant_role(w, w.p("sofia"), "ana", role)
    held = {g.id: g.entitlement_id for g in w.grants("ana")}
    assert held == {first: w.ents["server-room"], added: w.ents["app-read"]}
    assert len(_memberships(w, "ana")) == 1


def test_end_role_revokes_that_roles_standing_grants_only(w: World, clock: FrozenClock) -> None:
    ops = _role(w, "ops", "server-room", "pay-initiate")
    readers = _role(w, "readers", "app-read")
    ops_grants = _grant_role(w, w.p("sofia"), "ana", ops)
    [reader_grant] = _grant_role(w, w.p("sofia"), "ana", readers)
    adhoc = _approved(w, "ana", "server-room")
    clock.advance(timedelta(hours=2))
    with w.rt.work(w.p("sofia")) as ctx:
        grants.end_role(ctx, w.people["ana"], ops, "left the on-call team")
    by_id = {g.id: g for g in w.grants("ana")}
    assert {(by_id[i].status, by_id[i].end_reason, by_id[i].ended_at) for i in ops_grants} == {
        ("revoked", "left the on-call team", START + timedelta(hours=2))
    }
    assert (by_id[reader_grant].status, by_id[adhoc].status) == ("active", "active")
    ended = {m.role_id: m for m in _memberships(w, "ana")}
    assert (ended[ops].ended_at, ended[ops].end_reason) == (START + timedelta(hours=2), "left the on-call team")
    assert ended[readers].ended_at is None
    assert [r["object_id"] for r in records(w.rt, "role_membership.ended")] == [str(ended[ops].id)]
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(NotFound, match="holds no role"):
        grants.end_role(ctx, w.people["ana"], ops, "again")
    # the role can be held again later: a new membership, new grants
    again = _grant_role(w, w.p("sofia"), "ana", ops)
    assert len(again) == 2
    assert not set(again) & set(ops_grants)


def test_end_role_needs_admin_and_a_reason(w: World) -> None:
    role = _role(w, "ops", "server-room")
    _grant_role(w, w.p("sofia"), "ana", role)
    with w.rt.work(w.p("max")) as ctx, pytest.raises(PermissionDenied):
        grants.end_role(ctx, w.people["ana"], role, "x")
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(ValidationFailed) as exc:
        grants.end_role(ctx, w.people["ana"], role, " ")
    assert [e.field for e in exc.value.errors] == ["reason"]
    assert _memberships(w, "ana")[0].ended_at is None
    assert w.grants("ana")[0].status == "active"


def test_a_leaver_loses_memberships_with_grants(w: World) -> None:
    ops = _role(w, "ops", "server-room")
    bare = _role(w, "readers")
    _grant_role(w, w.p("sofia"), "ana", ops)
    _grant_role(w, w.p("sofia"), "ana", bare)
    w.update_person("ana", status="leaver", end_date=date(2026, 11, 24))
    assert {(m.role_id, m.end_reason) for m in _memberships(w, "ana")} == {(ops, "leaver"), (bare, "leaver")}
    assert all(m.ended_at == START for m in _memberships(w, "ana"))
    assert [(g.status, g.end_reason) for g in w.grants("ana")] == [("revoked", "leaver")]
    # a leaver cannot be given a role back, not even a bare membership
    with pytest.raises(ValidationFailed) as exc:
        _grant_role(w, w.p("sofia"), "ana", bare)
    assert exc.value.errors[0].message == "the person is a leaver and may hold no access"
    assert [m.ended_at is None for m in _memberships(w, "ana")] == [False, False]


def test_retired_role_ends_every_membership_and_refuses_new_grants(w: World) -> None:
    role = _role(w, "ops", "server-room")
    _grant_role(w, w.p("sofia"), "ana", role)
    _grant_role(w, w.p("sofia"), "ben", role)
    with w.rt.work(w.p("sofia")) as ctx:
        grants.retire_role(ctx, role, "replaced by site roles")
    with w.rt.session() as s:
        assert s.get(AccessRole, role).retired_at == START  # type: ignore[union-attr]
    for who in ("ana", "ben"):
        assert [m.end_reason for m in _memberships(w, who)] == ["replaced by site roles"]
        assert [g.status for g in w.grants(who)] == ["revoked"]
    assert [r["object_id"] for r in records(w.rt, "role.retired")] == [str(role)]
    with pytest.raises(ValidationFailed, match="cannot be granted") as exc:
        _grant_role(w, w.p("sofia"), "ana", role)
    assert exc.value.errors[0].message == "role ops is retired and may be granted no more"
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="already retired"):
        grants.retire_role(ctx, role, "again")


def test_the_database_allows_one_open_membership_per_person_and_role(w: World) -> None:
    role = _role(w, "readers")
    _grant_role(w, w.p("sofia"), "ana", role)
    with pytest.raises(IntegrityError), w.rt.session() as s:
        s.add(RoleMembership(person_id=w.people["ana"], role_id=role, source="manual", since=START))
        s.flush()
    # an ended membership does not count
    with w.rt.session() as s:
        s.add(
            RoleMembership(
                person_id=w.people["ana"], role_id=role, source="manual", since=START, ended_at=START, end_reason="x"
            )
        )
        s.commit()
    assert len(_memberships(w, "ana")) == 2


# --- revocation and expiry --------------------------------------------------------------


def test_revoke_takes_effect_at_once_with_reason_and_who(w: World, clock: FrozenClock) -> None:
    gid = _approved(w, "ana", "server-room")
    clock.advance(timedelta(hours=3))
    with w.rt.work(w.p("sofia")) as ctx:
        g = grants.revoke_grant(ctx, gid, "badge lost")
        assert (g.status, g.end_reason, g.ended_at) == ("revoked", "badge lost", START + timedelta(hours=3))
    with w.rt.work(w.p("ana")) as ctx:
        assert grants.my_access(ctx) == []
    [rec] = records(w.rt, "grant.revoked")
    assert rec["reason"] == "badge lost"
    assert rec["actor"]["name"] == "sofia@kestrel.example.eu"
    assert rec["changes"]["status"] == ["active", "revoked"]
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(Conflict, match="already revoked"):
        grants.revoke_grant(ctx, gid, "again")


def test_revoke_refusals(w: World) -> None:
    gid = _approved(w, "ana", "server-room")
    with w.rt.work(w.p("zoe")) as ctx, pytest.raises(PermissionDenied):
        grants.revoke_grant(ctx, gid, "owner may not revoke here")
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(ValidationFailed) as exc:
        grants.revoke_grant(ctx, gid, "")
    assert exc.value.errors[0].field == "reason"
    with w.rt.work(w.p("sofia")) as ctx, pytest.raises(NotFound):
        grants.revoke_grant(ctx, 999_999, "x")
    assert w.grants("ana")[0].status == "active"


def test_grants_expire_by_themselves(w: World, clock: FrozenClock) -> None:
    short = _approved(w, "ana", "server-room", duration_days=2)
    longer = _approved(w, "ben", "server-room", duration_days=5)
    clock.advance(timedelta(days=2))
    with w.rt.work(w.p("ana")) as ctx:
        assert grants.my_access(ctx) == []  # no longer in force, even before the job runs
    results = run_once(w.rt)
    assert results["access.expire_grants"] == {"ok": True, "result": 1}
    by_id = {g.id: g for g in w.grants("ana") + w.grants("ben")}
    assert (by_id[short].status, by_id[short].ended_at) == ("expired", START + timedelta(days=2))
    assert by_id[longer].status == "active"
    assert [r["object_id"] for r in records(w.rt, "grant.expired")] == [str(short)]
    clock.advance(timedelta(days=3))
    with w.rt.work(SYSTEM) as ctx:
        assert grants.expire_grants(ctx) == 1


# --- reading ------------------------------------------------------------------------------


def test_my_access_and_listing_filters(w: World) -> None:
    room = _approved(w, "ana", "server-room")
    pay = _approved(w, "ana", "pay-initiate")
    ben_room = _approved(w, "ben", "server-room")
    with w.rt.work(w.p("ana")) as ctx:
        assert sorted(g.id for g in grants.my_access(ctx)) == sorted([room, pay])
        with pytest.raises(PermissionDenied):
            grants.list_grants(ctx)
    with w.rt.work(w.p("max")) as ctx:
        assert grants.my_access(ctx) == []

        def ids(**kw: object) -> list[int]:
            return [g.id for g in grants.list_grants(ctx, **kw)[0]]  # type: ignore[arg-type]

        assert ids(person_id=w.people["ana"]) == sorted([room, pay])
        assert ids(zone_id=w.zone_id) == sorted([room, ben_room])
        assert ids(asset_id=w.asset_id) == [pay]
        assert ids(entitlement_id=w.ents["pay-initiate"]) == [pay]
        assert ids(status="revoked") == []
        view = grants.grant_view(grants.get_grant(ctx, room))
    assert (view["person_email"], view["entitlement_key"], view["zone_id"]) == (
        "ana@kestrel.example.eu",
        "server-room",
        w.zone_id,
    )


# --- joiners, movers, leavers -------------------------------------------------------------


def test_leaver_loses_every_grant_at_once(w: World, clock: FrozenClock) -> None:
    room = _approved(w, "ana", "server-room")
    pay = _approved(w, "ana", "pay-initiate")
    pending = w.ask("max", "ana", "app-read")
    untouched = _approved(w, "ben", "server-room")
    clock.advance(timedelta(hours=1))
    w.update_person("ana", status="leaver", end_date=date(2026, 11, 24))
    held = {g.id: g for g in w.grants("ana")}
    assert {(held[i].status, held[i].end_reason, held[i].ended_at) for i in (room, pay)} == {
        ("revoked", "leaver", START + timedelta(hours=1))
    }
    assert w.grants("ben")[0].id == untouched
    assert w.grants("ben")[0].status == "active"
    with w.rt.session() as s:
        assert s.get(AccessRequest, pending).status == "cancelled"  # type: ignore[union-attr]
    revoked = records(w.rt, "grant.revoked")
    assert sorted(int(r["object_id"]) for r in revoked) == sorted([room, pay])
    assert {r["reason"] for r in revoked} == {"leaver"}


def test_leaver_from_a_people_csv_import(w: World) -> None:
    room = _approved(w, "ana", "server-room")
    csv = (
        b"external_id,email,full_name,department,manager_email,status,start_date,end_date,mfa_enrolled\n"
        b"HR-ana,ana@kestrel.example.eu,Ana,Engineering,max@kestrel.example.eu,leaver,2024-01-01,2026-11-23,true\n"
    )
    with w.rt.work(w.p("sofia")) as ctx:
        report = run_import(ctx, "people", csv, dry_run=False)
    assert (report.committed, report.updated) == (True, 1), report.as_dict()
    [g] = w.grants("ana")
    assert (g.id, g.status, g.end_reason) == (room, "revoked", "leaver")


def test_a_failed_import_revokes_nothing(w: World) -> None:
    _approved(w, "ana", "server-room")
    csv = (
        b"external_id,email,full_name,status,end_date\n"
        b"HR-ana,ana@kestrel.example.eu,Ana,leaver,2026-11-23\n"
        b"HR-new,not-an-email,New,active,\n"
    )
    with w.rt.work(w.p("sofia")) as ctx:
        report = run_import(ctx, "people", csv, dry_run=False)
    assert not report.ok
    assert w.grants("ana")[0].status == "active"


def test_suspended_person_raises_a_finding_per_grant(w: World) -> None:
    room = _approved(w, "ana", "server-room")
    pay = _approved(w, "ana", "pay-initiate")
    w.update_person("ana", status="suspended")
    found = w.open_findings()
    assert set(found) == {f"person_inactive:grant:{room}", f"person_inactive:grant:{pay}"}
    f = found[f"person_inactive:grant:{room}"]
    assert (f.kind, f.severity, f.owner_id, f.person_id) == (
        "person_inactive",
        "high",
        w.people["zoe"],
        w.people["ana"],
    )
    assert f.due_on == START + timedelta(days=14)
    assert [g.status for g in w.grants("ana")] == ["active", "active"]  # suspended: flagged, not withdrawn


def test_mover_grants_go_up_for_review_by_the_new_manager(w: World) -> None:
    room = _approved(w, "ana", "server-room")
    w.update_person("ana", manager_id=w.people["olga"])
    found = w.open_findings()
    assert set(found) == {f"mover_review:grant:{room}"}
    f = found[f"mover_review:grant:{room}"]
    assert (f.kind, f.owner_id, f.grant_id) == ("mover_review", w.people["olga"], room)
    assert "manager max@kestrel.example.eu -> olga@kestrel.example.eu" in f.detail
    # a second move while the review is open does not pile up another finding
    w.update_person("ana", department="Operations")
    assert len(w.open_findings()) == 1


def test_mover_without_manager_is_reviewed_by_a_security_officer(w: World) -> None:
    _approved(w, "ana", "server-room")
    w.update_person("ana", department="Finance", manager_id=None)
    [f] = w.open_findings().values()
    assert f.owner_id == w.people["sofia"]
    assert "department Engineering -> Finance" in f.detail


def test_changes_that_are_not_moves_raise_nothing(w: World) -> None:
    _approved(w, "ana", "server-room")
    w.update_person("ana", job_title="Senior engineer")
    w.update_person("ben", department="Finance")  # a mover, but with no grant
    assert w.open_findings() == {}
    with w.rt.session() as s:
        assert list(s.scalars(select(Finding))) == []


def test_mark_used_and_provisioned(w: World, clock: FrozenClock) -> None:
    gid = _approved(w, "ana", "server-room")
    t1 = START + timedelta(hours=1)
    with w.rt.session() as s:
        grants.mark_provisioned(s, gid, t1)
        grants.mark_used(s, gid, t1)
    with w.rt.session() as s:
        grants.mark_provisioned(s, gid, t1 + timedelta(hours=1))  # first sighting counts
        grants.mark_used(s, gid, t1 - timedelta(minutes=5))  # an older event does not go back in time
    [g] = w.grants("ana")
    assert (g.provisioned_at, g.last_used_at) == (t1, t1)


def test_staff_cannot_revoke_or_expire(w: World) -> None:
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(PermissionDenied):
        grants.expire_grants(ctx)
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(PermissionDenied):
        requests.expire_requests(ctx)
