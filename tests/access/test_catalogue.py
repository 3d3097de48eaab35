"""The access catalogue's rules, on SQLite and PostgreSQL: entitlements, roles, SoD, training, mappings, identities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portcullis.access import catalogue
from portcullis.access.models import AccessRole, Entitlement, GroupMapping, SodRule, TrainingRecord
from portcullis.access.schemas import AccessRoleIn, EntitlementIn, GroupMappingIn, SodRuleIn, TrainingRecordIn
from portcullis.accounts.models import User
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.errors import Conflict, PermissionDenied, PortcullisError, ValidationFailed
from portcullis.core.permissions import Permission, Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, OrganisationIn, OverrideIn, PersonIn, SiteIn, ZoneIn
from tests.factories import Made, make_user
from tests.inventory.test_service import count, ledger_size, records


@dataclass
class World:
    admin: Made
    owner_id: int  # owns the assets and the zone
    alice_id: int  # Engineering, employee
    bob_id: int  # Trading, contractor
    critical_asset_id: int
    important_asset_id: int
    zone_id: int


@pytest.fixture
def admin(rt: Runtime) -> Made:
    return make_user(rt, Role.ADMIN)


@pytest.fixture
def world(rt: Runtime, admin: Made) -> World:
    return build_world(rt, admin)


def build_world(rt: Runtime, admin: Made) -> World:
    with rt.work(admin.principal) as ctx:
        owner = inventory.create_person(
            ctx, PersonIn(external_id="HR-1", email="owner@firm.eu", full_name="Olga Owner", department="IT")
        )
        alice = inventory.create_person(
            ctx,
            PersonIn(external_id="HR-2", email="alice@firm.eu", full_name="Alice", department="Engineering"),
        )
        bob = inventory.create_person(
            ctx,
            PersonIn(external_id="HR-3", email="bob@firm.eu", full_name="Bob", department="Trading", kind="contractor"),
        )
        site = inventory.create_site(ctx, SiteIn(external_id="S-1", name="HQ", kind="office"))
        zone = inventory.create_zone(
            ctx,
            ZoneIn(external_id="Z-1", site_id=site.id, name="Server room", criticality="critical", owner_id=owner.id),
        )
        crit = inventory.create_asset(
            ctx,
            AssetIn(external_id="A-1", name="Wallet signer", type="server", criticality="critical", owner_id=owner.id),
        )
        imp = inventory.create_asset(
            ctx, AssetIn(external_id="A-2", name="CRM", type="application", criticality="important", owner_id=owner.id)
        )
        return World(admin, owner.id, alice.id, bob.id, crit.id, imp.id, zone.id)


def ent_in(key: str, **kw: Any) -> EntitlementIn:
    base: dict[str, Any] = {"key": key, "name": key.replace(".", " ")}
    base.update(kw)
    return EntitlementIn(**base)


def add_ent(rt: Runtime, who: Made, key: str, **kw: Any) -> int:
    with rt.work(who.principal) as ctx:
        return catalogue.create_entitlement(ctx, ent_in(key, **kw)).id


def refused(rt: Runtime, who: Made | Principal, fn: Any, *args: Any) -> PortcullisError:
    """Runs a write expected to fail; checks it left neither rows nor audit records behind."""
    principal = who.principal if isinstance(who, Made) else who
    sizes = (ledger_size(rt), *(count(rt, m) for m in (Entitlement, AccessRole, SodRule, TrainingRecord, GroupMapping)))
    with pytest.raises(PortcullisError) as info, rt.work(principal) as ctx:
        fn(ctx, *args)
    after = (ledger_size(rt), *(count(rt, m) for m in (Entitlement, AccessRole, SodRule, TrainingRecord, GroupMapping)))
    assert after == sizes
    return info.value


def fields_of(exc: PortcullisError) -> list[str]:
    return [e.field for e in exc.errors]


# --- entitlements ------------------------------------------------------------------------------


def test_entitlement_created_and_audited(rt: Runtime, world: World) -> None:
    eid = add_ent(
        rt, world.admin, "crm.read", asset_id=world.important_asset_id, required_training=["SEC-1", "SEC-1", "AML"]
    )
    [rec] = records(rt, "entitlement")
    assert rec["action"] == "entitlement.created"
    assert rec["object_id"] == str(eid)
    assert rec["changes"]["key"] == [None, "crm.read"]
    assert rec["changes"]["asset_external_id"] == [None, "A-2"]
    # A course named twice is required once.
    assert rec["changes"]["required_training"] == [None, ["SEC-1", "AML"]]
    assert rec["actor"]["role"] == "admin"


def test_entitlement_key_is_unique(rt: Runtime, world: World) -> None:
    add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    exc = refused(rt, world.admin, catalogue.create_entitlement, ent_in("crm.read", zone_id=world.zone_id))
    assert isinstance(exc, Conflict)
    assert fields_of(exc) == ["key"]
    assert "crm.read" in exc.detail


def test_entitlement_target_must_exist(rt: Runtime, world: World) -> None:
    exc = refused(rt, world.admin, catalogue.create_entitlement, ent_in("x", asset_id=424242))
    assert isinstance(exc, ValidationFailed)
    assert fields_of(exc) == ["asset_id"]
    exc = refused(rt, world.admin, catalogue.create_entitlement, ent_in("x", zone_id=424242))
    assert fields_of(exc) == ["zone_id"]


def test_remote_admin_is_on_an_asset_not_a_zone(rt: Runtime, world: World) -> None:
    exc = refused(
        rt, world.admin, catalogue.create_entitlement, ent_in("door.admin", zone_id=world.zone_id, remote_admin=True)
    )
    assert fields_of(exc) == ["remote_admin"]
    add_ent(rt, world.admin, "crm.ssh", asset_id=world.important_asset_id, remote_admin=True)


@pytest.mark.parametrize("flag", ["privileged", "remote_admin"])
def test_sensitive_access_to_a_critical_asset_needs_its_owner(rt: Runtime, world: World, flag: str) -> None:
    bad = ent_in("signer.root", asset_id=world.critical_asset_id, approvers=["security_officer"], **{flag: True})
    exc = refused(rt, world.admin, catalogue.create_entitlement, bad)
    assert fields_of(exc) == ["approvers"]
    assert "A-1" in str(exc)
    assert "owner" in str(exc)
    # Not sensitive, or not critical: the owner need not approve.
    add_ent(rt, world.admin, "signer.view", asset_id=world.critical_asset_id, approvers=["security_officer"])
    add_ent(rt, world.admin, "crm.root", asset_id=world.important_asset_id, approvers=["manager"], **{flag: True})
    add_ent(
        rt, world.admin, "signer.root", asset_id=world.critical_asset_id, approvers=["owner", "manager"], **{flag: True}
    )


def test_privileged_never_below_two_approvers(rt: Runtime, world: World) -> None:
    exc = refused(
        rt,
        world.admin,
        catalogue.create_entitlement,
        ent_in("crm.root", asset_id=world.important_asset_id, privileged=True, min_approvals=1),
    )
    assert fields_of(exc) == ["min_approvals"]
    add_ent(rt, world.admin, "crm.one", asset_id=world.important_asset_id, min_approvals=1)


def test_required_approvals_follows_the_tier(rt: Runtime, world: World) -> None:
    plain = add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    priv = add_ent(rt, world.admin, "crm.root", asset_id=world.important_asset_id, privileged=True)
    fixed = add_ent(rt, world.admin, "crm.five", asset_id=world.important_asset_id, privileged=True, min_approvals=5)

    def required() -> tuple[int, int, int]:
        with rt.session() as s:
            return tuple(catalogue.required_approvals(s, s.get(Entitlement, i)) for i in (plain, priv, fixed))  # type: ignore[return-value,arg-type]

    assert required() == (1, 2, 5)  # no profile yet: the standard tier
    with rt.work(world.admin.principal) as ctx:
        inventory.set_organisation(
            ctx, OrganisationIn(legal_name="Firm", staff_count=60, risk_profile="high", complexity="high")
        )
    assert required() == (1, 3, 5)  # enhanced tier
    with rt.work(world.admin.principal) as ctx:
        inventory.set_override(ctx, OverrideIn(key="privileged_approvers", value=4, reason="Board decision 2026-11"))
    assert required() == (1, 4, 5)


def test_update_entitlement_records_the_difference_and_nothing_when_unchanged(rt: Runtime, world: World) -> None:
    eid = add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    with rt.work(world.admin.principal) as ctx:
        catalogue.update_entitlement(ctx, eid, ent_in("crm.read", asset_id=world.important_asset_id))
    assert [r["action"] for r in records(rt, "entitlement")] == ["entitlement.created"]
    with rt.work(world.admin.principal) as ctx:
        catalogue.update_entitlement(
            ctx, eid, ent_in("crm.read", zone_id=world.zone_id, max_duration_days=30, approvers=["manager"])
        )
    upd = records(rt, "entitlement")[-1]
    assert upd["action"] == "entitlement.updated"
    assert upd["changes"]["asset_id"] == [world.important_asset_id, None]
    assert upd["changes"]["zone_external_id"] == [None, "Z-1"]
    assert upd["changes"]["max_duration_days"] == [None, 30]
    assert upd["changes"]["approvers"] == [["owner"], ["manager"]]
    assert "key" not in upd["changes"]
    # Renaming onto another entitlement's key is refused.
    add_ent(rt, world.admin, "crm.write", asset_id=world.important_asset_id)
    exc = refused(rt, world.admin, catalogue.update_entitlement, eid, ent_in("crm.write", zone_id=world.zone_id))
    assert isinstance(exc, Conflict)


def test_list_entitlements_filters_and_pages(rt: Runtime, world: World) -> None:
    for n in range(5):
        add_ent(rt, world.admin, f"crm.e{n}", asset_id=world.important_asset_id, privileged=n % 2 == 1)
    add_ent(rt, world.admin, "door.enter", zone_id=world.zone_id, name="Server room door")
    with rt.work(world.admin.principal) as ctx:
        rows, total, nxt = catalogue.list_entitlements(ctx, asset_id=world.important_asset_id, limit=3)
        assert (total, [r.key for r in rows]) == (5, ["crm.e0", "crm.e1", "crm.e2"])
        rows, _, last = catalogue.list_entitlements(ctx, asset_id=world.important_asset_id, after=nxt, limit=3)
        assert ([r.key for r in rows], last) == (["crm.e3", "crm.e4"], None)
        assert [r.key for r in catalogue.list_entitlements(ctx, privileged=True)[0]] == ["crm.e1", "crm.e3"]
        assert [r.key for r in catalogue.list_entitlements(ctx, zone_id=world.zone_id)[0]] == ["door.enter"]
        assert [r.key for r in catalogue.list_entitlements(ctx, q="ROOM DOOR")[0]] == ["door.enter"]


@pytest.mark.parametrize("role", [Role.STAFF, Role.AUDITOR, Role.KEY_CUSTODIAN, Role.MANAGEMENT_BODY])
def test_catalogue_readable_by_requesters_and_readers(rt: Runtime, world: World, role: Role) -> None:
    eid = add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    with rt.work(world.admin.principal) as ctx:
        catalogue.create_role(ctx, AccessRoleIn(key="crm-users", name="CRM users", entitlement_ids=[eid]))
    who = make_user(rt, role)
    with rt.work(who.principal) as ctx:
        assert [e.key for e in catalogue.list_entitlements(ctx)[0]] == ["crm.read"]
        assert catalogue.get_entitlement(ctx, eid).key == "crm.read"
        assert [r.key for r in catalogue.list_roles(ctx)[0]] == ["crm-users"]


def test_catalogue_refused_without_read_or_request(rt: Runtime, world: World) -> None:
    narrow = Principal(name="narrow", role=Role.ADMIN, mfa=True, scopes=frozenset({Permission.INVENTORY_READ}))
    with pytest.raises(PermissionDenied) as info, rt.work(narrow) as ctx:
        catalogue.list_entitlements(ctx)
    assert "access.read" in info.value.detail
    assert "access.request" in info.value.detail
    with pytest.raises(PermissionDenied), rt.work(narrow) as ctx:
        catalogue.list_roles(ctx)


@pytest.mark.parametrize("role", [Role.STAFF, Role.APPROVER, Role.AUDITOR])
def test_catalogue_writes_need_access_admin(rt: Runtime, world: World, role: Role) -> None:
    who = make_user(rt, role)
    for fn, arg in [
        (catalogue.create_entitlement, ent_in("crm.read", asset_id=world.important_asset_id)),
        (catalogue.create_role, AccessRoleIn(key="r", name="R")),
        (
            catalogue.record_training,
            TrainingRecordIn(person_id=world.alice_id, course="C", completed_at=rt.clock.now()),
        ),
    ]:
        exc = refused(rt, who, fn, arg)
        assert isinstance(exc, PermissionDenied)
        assert "access.admin" in exc.detail
    # Readers of grants may not read SoD rules, training or mappings without ACCESS_READ.
    staff = make_user(rt, Role.STAFF, "staff2@example.eu")
    for reader in (catalogue.list_sod_rules, catalogue.list_group_mappings, catalogue.list_training):
        with pytest.raises(PermissionDenied), rt.work(staff.principal) as ctx:
            reader(ctx)


def test_security_officer_without_mfa_cannot_change_the_catalogue(rt: Runtime, world: World) -> None:
    so = make_user(rt, Role.SECURITY_OFFICER, enrol_mfa=False)
    exc = refused(rt, so, catalogue.create_entitlement, ent_in("crm.read", asset_id=world.important_asset_id))
    assert isinstance(exc, PermissionDenied)
    assert "MFA" in exc.detail


# --- roles --------------------------------------------------------------------------------------------


def test_role_with_entitlements_and_audit(rt: Runtime, world: World) -> None:
    e1 = add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    e2 = add_ent(rt, world.admin, "door.enter", zone_id=world.zone_id)
    with rt.work(world.admin.principal) as ctx:
        role = catalogue.create_role(
            ctx,
            AccessRoleIn(
                key="ops",
                name="Ops",
                departments=["Engineering"],
                person_kinds=["employee"],
                entitlement_ids=[e2, e1, e2],
            ),
        )
        view = catalogue.role_view(role)
    assert view["entitlement_ids"] == sorted([e1, e2])
    assert view["entitlement_keys"] == (["crm.read", "door.enter"] if e1 < e2 else ["door.enter", "crm.read"])
    [rec] = records(rt, "access_role")
    assert rec["action"] == "role.created"
    assert rec["changes"]["entitlement_ids"] == [None, sorted([e1, e2])]

    with rt.work(world.admin.principal) as ctx:
        catalogue.update_role(ctx, role.id, AccessRoleIn(key="ops", name="Ops", entitlement_ids=[e1]))
    upd = records(rt, "access_role")[-1]
    assert upd["action"] == "role.updated"
    assert upd["changes"]["entitlement_ids"] == [sorted([e1, e2]), [e1]]
    assert upd["changes"]["departments"] == [["Engineering"], []]
    with rt.work(world.admin.principal) as ctx:
        assert [r.key for r in catalogue.list_roles(ctx, entitlement_id=e2)[0]] == []
        assert [r.key for r in catalogue.list_roles(ctx, entitlement_id=e1)[0]] == ["ops"]


def test_role_rules(rt: Runtime, world: World) -> None:
    e1 = add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    exc = refused(rt, world.admin, catalogue.create_role, AccessRoleIn(key="r", name="R", entitlement_ids=[e1, 777]))
    assert fields_of(exc) == ["entitlement_ids"]
    assert "777" in str(exc)
    exc = refused(rt, world.admin, catalogue.create_role, AccessRoleIn(key="r", name="R", person_kinds=["robot"]))
    assert fields_of(exc) == ["person_kinds"]
    assert "robot" in str(exc)
    with rt.work(world.admin.principal) as ctx:
        catalogue.create_role(ctx, AccessRoleIn(key="r", name="R"))
    exc = refused(rt, world.admin, catalogue.create_role, AccessRoleIn(key="r", name="Other"))
    assert isinstance(exc, Conflict)
    assert fields_of(exc) == ["key"]


def test_role_cannot_bundle_both_sides_of_a_sod_rule(rt: Runtime, world: World) -> None:
    pay = add_ent(rt, world.admin, "pay.create", asset_id=world.important_asset_id)
    approve = add_ent(rt, world.admin, "pay.approve", asset_id=world.important_asset_id)
    with rt.work(world.admin.principal) as ctx:
        catalogue.create_sod_rule(
            ctx, SodRuleIn(name="Maker-checker", left_entitlement_id=pay, right_entitlement_id=approve)
        )
    exc = refused(
        rt, world.admin, catalogue.create_role, AccessRoleIn(key="all", name="All", entitlement_ids=[pay, approve])
    )
    assert fields_of(exc) == ["entitlement_ids"]
    assert "Maker-checker" in str(exc)


def test_role_eligibility_problems(rt: Runtime, world: World, clock: FrozenClock) -> None:
    now = clock.now()
    with rt.work(world.admin.principal) as ctx:
        role = catalogue.create_role(
            ctx,
            AccessRoleIn(
                key="eng",
                name="Eng",
                departments=["Engineering", "Security"],
                person_kinds=["employee"],
                required_training=["AML-2026", "SEC-1"],
            ),
        )
        catalogue.record_training(
            ctx, TrainingRecordIn(person_id=world.alice_id, course="SEC-1", completed_at=now - timedelta(days=10))
        )
        # AML-2026 completed long ago and lapsed yesterday.
        catalogue.record_training(
            ctx,
            TrainingRecordIn(
                person_id=world.alice_id,
                course="AML-2026",
                completed_at=now - timedelta(days=400),
                expires_at=now - timedelta(days=1),
            ),
        )
    with rt.session() as s:
        from portcullis.inventory.models import Person

        alice, bob = s.get(Person, world.alice_id), s.get(Person, world.bob_id)
        role_ = s.get(AccessRole, role.id)
        assert alice is not None
        assert bob is not None
        assert role_ is not None
        assert catalogue.role_eligibility_problems(s, alice, role_, now) == ["training AML-2026 missing or lapsed"]
        # Before the lapse she was eligible.
        assert catalogue.role_eligibility_problems(s, alice, role_, now - timedelta(days=2)) == []
        assert catalogue.role_eligibility_problems(s, bob, role_, now) == [
            "department Trading is not one of: Engineering, Security",
            "kind of person contractor is not one of: employee",
            "training AML-2026 missing or lapsed",
            "training SEC-1 missing or lapsed",
        ]


# --- separation of duties --------------------------------------------------------------------------------


def test_sod_rule_created_and_listed(rt: Runtime, world: World) -> None:
    pay = add_ent(rt, world.admin, "pay.create", asset_id=world.important_asset_id)
    with rt.work(world.admin.principal) as ctx:
        role = catalogue.create_role(ctx, AccessRoleIn(key="auditors", name="Auditors"))
        rule = catalogue.create_sod_rule(
            ctx, SodRuleIn(name="No self-audit", left_entitlement_id=pay, right_role_id=role.id, reason="§22")
        )
        assert [catalogue.sod_rule_view(r)["right"] for r in catalogue.list_sod_rules(ctx)] == ["role auditors"]
    [rec] = records(rt, "sod_rule")
    assert (rec["action"], rec["object_id"]) == ("sod_rule.created", str(rule.id))
    assert rec["changes"]["left"] == [None, "entitlement pay.create"]


def test_sod_rule_rules(rt: Runtime, world: World) -> None:
    pay = add_ent(rt, world.admin, "pay.create", asset_id=world.important_asset_id)
    approve = add_ent(rt, world.admin, "pay.approve", asset_id=world.important_asset_id)
    with rt.work(world.admin.principal) as ctx:
        makers = catalogue.create_role(ctx, AccessRoleIn(key="makers", name="Makers", entitlement_ids=[pay]))
        both = catalogue.create_role(ctx, AccessRoleIn(key="both", name="Both", entitlement_ids=[pay, approve]))

    def attempt(**sides: int) -> PortcullisError:
        return refused(rt, world.admin, catalogue.create_sod_rule, SodRuleIn(name="rule", **sides))

    assert fields_of(attempt(left_entitlement_id=999, right_entitlement_id=pay)) == ["left_entitlement_id"]
    assert fields_of(attempt(left_entitlement_id=pay, right_role_id=999)) == ["right_role_id"]
    assert fields_of(attempt(left_entitlement_id=pay, right_entitlement_id=pay)) == ["right_entitlement_id"]
    assert fields_of(attempt(left_role_id=makers.id, right_role_id=makers.id)) == ["right_role_id"]
    # An entitlement against a role that bundles it would forbid the role itself.
    assert fields_of(attempt(left_entitlement_id=pay, right_role_id=makers.id)) == ["right_role_id"]
    assert fields_of(attempt(left_role_id=makers.id, right_entitlement_id=pay)) == ["left_role_id"]
    exc = attempt(left_entitlement_id=pay, right_entitlement_id=approve)
    assert fields_of(exc) == ["right_entitlement_id"]
    assert "both" in str(exc)
    with rt.work(world.admin.principal) as ctx:
        catalogue.update_role(ctx, both.id, AccessRoleIn(key="both", name="Both", entitlement_ids=[approve]))
        catalogue.create_sod_rule(
            ctx, SodRuleIn(name="Maker-checker", left_entitlement_id=pay, right_entitlement_id=approve)
        )
    # The same pair, either way round, is one rule.
    exc = attempt(left_entitlement_id=approve, right_entitlement_id=pay)
    assert isinstance(exc, Conflict)
    assert "Maker-checker" in exc.detail


# --- training ---------------------------------------------------------------------------------------------


def test_training_rules(rt: Runtime, world: World, clock: FrozenClock) -> None:
    now = clock.now()
    exc = refused(
        rt, world.admin, catalogue.record_training, TrainingRecordIn(person_id=999, course="C", completed_at=now)
    )
    assert fields_of(exc) == ["person_id"]
    exc = refused(
        rt,
        world.admin,
        catalogue.record_training,
        TrainingRecordIn(person_id=world.alice_id, course="C", completed_at=now, expires_at=now),
    )
    assert fields_of(exc) == ["expires_at"]
    exc = refused(
        rt,
        world.admin,
        catalogue.record_training,
        TrainingRecordIn(person_id=world.alice_id, course="C", completed_at=now + timedelta(hours=1)),
    )
    assert fields_of(exc) == ["completed_at"]
    with rt.work(world.admin.principal) as ctx:
        t = catalogue.record_training(
            ctx, TrainingRecordIn(person_id=world.alice_id, course="C", completed_at=now - timedelta(days=1))
        )
    [rec] = records(rt, "training_record")
    assert (rec["action"], rec["object_id"], rec["person_email"]) == ("training.recorded", str(t.id), "alice@firm.eu")


def test_current_courses_at_the_boundaries(rt: Runtime, world: World, clock: FrozenClock) -> None:
    t0 = clock.now() - timedelta(days=100)
    with rt.work(world.admin.principal) as ctx:
        for course, done, expires in [
            ("AML", t0, t0 + timedelta(days=30)),
            ("AML", t0 + timedelta(days=60), None),  # renewed after a gap
            ("SEC", t0, t0 + timedelta(days=10)),
        ]:
            catalogue.record_training(
                ctx, TrainingRecordIn(person_id=world.alice_id, course=course, completed_at=done, expires_at=expires)
            )
        catalogue.record_training(ctx, TrainingRecordIn(person_id=world.bob_id, course="OTHER", completed_at=t0))
    with rt.session() as s:

        def at(days: int) -> set[str]:
            return catalogue.current_courses(s, world.alice_id, t0 + timedelta(days=days))

        assert at(-1) == set()
        assert at(0) == {"AML", "SEC"}  # completed at that instant counts
        assert at(10) == {"AML"}  # expires_at is the first instant it no longer counts
        assert at(30) == set()
        assert at(60) == {"AML"}
        assert catalogue.lapsed_courses(s, world.alice_id, t0 + timedelta(days=40)) == {"AML", "SEC"}
    with rt.work(world.admin.principal) as ctx:
        assert [t.course for t in catalogue.list_training(ctx, world.bob_id)] == ["OTHER"]
        assert len(catalogue.list_training(ctx)) == 4


# --- group mappings -----------------------------------------------------------------------------------------


def test_group_mapping_rules(rt: Runtime, world: World) -> None:
    eid = add_ent(rt, world.admin, "crm.read", asset_id=world.important_asset_id)
    exc = refused(
        rt,
        world.admin,
        catalogue.create_group_mapping,
        GroupMappingIn(system="ldap", group_name="cn=crm", entitlement_id=999),
    )
    assert fields_of(exc) == ["entitlement_id"]
    with rt.work(world.admin.principal) as ctx:
        m = catalogue.create_group_mapping(ctx, GroupMappingIn(system="ldap", group_name="cn=crm", entitlement_id=eid))
        catalogue.create_group_mapping(ctx, GroupMappingIn(system="okta", group_name="cn=crm", entitlement_id=eid))
    exc = refused(
        rt,
        world.admin,
        catalogue.create_group_mapping,
        GroupMappingIn(system="ldap", group_name="cn=crm", entitlement_id=eid),
    )
    assert isinstance(exc, Conflict)
    assert fields_of(exc) == ["group_name"]
    recs = records(rt, "group_mapping")
    assert next((r["action"], r["object_id"]) for r in recs) == ("group_mapping.created", str(m.id))
    assert recs[0]["changes"]["entitlement_key"] == [None, "crm.read"]
    with rt.work(world.admin.principal) as ctx:
        assert [g.system for g in catalogue.list_group_mappings(ctx, "ldap")] == ["ldap"]
        assert len(catalogue.list_group_mappings(ctx)) == 2


# --- identities ------------------------------------------------------------------------------------------------


def test_acting_person_needs_a_link(rt: Runtime, world: World) -> None:
    staff = make_user(rt, Role.STAFF)
    with pytest.raises(PermissionDenied) as info, rt.work(staff.principal) as ctx:
        catalogue.acting_person(ctx)
    assert "portcullis identities link" in info.value.detail
    with pytest.raises(PermissionDenied), rt.work(Principal.system("tests")) as ctx:
        catalogue.acting_person(ctx)

    with rt.work(world.admin.principal) as ctx:
        catalogue.link_user_to_person(ctx, staff.user.id, world.alice_id)
    with rt.work(staff.principal) as ctx:
        assert catalogue.acting_person(ctx).email == "alice@firm.eu"
    [rec] = records(rt, "user", "user.person_linked")
    assert rec["object_id"] == str(staff.user.id)
    assert rec["changes"]["person_email"] == [None, "alice@firm.eu"]
    assert rec["user_email"] == "staff@example.eu"


def test_link_rules(rt: Runtime, world: World) -> None:
    staff = make_user(rt, Role.STAFF)
    other = make_user(rt, Role.APPROVER)
    so = make_user(rt, Role.SECURITY_OFFICER)
    exc = refused(rt, so, catalogue.link_user_to_person, staff.user.id, world.alice_id)
    assert isinstance(exc, PermissionDenied)
    assert "users.manage" in exc.detail
    exc = refused(rt, world.admin, catalogue.link_user_to_person, 9999, 8888)
    assert fields_of(exc) == ["user_id", "person_id"]
    with rt.work(world.admin.principal) as ctx:
        catalogue.link_user_to_person(ctx, staff.user.id, world.alice_id)
    exc = refused(rt, world.admin, catalogue.link_user_to_person, other.user.id, world.alice_id)
    assert isinstance(exc, Conflict)
    assert "staff@example.eu" in exc.detail
    assert fields_of(exc) == ["person_id"]
    # Linking again to the same person changes nothing and records nothing.
    n = len(records(rt, "user", "user.person_linked"))
    with rt.work(world.admin.principal) as ctx:
        catalogue.link_user_to_person(ctx, staff.user.id, world.alice_id)
        catalogue.link_user_to_person(ctx, staff.user.id, world.bob_id)  # a correction
    recs = records(rt, "user", "user.person_linked")
    assert len(recs) == n + 1
    assert recs[-1]["changes"]["person_email"] == ["alice@firm.eu", "bob@firm.eu"]
    with rt.session() as s:
        assert s.scalar(select(User.person_id).where(User.id == staff.user.id)) == world.bob_id


def test_colleagues_are_the_active_people_one_may_ask_for(rt: Runtime, world: World) -> None:
    from datetime import date

    with rt.work(world.admin.principal) as ctx:
        inventory.create_person(
            ctx, PersonIn(external_id="HR-9", email="gone@firm.eu", full_name="Gone", status="leaver",
                          end_date=date(2026, 10, 1))
        )
        inventory.create_person(
            ctx, PersonIn(external_id="SVC-1", email="svc@firm.eu", full_name="Backup job", kind="service_account")
        )
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    with rt.work(staff.principal) as ctx:
        names = {email for _, _, email in catalogue.colleagues(ctx)}
    assert names == {"owner@firm.eu", "alice@firm.eu", "bob@firm.eu"}
    auditor = make_user(rt, Role.AUDITOR, enrol_mfa=False)  # reads access, asks for none
    refused(rt, auditor, catalogue.colleagues)
