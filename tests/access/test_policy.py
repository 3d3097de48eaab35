"""Policy checks, one by one, and the daily pass that turns them into findings and closes them again."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from portcullis.access import catalogue, policy
from portcullis.access.models import Entitlement
from portcullis.access.policy import Check
from portcullis.access.schemas import AccessRoleIn, EntitlementIn, SodRuleIn
from portcullis.core.clock import FrozenClock
from portcullis.core.errors import PermissionDenied
from portcullis.core.runtime import Runtime
from portcullis.inventory.models import Person
from portcullis.scheduler import run_once
from tests.access.workflow_world import SYSTEM, World, build_world, records
from tests.conftest import START


@pytest.fixture
def w(rt: Runtime) -> World:
    return build_world(rt)


def _checks(w: World, name: str, ent: str, at: object = START, **kw: object) -> list[Check]:
    with w.rt.session() as s:
        person = s.get(Person, w.people[name])
        entitlement = s.get(Entitlement, w.ents[ent])
        assert person is not None
        assert entitlement is not None
        return policy.checks_for(s, person, entitlement, at, **kw)  # type: ignore[arg-type]


def _approved(w: World, subject: str, ent: str, **kw: object) -> int:
    rid = w.ask("max" if subject != "max" else "ana", subject, ent, **kw)
    w.decide({"server-room": "zoe", "app-read": "olga"}.get(ent, "sofia"), rid)
    if ent == "db-admin":
        w.decide("olga", rid)
    [g] = [g for g in w.grants(subject) if g.request_id == rid]
    return g.id


def _edit_entitlement(w: World, key: str, **changes: object) -> None:
    with w.rt.work(SYSTEM) as ctx:
        view = catalogue.entitlement_view(catalogue.get_entitlement(ctx, w.ents[key]))
        fields = {k: view[k] for k in EntitlementIn.model_fields}
        fields.update(changes)
        catalogue.update_entitlement(ctx, w.ents[key], EntitlementIn(**fields))


# --- single checks ----------------------------------------------------------------------


def test_blocking_set_is_as_documented() -> None:
    assert {"person_inactive", "duration_exceeded", "sod_conflict", "mfa_missing", "scope_missing"} == policy.BLOCKING
    assert set(policy.CODES) - policy.BLOCKING == {"training_missing", "training_lapsed"}


def test_training_missing_then_current_then_lapsed(w: World) -> None:
    assert _checks(w, "ana", "app-read") == [
        Check("training_missing", False, "training not completed: SEC-101 (required for app-read)")
    ]
    w.train("ana", "SEC-101", START - timedelta(days=300), START + timedelta(days=65))
    assert _checks(w, "ana", "app-read") == []
    assert _checks(w, "ana", "app-read", at=START + timedelta(days=65)) == [
        Check("training_lapsed", False, "training lapsed: SEC-101 (required for app-read)")
    ]
    # a course completed only later does not count at an earlier time
    assert _checks(w, "ana", "app-read", at=START - timedelta(days=301))[0].code == "training_missing"


def test_mfa_missing_for_privileged_and_remote_admin(w: World) -> None:
    [c] = _checks(w, "ben", "db-admin")
    assert c == Check("mfa_missing", True, "MFA is not enrolled, and privileged access to db-admin requires it")
    assert _checks(w, "ana", "db-admin") == []  # enrolled
    _edit_entitlement(w, "pay-initiate", remote_admin=True)
    [c2] = _checks(w, "ben", "pay-initiate")
    assert (c2.code, "remote-administration" in c2.reason) == ("mfa_missing", True)


def test_service_account_needs_a_scoped_entitlement(w: World) -> None:
    """§21 last sentence: an application's access is the minimum the service needs, and says what that is."""
    w.update_person("ben", kind="service_account")
    [c] = _checks(w, "ben", "server-room")
    assert c == Check(
        "scope_missing", True, "server-room states no scope, and a service account holds only scoped access"
    )
    assert _checks(w, "ana", "server-room") == []  # people are not asked for a scope
    _edit_entitlement(w, "server-room", scope="read the rack inventory API only")
    assert _checks(w, "ben", "server-room") == []


def test_person_inactive(w: World) -> None:
    w.update_person("ben", status="leaver", end_date=date(2026, 11, 1))
    assert _checks(w, "ben", "server-room") == [
        Check("person_inactive", True, "the person is a leaver and may hold no access")
    ]
    w.update_person("max", status="suspended")
    assert [c.code for c in _checks(w, "max", "server-room")] == ["person_inactive"]
    w.update_person("max", status="joiner")
    assert _checks(w, "max", "server-room") == []


def test_duration_above_the_maximum(w: World) -> None:
    assert _checks(w, "ana", "server-room", duration_days=7) == []
    assert _checks(w, "ana", "server-room", duration_days=8) == [
        Check("duration_exceeded", True, "8 days is above the maximum of 7 days for server-room")
    ]
    assert _checks(w, "ana", "pay-initiate", duration_days=3650) == []  # no maximum set


