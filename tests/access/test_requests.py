"""Requests and approvals: who may ask, who may approve, how many, and what a decision makes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portcullis.access import catalogue, requests
from portcullis.access.models import AccessRequest, Approval, Grant
from portcullis.access.schemas import AccessRoleIn, DecisionIn, RequestIn
from portcullis.core.clock import FrozenClock
from portcullis.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portcullis.core.runtime import Runtime
from tests.access.workflow_world import JUSTIFICATION, SYSTEM, World, actions, build_world, records
from tests.conftest import START


@pytest.fixture
def w(rt: Runtime) -> World:
    return build_world(rt)


def _request(rt: Runtime, request_id: int) -> AccessRequest:
    with rt.session() as s:
        r = s.get(AccessRequest, request_id)
        assert r is not None
        return r


def _count(rt: Runtime, model: type[Grant] | type[Approval]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


# --- asking ---------------------------------------------------------------------------


def test_request_fixes_approvers_deadline_and_default_duration(w: World) -> None:
    rid = w.ask("ana", "ana", "app-read")
    r = _request(w.rt, rid)
    assert r.status == "pending"
    assert r.requester_id == r.subject_id == w.people["ana"]
    assert r.duration_days == 14  # the entitlement's maximum is the default
    assert r.required_approvals == 1
    assert r.approver_kinds == ["owner", "manager"]
    assert r.decide_by == START + timedelta(days=7)
    assert actions(w.rt, "access_request") == ["request.created"]


def test_ad_hoc_default_is_thirty_days_without_a_maximum(w: World) -> None:
    r = _request(w.rt, w.ask("ana", "ana", "pay-initiate"))
    assert r.duration_days == 30


def test_privileged_access_needs_two_approvers_and_the_critical_owner(w: World) -> None:
    r = _request(w.rt, w.ask("ana", "ana", "db-admin"))
    assert r.required_approvals == 2
    assert "owner" in r.approver_kinds


def test_owner_of_a_critical_asset_cannot_be_its_only_possible_approver(w: World) -> None:
    # olga owns the critical database: her approval is required, and she may not give it to herself
    with pytest.raises(ValidationFailed) as exc:
        w.ask("olga", "olga", "db-admin", duration_days=1)
    [err] = exc.value.errors
    assert err.field == "entitlement_id"
    assert err.message.startswith("ICT asset A-DB is critical, so its owner must approve")
    with pytest.raises(ValidationFailed):
        w.ask("olga", "ana", "db-admin", duration_days=1)
    # the rule is about critical assets only
    assert _request(w.rt, w.ask("max", "olga", "app-read")).status == "pending"


def test_request_for_someone_else(w: World) -> None:
    r = _request(w.rt, w.ask("max", "ana", "server-room"))
    assert (r.requester_id, r.subject_id) == (w.people["max"], w.people["ana"])


def test_every_blocking_reason_is_listed(w: World) -> None:
    # ben is suspended and has no MFA for privileged access: both reasons at once
    w.update_person("ben", status="suspended")
    with pytest.raises(ValidationFailed) as exc:
        w.ask("max", "ben", "db-admin")
    fields = {(e.field, e.message) for e in exc.value.errors}
    assert ("subject_id", "the person is a suspended and may hold no access") in fields
    assert any(f == "subject_id" and "MFA is not enrolled" in m for f, m in fields)
    with pytest.raises(ValidationFailed) as exc2:
        w.ask("ana", "ana", "server-room", duration_days=10)
    assert [(e.field, e.message) for e in exc2.value.errors] == [
        ("entitlement_id", "10 days is above the maximum of 7 days for server-room")
    ]
    assert _count(w.rt, Grant) == 0
    with w.rt.session() as s:
        assert s.scalar(select(func.count()).select_from(AccessRequest)) == 0


def test_sod_conflict_refuses_the_request(w: World) -> None:
    rid = w.ask("ana", "ana", "pay-initiate")
    w.decide("sofia", rid)
    with pytest.raises(ValidationFailed) as exc:
        w.ask("ana", "ana", "pay-approve")
    assert exc.value.errors[0].field == "entitlement_id"
    assert "four eyes on payments" in exc.value.errors[0].message
    assert "pay-initiate" in exc.value.errors[0].message


def test_unknown_or_withdrawn_entitlement_and_unknown_subject(w: World) -> None:
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(ValidationFailed) as exc:
        requests.request_access(ctx, RequestIn(subject_id=999_999, entitlement_id=999_999, justification=JUSTIFICATION))
    assert {e.field for e in exc.value.errors} == {"subject_id", "entitlement_id"}
    with w.rt.work(SYSTEM) as ctx:
        ent = catalogue.get_entitlement(ctx, w.ents["server-room"])
        view = catalogue.entitlement_view(ent)
        from portcullis.access.schemas import EntitlementIn

        fields = {k: view[k] for k in EntitlementIn.model_fields}
        catalogue.update_entitlement(ctx, ent.id, EntitlementIn(**{**fields, "active": False}))
    with pytest.raises(ValidationFailed) as exc2:
        w.ask("ana", "ana", "server-room")
    assert "not active" in exc2.value.errors[0].message


def test_a_user_linked_to_nobody_cannot_ask(rt: Runtime, w: World) -> None:
    from portcullis.core.permissions import Role
    from tests.factories import make_user

    loner = make_user(rt, Role.STAFF, email="loner@kestrel.example.eu")
    with rt.work(loner.principal) as ctx, pytest.raises(PermissionDenied, match="not linked"):
        requests.request_access(
            ctx, RequestIn(subject_id=w.people["ana"], entitlement_id=w.ents["app-read"], justification=JUSTIFICATION)
        )


def test_duplicate_pending_request_is_a_conflict(w: World) -> None:
    w.ask("ana", "ana", "app-read")
    with pytest.raises(Conflict, match="still pending"):
        w.ask("max", "ana", "app-read")


def test_training_missing_does_not_block_and_is_noted(w: World) -> None:
    w.ask("ana", "ana", "app-read")
    created = records(w.rt, "request.created")[0]
    assert created["policy_checks"] == [
        {"code": "training_missing", "reason": "training not completed: SEC-101 (required for app-read)"}
    ]


# --- deciding --------------------------------------------------------------------------


def test_nobody_approves_their_own_request_or_one_for_themselves(w: World) -> None:
    own = w.ask("max", "ben", "app-read")  # max made it: he may not approve it, although he manages ben
    with pytest.raises(PermissionDenied, match="request they made"):
        w.decide("max", own)
    for_olga = w.ask("ana", "olga", "server-room")
    with pytest.raises(PermissionDenied, match="for themselves"):
        w.decide("olga", w.ask("max", "olga", "app-read"))
    assert _request(w.rt, for_olga).status == "pending"
    assert _count(w.rt, Approval) == 0


def test_approver_must_be_eligible(w: World) -> None:
    rid = w.ask("ana", "ana", "server-room")  # owner of the zone only
    with pytest.raises(PermissionDenied, match="not an eligible approver"):
        w.decide("max", rid)  # ana's manager, but the zone's approver is its owner
    with pytest.raises(PermissionDenied, match="not an eligible approver"):
        w.decide("sofia", rid)
    assert w.decide("zoe", rid) == "approved"


def test_staff_may_not_decide(w: World) -> None:
    rid = w.ask("max", "ben", "server-room")
    with pytest.raises(PermissionDenied):
        w.decide("ana", rid)


def test_manager_approval_creates_a_time_bound_grant_from_approval(w: World, clock: FrozenClock) -> None:
    rid = w.ask("ana", "ana", "app-read", duration_days=5)
    clock.advance(timedelta(days=2))
    assert w.decide("max", rid, comment="ok") == "approved"
    [g] = w.grants("ana")
    assert g.kind == "time_bound"
    assert g.request_id == rid
    assert g.starts_at == START + timedelta(days=2)
    assert g.expires_at == START + timedelta(days=7)
    with w.rt.session() as s:
        [a] = s.scalars(select(Approval))
        assert (a.approver_id, a.acting_as, a.approve) == (w.people["max"], "manager", True)
    assert actions(w.rt, "access_request")[-2:] == ["request.decision", "request.approved"]
    assert records(w.rt, "grant.created")[0]["object_id"] == str(g.id)
    # the training that did not block the request is now a finding on the grant
    assert set(w.open_findings()) == {f"training_missing:grant:{g.id}"}


def test_privileged_needs_two_distinct_approvers_including_the_critical_owner(w: World) -> None:
    rid = w.ask("ana", "ana", "db-admin", duration_days=3)
    assert w.decide("sofia", rid) == "pending"
    with pytest.raises(Conflict, match="already decided"):
        w.decide("sofia", rid)
    # two approvals, but not the owner's: a critical asset needs its owner
    assert w.decide("sven", rid) == "pending"
    assert w.grants("ana") == []
    assert w.decide("olga", rid) == "approved"
    [g] = w.grants("ana")
    assert g.entitlement_id == w.ents["db-admin"]
    with w.rt.session() as s:
        kinds = {a.approver_id: a.acting_as for a in s.scalars(select(Approval))}
    assert kinds[w.people["olga"]] == "owner"
    assert len(records(w.rt, "request.approved")) == 1


def test_reject_ends_the_request(w: World) -> None:
    rid = w.ask("ana", "ana", "db-admin", duration_days=3)
    w.decide("sofia", rid)
    assert w.decide("olga", rid, approve=False, comment="no need") == "rejected"
    with pytest.raises(Conflict, match="already rejected"):
        w.decide("sven", rid)
    assert w.grants("ana") == []


def test_blocking_checks_run_again_at_approval(w: World) -> None:
    rid = w.ask("ana", "ana", "server-room")
    w.update_person("ana", status="suspended")
    with pytest.raises(ValidationFailed) as exc:
        w.decide("zoe", rid)
    assert exc.value.errors[0].field == "subject_id"
    assert "suspended" in exc.value.errors[0].message
    # refused as a whole: the request waits, the approval is not kept
    assert _request(w.rt, rid).status == "pending"
    assert _count(w.rt, Approval) == 0
    assert w.grants("ana") == []


def test_decision_after_the_deadline_is_refused_and_the_request_expires(w: World, clock: FrozenClock) -> None:
    rid = w.ask("ana", "ana", "server-room")
    early = w.ask("max", "ben", "server-room")
    w.decide("zoe", early)
    clock.advance(timedelta(days=7))
    with pytest.raises(Conflict, match="has expired"):
        w.decide("zoe", rid)
    with w.rt.work(SYSTEM) as ctx:
        assert requests.expire_requests(ctx) == 1
    assert _request(w.rt, rid).status == "expired"
    assert _request(w.rt, early).status == "approved"
    assert records(w.rt, "request.expired")[0]["object_id"] == str(rid)
    with w.rt.work(SYSTEM) as ctx:
        assert requests.expire_requests(ctx) == 0
    # the grant approved on day 0 runs its own 7 days from approval, not from the request's deadline
    [g] = w.grants("ben")
    assert g.expires_at == START + timedelta(days=7)


def test_decide_unknown_request(w: World) -> None:
    with pytest.raises(NotFound):
        w.decide("zoe", 999_999)


def test_role_request_grants_every_entitlement_of_the_role(w: World) -> None:
    with w.rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(
            ctx,
            AccessRoleIn(key="ops", name="Operations", entitlement_ids=[w.ents["server-room"], w.ents["pay-initiate"]]),
        )
    with w.rt.work(w.p("ana")) as ctx:
        r = requests.request_access(
            ctx, RequestIn(subject_id=w.people["ana"], role_id=role.id, justification=JUSTIFICATION)
        )
        rid = r.id
        assert r.duration_days == 7  # the shortest maximum among the role's entitlements
        assert r.approver_kinds == ["owner", "security_officer"]
    assert w.decide("sofia", rid) == "approved"
    grants = w.grants("ana")
    assert sorted(g.entitlement_id for g in grants) == sorted([w.ents["server-room"], w.ents["pay-initiate"]])
    assert {(g.request_id, g.role_id, g.kind) for g in grants} == {(rid, role.id, "time_bound")}


def test_role_request_refused_when_not_eligible(w: World) -> None:
    with w.rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(
            ctx,
            AccessRoleIn(
                key="fac", name="Facilities", departments=["Facilities"], entitlement_ids=[w.ents["server-room"]]
            ),
        )
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(ValidationFailed) as exc:
        requests.request_access(
            ctx, RequestIn(subject_id=w.people["ana"], role_id=role.id, justification=JUSTIFICATION)
        )
    assert exc.value.errors[0].field == "role_id"
    assert "Engineering" in exc.value.errors[0].message


def test_retired_role_cannot_be_requested_nor_approved(w: World) -> None:
    from portcullis.access import grants as grants_service

    with w.rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(
            ctx,
            AccessRoleIn(key="ops", name="Operations", entitlement_ids=[w.ents["server-room"], w.ents["pay-initiate"]]),
        )
    with w.rt.work(w.p("ana")) as ctx:
        rid = requests.request_access(
            ctx, RequestIn(subject_id=w.people["ana"], role_id=role.id, justification=JUSTIFICATION)
        ).id
    with w.rt.work(SYSTEM) as ctx:
        grants_service.retire_role(ctx, role.id, "replaced by the new operations roles")
    with pytest.raises(ValidationFailed, match="cannot be approved"):
        w.decide("sofia", rid)
    assert w.grants("ana") == []
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(ValidationFailed) as exc:
        requests.request_access(
            ctx, RequestIn(subject_id=w.people["ana"], role_id=role.id, justification=JUSTIFICATION + " again")
        )
    assert "retired" in exc.value.errors[0].message


# --- cancelling, reading ---------------------------------------------------------------


def test_cancel_by_requester_or_subject_only(w: World) -> None:
    rid = w.ask("max", "ana", "server-room")
    with w.rt.work(w.p("olga")) as ctx, pytest.raises(PermissionDenied, match="may cancel"):
        requests.cancel_request(ctx, rid)
    with w.rt.work(w.p("ana")) as ctx:
        assert requests.cancel_request(ctx, rid).status == "cancelled"
    with w.rt.work(w.p("max")) as ctx, pytest.raises(Conflict, match="already cancelled"):
        requests.cancel_request(ctx, rid)
    with pytest.raises(Conflict):
        w.decide("zoe", rid)
    assert actions(w.rt, "access_request") == ["request.created", "request.cancelled"]


def test_inbox_shows_what_one_may_still_decide(w: World) -> None:
    r_room = w.ask("ana", "ana", "server-room")
    r_app = w.ask("ana", "ana", "app-read")
    r_db = w.ask("ana", "ana", "db-admin", duration_days=2)
    mine = w.ask("olga", "ben", "app-read")

    def inbox(name: str) -> list[int]:
        with w.rt.work(w.p(name)) as ctx:
            return [r.id for r in requests.approvals_inbox(ctx)]

    assert sorted(inbox("zoe")) == [r_room]
    assert sorted(inbox("max")) == sorted([r_app, mine])  # manager of ana and of ben
    assert sorted(inbox("olga")) == sorted([r_app, r_db])  # owner; not the one she made
    assert inbox("sofia") == [r_db]
    w.decide("sofia", r_db)
    assert inbox("sofia") == []
    with w.rt.work(w.p("ana")) as ctx, pytest.raises(PermissionDenied):
        requests.approvals_inbox(ctx)


def test_staff_see_only_their_own_requests(w: World) -> None:
    own = w.ask("ana", "ana", "server-room")
    other = w.ask("max", "ben", "server-room")
    with w.rt.work(w.p("ana")) as ctx:
        rows, total, _ = requests.list_requests(ctx)
        assert [r.id for r in rows] == [own]
        assert total == 1
        with pytest.raises(PermissionDenied):
            requests.get_request(ctx, other)
        view = requests.request_view(requests.get_request(ctx, own))
    assert view["subject_email"] == "ana@kestrel.example.eu"
    assert view["entitlement_key"] == "server-room"
    with w.rt.work(w.p("sofia")) as ctx:
        rows, total, _ = requests.list_requests(ctx, status="pending")
        assert total == 2
        rows, total, _ = requests.list_requests(ctx, subject_id=w.people["ben"])
        assert [r.id for r in rows] == [other]


def test_decision_view_lists_decisions(w: World) -> None:
    rid = w.ask("ana", "ana", "db-admin", duration_days=2)
    w.decide("sofia", rid, comment="fine by security")
    with w.rt.work(w.p("sofia")) as ctx:
        view = requests.request_view(requests.get_request(ctx, rid))
    assert view["approvals"] == 1
    assert view["decisions"][0]["approver_email"] == "sofia@kestrel.example.eu"
    assert view["decisions"][0]["comment"] == "fine by security"
    assert view["version"] == 1


def test_decision_input_is_validated() -> None:
    with pytest.raises(ValueError, match="approve"):
        DecisionIn.model_validate({})