def test_sod_against_held_grants_extras_and_role_sides(w: World) -> None:
    assert _checks(w, "ana", "pay-approve") == []
    [c] = _checks(w, "ana", "pay-approve", extra_entitlement_ids=[w.ents["pay-initiate"]])
    assert c == Check(
        "sod_conflict",
        True,
        "separation of duties (four eyes on payments): pay-approve may not be held with pay-initiate",
    )
    _approved(w, "ana", "pay-initiate")
    assert [c.code for c in _checks(w, "ana", "pay-approve")] == ["sod_conflict"]
    assert _checks(w, "ben", "pay-approve") == []
    # a role on one side stands for each of its entitlements
    with w.rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(
            ctx, AccessRoleIn(key="room", name="Room", entitlement_ids=[w.ents["server-room"]])
        )
        catalogue.create_sod_rule(
            ctx,
            SodRuleIn(name="no room for approvers", left_role_id=role.id, right_entitlement_id=w.ents["pay-approve"]),
        )
    _approved(w, "ben", "server-room")
    [c3] = _checks(w, "ben", "pay-approve")
    assert c3.reason == "separation of duties (no room for approvers): pay-approve may not be held with server-room"


# --- the daily pass -----------------------------------------------------------------------


def _pass(w: World) -> dict[str, object]:
    with w.rt.work(SYSTEM) as ctx:
        return policy.daily_pass(ctx)


def test_daily_pass_opens_and_closes_findings(w: World, clock: FrozenClock) -> None:
    app = _approved(w, "ana", "app-read")  # SEC-101 missing: a finding from the grant itself
    room = _approved(w, "ana", "server-room")
    db = _approved(w, "ana", "db-admin", duration_days=30)
    assert set(w.open_findings()) == {f"training_missing:grant:{app}"}
    first = _pass(w)
    assert (first["grants"], first["opened"], first["resolved"], first["findings"]) == (3, 0, 0, 1)

    # training done: the finding closes; then it lapses: a new one opens
    w.train("ana", "SEC-101", START, START + timedelta(days=2))
    assert (_pass(w)["resolved"], w.open_findings()) == (1, {})
    clock.advance(timedelta(days=2))
    assert _pass(w)["opened"] == 1
    assert set(w.open_findings()) == {f"training_lapsed:grant:{app}"}

    # MFA withdrawn at the IdP: privileged access is now a high finding for the asset owner
    w.update_person("ana", mfa_enrolled=False)
    # the maximum shortened below a grant already made
    _edit_entitlement(w, "server-room", max_duration_days=3)
    # a separation-of-duties rule made after both grants
    with w.rt.work(SYSTEM) as ctx:
        catalogue.create_sod_rule(
            ctx,
            SodRuleIn(
                name="room or app", left_entitlement_id=w.ents["server-room"], right_entitlement_id=w.ents["app-read"]
            ),
        )
    result = _pass(w)
    found = w.open_findings()
    assert set(found) == {
        f"training_lapsed:grant:{app}",
        f"mfa_missing:grant:{db}",
        f"duration_exceeded:grant:{room}",
        f"sod_conflict:grant:{room}",
        f"sod_conflict:grant:{app}",
    }
    assert result["opened"] == 4
    assert result["by_code"] == {"duration_exceeded": 1, "mfa_missing": 1, "sod_conflict": 2, "training_lapsed": 1}
    mfa = found[f"mfa_missing:grant:{db}"]
    assert (mfa.severity, mfa.owner_id, mfa.person_id, mfa.grant_id) == ("high", w.people["olga"], w.people["ana"], db)
    assert mfa.due_on == clock.now() + timedelta(days=14)
    assert found[f"duration_exceeded:grant:{room}"].owner_id == w.people["zoe"]
    assert found[f"sod_conflict:grant:{room}"].severity == "medium"

    # a second pass changes nothing and records nothing
    before = len(records(w.rt, "finding.opened")) + len(records(w.rt, "finding.resolved"))
    again = _pass(w)
    assert (again["opened"], again["resolved"]) == (0, 0)
    assert len(records(w.rt, "finding.opened")) + len(records(w.rt, "finding.resolved")) == before

    # access ended: every finding on it closes at the next pass
    from portcullis.access import grants

    with w.rt.work(w.p("sofia")) as ctx:
        grants.revoke_grant(ctx, room, "moved desks")
        grants.revoke_grant(ctx, db, "not needed")
    assert _pass(w)["resolved"] == 4
    assert set(w.open_findings()) == {f"training_lapsed:grant:{app}"}


def test_daily_pass_keeps_listener_findings_and_closes_them_when_active_again(w: World) -> None:
    room = _approved(w, "ana", "server-room")
    w.update_person("ana", status="suspended")
    [f] = w.open_findings().values()
    assert _pass(w)["opened"] == 0  # the same key: not a duplicate
    assert [x.id for x in w.open_findings().values()] == [f.id]
    w.update_person("ana", status="active")
    assert _pass(w)["resolved"] == 1
    assert w.open_findings() == {}
    assert w.grants("ana")[0].id == room


def test_daily_pass_leaves_mover_reviews_alone(w: World) -> None:
    _approved(w, "ana", "server-room")
    w.update_person("ana", manager_id=w.people["olga"])
    assert _pass(w)["resolved"] == 0
    assert [k.split(":")[0] for k in w.open_findings()] == ["mover_review"]


def test_daily_pass_runs_from_the_scheduler_and_needs_admin(w: World) -> None:
    app = _approved(w, "ana", "app-read")
    w.train("ana", "SEC-101", START - timedelta(days=1))
    result = run_once(w.rt)["access.daily_pass"]
    assert result["ok"] is True
    assert result["result"]["resolved"] == 1
    assert result["result"]["grants"] == 1
    assert f"training_missing:grant:{app}" not in w.open_findings()
    with w.rt.work(w.p("olga")) as ctx, pytest.raises(PermissionDenied):
        policy.daily_pass(ctx)
