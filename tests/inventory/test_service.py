"""Register rules of the inventory services, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from portcullis.core.clock import FrozenClock
from portcullis.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from portcullis.core.lei import with_check_digits
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service
from portcullis.inventory.models import Asset, AssetDependency, Person, Provider, Site, Zone
from portcullis.inventory.schemas import AssetIn, PersonIn, ProviderIn, SiteIn, ZoneIn
from portcullis.ledger.models import LedgerRecord
from tests.factories import Made, make_user


def records(rt: Runtime, object_type: str | None = None, action_prefix: str | None = None) -> list[dict[str, Any]]:
    with rt.session() as s:
        stmt = select(LedgerRecord).order_by(LedgerRecord.id)
        if object_type is not None:
            stmt = stmt.where(LedgerRecord.object_type == object_type)
        rows = list(s.scalars(stmt))
        out = [json.loads(r.payload) for r in rows]
    if action_prefix is not None:
        out = [r for r in out if str(r["action"]).startswith(action_prefix)]
    return out


def count(rt: Runtime, model: type[Any]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def ledger_size(rt: Runtime) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count(LedgerRecord.id))) or 0


@pytest.fixture
def admin(rt: Runtime) -> Made:
    return make_user(rt, Role.ADMIN)


def person_in(n: int, **kw: Any) -> PersonIn:
    base: dict[str, Any] = {"external_id": f"HR-{n}", "email": f"p{n}@firm.eu", "full_name": f"Person {n}"}
    base.update(kw)
    return PersonIn(**base)


def add_person(rt: Runtime, who: Made, n: int, **kw: Any) -> int:
    with rt.work(who.principal) as ctx:
        return service.create_person(ctx, person_in(n, **kw)).id


def refused(rt: Runtime, who: Made, fn: Callable[[Any], object], exc: type[Exception]) -> Exception:
    """Runs a write that must fail, and checks it left the ledger as it was."""
    size = ledger_size(rt)
    with pytest.raises(exc) as info, rt.work(who.principal) as ctx:
        fn(ctx)
    assert ledger_size(rt) == size
    return info.value


# --- people --------------------------------------------------------------------


def test_create_person_leaves_one_audit_record(rt: Runtime, admin: Made) -> None:
    before = len(records(rt, "person"))
    pid = add_person(rt, admin, 1, department="Operations", idp_id="  ", badge_id="B-1")
    recs = records(rt, "person")
    assert len(recs) == before + 1
    rec = recs[-1]
    assert rec["action"] == "person.created"
    assert rec["object_id"] == str(pid)
    assert rec["actor"]["name"] == "admin@example.eu"
    assert rec["changes"]["email"] == [None, "p1@firm.eu"]
    assert rec["changes"]["department"] == [None, "Operations"]
    assert rec["changes"]["badge_id"] == [None, "B-1"]
    assert "idp_id" not in rec["changes"]  # blank stored as none: nothing to record
    assert rec["changes"]["status_changed_at"] == [None, "2026-11-24T09:00:00Z"]


@pytest.mark.parametrize(
    ("field", "dup"),
    [
        ("external_id", {"external_id": "HR-1"}),
        ("email", {"email": "P1@Firm.EU"}),
        ("idp_id", {"idp_id": "okta-1"}),
        ("badge_id", {"badge_id": "B-1"}),
    ],
)
def test_duplicate_identifiers_conflict_naming_field_and_value(
    rt: Runtime, admin: Made, field: str, dup: dict[str, str]
) -> None:
    add_person(rt, admin, 1, idp_id="okta-1", badge_id="B-1")
    err = refused(rt, admin, lambda ctx: service.create_person(ctx, person_in(2, **dup)), Conflict)
    assert isinstance(err, Conflict)
    assert [e.field for e in err.errors] == [field]
    expected_value = dup[field].lower() if field == "email" else dup[field]
    assert expected_value in err.detail
    assert count(rt, Person) == 1


def test_update_may_keep_own_identifiers_but_not_take_anothers(rt: Runtime, admin: Made) -> None:
    add_person(rt, admin, 1)
    p2 = add_person(rt, admin, 2)
    with rt.work(admin.principal) as ctx:
        service.update_person(ctx, p2, person_in(2, job_title="Engineer"))
    err = refused(rt, admin, lambda ctx: service.update_person(ctx, p2, person_in(2, email="p1@firm.eu")), Conflict)
    assert "p1@firm.eu" in str(err)
    with rt.session() as s:
        assert s.get(Person, p2).email == "p2@firm.eu"  # type: ignore[union-attr]


def test_manager_must_exist_and_not_loop(rt: Runtime, admin: Made) -> None:
    a = add_person(rt, admin, 1)
    b = add_person(rt, admin, 2, manager_id=a)
    c = add_person(rt, admin, 3, manager_id=b)

    err = refused(rt, admin, lambda ctx: service.create_person(ctx, person_in(4, manager_id=999)), ValidationFailed)
    assert [(e.field, e.message) for e in err.errors] == [("manager_id", "no person with id 999")]  # type: ignore[attr-defined]
    assert count(rt, Person) == 3

    err = refused(rt, admin, lambda ctx: service.update_person(ctx, a, person_in(1, manager_id=a)), ValidationFailed)
    assert err.errors[0].field == "manager_id"  # type: ignore[attr-defined]

    # a -> c would close a -> c -> b -> a.
    err = refused(rt, admin, lambda ctx: service.update_person(ctx, a, person_in(1, manager_id=c)), ValidationFailed)
    assert err.errors[0].field == "manager_id"  # type: ignore[attr-defined]
    assert "cycle" in err.errors[0].message  # type: ignore[attr-defined]
    with rt.session() as s:
        assert s.get(Person, a).manager_id is None  # type: ignore[union-attr]

    # A service account needs no manager; re-parenting without a loop is fine.
    add_person(rt, admin, 5, kind="service_account")
    with rt.work(admin.principal) as ctx:
        service.update_person(ctx, c, person_in(3, manager_id=a))


def test_status_change_stamps_status_changed_at(rt: Runtime, admin: Made, clock: FrozenClock) -> None:
    pid = add_person(rt, admin, 1)
    start = clock.now()
    clock.advance(timedelta(days=3))
    with rt.work(admin.principal) as ctx:
        service.update_person(ctx, pid, person_in(1, status="active"))
    clock.advance(timedelta(days=2))
    with rt.work(admin.principal) as ctx:
        service.update_person(ctx, pid, person_in(1, status="active", job_title="Lead"))
    with rt.session() as s:
        p = s.get(Person, pid)
        assert p is not None
        assert p.status_changed_at == start + timedelta(days=3)
        assert p.updated_at == start + timedelta(days=5)
    last = records(rt, "person")[-1]
    assert last["changes"]["job_title"] == ["", "Lead"]
    assert "status" not in last["changes"]


def test_update_that_changes_nothing_records_nothing(rt: Runtime, admin: Made) -> None:
    pid = add_person(rt, admin, 1, department="Ops")
    size = ledger_size(rt)
    with rt.work(admin.principal) as ctx:
        service.update_person(ctx, pid, person_in(1, department="Ops"))
    assert ledger_size(rt) == size


def test_leaver_needs_end_date_by_schema() -> None:
    with pytest.raises(ValidationError, match="end_date"):
        person_in(1, status="leaver")


def test_list_people_filters_search_and_pages(rt: Runtime, admin: Made) -> None:
    for n in range(1, 8):
        add_person(rt, admin, n, department="Ops" if n % 2 else "Legal", status="active" if n < 4 else "joiner")
    add_person(rt, admin, 8, full_name="Grace Hopper", department="Legal", kind="contractor")
    with rt.work(admin.principal) as ctx:
        rows, total, nxt = service.list_people(ctx, department="Ops", limit=2)
        assert (total, [p.external_id for p in rows]) == (4, ["HR-1", "HR-3"])
        rows, total, nxt2 = service.list_people(ctx, department="Ops", limit=2, after=nxt)
        assert [p.external_id for p in rows] == ["HR-5", "HR-7"]
        assert nxt2 is None
        rows, total, _ = service.list_people(ctx, status="active")
        assert total == 3
        rows, total, _ = service.list_people(ctx, q="hopP")
        assert [p.external_id for p in rows] == ["HR-8"]
        rows, total, _ = service.list_people(ctx, q="hr-")
        assert total == 8
        rows, total, _ = service.list_people(ctx, kind="contractor")
        assert total == 1
        rows, total, _ = service.list_people(ctx, q="%")
        assert total == 0  # a wildcard is a character, not a pattern
        assert service.find_person_by_email(ctx, " P3@FIRM.eu ").external_id == "HR-3"  # type: ignore[union-attr]
        assert service.find_person_by_email(ctx, "nobody@firm.eu") is None
        assert service.find_person_by_external_id(ctx, "HR-4").email == "p4@firm.eu"  # type: ignore[union-attr]
        assert service.find_person_by_external_id(ctx, "HR-99") is None
        first = service.list_people(ctx, limit=1)[0][0]
        view = service.person_view(service.get_person(ctx, first.id))
        assert view["full_name"] == "Person 1"
    with pytest.raises(NotFound), rt.work(admin.principal) as ctx:
        service.get_person(ctx, 4242)


def test_person_view_names_the_manager(rt: Runtime, admin: Made) -> None:
    boss = add_person(rt, admin, 1)
    pid = add_person(rt, admin, 2, manager_id=boss)
    with rt.work(admin.principal) as ctx:
        view = service.person_view(service.get_person(ctx, pid))
    assert (view["manager_id"], view["manager_email"]) == (boss, "p1@firm.eu")


# --- sites and zones ----------------------------------------------------------------


def test_site_and_zone_references(rt: Runtime, admin: Made) -> None:
    owner = add_person(rt, admin, 1)
    err = refused(
        rt,
        admin,
        lambda ctx: service.create_site(ctx, SiteIn(external_id="S1", name="HQ", kind="office", owner_id=77)),
        ValidationFailed,
    )
    assert err.errors[0].field == "owner_id"  # type: ignore[attr-defined]
    assert count(rt, Site) == 0
    with rt.work(admin.principal) as ctx:
        site = service.create_site(ctx, SiteIn(external_id="S1", name="HQ", kind="office", owner_id=owner))
        site_id = site.id
    err = refused(
        rt,
        admin,
        lambda ctx: service.create_zone(ctx, ZoneIn(external_id="Z1", site_id=555, name="DC", criticality="critical")),
        ValidationFailed,
    )
    assert err.errors[0].field == "site_id"  # type: ignore[attr-defined]
    with rt.work(admin.principal) as ctx:
        zone_in = ZoneIn(external_id="Z1", site_id=site_id, name="Room", kind="server_room", criticality="critical")
        zone = service.create_zone(ctx, zone_in)
        zone_id = zone.id
        service.create_zone(ctx, ZoneIn(external_id="Z2", site_id=site_id, name="Lobby", criticality="other"))
    refused(
        rt,
        admin,
        lambda ctx: service.create_zone(ctx, ZoneIn(external_id="Z1", site_id=site_id, name="x", criticality="other")),
        Conflict,
    )
    assert count(rt, Zone) == 2
    with rt.work(admin.principal) as ctx:
        service.update_site(ctx, site_id, SiteIn(external_id="S1", name="Head office", kind="office"))
        rows, total, _ = service.list_zones(ctx, site_id=site_id, criticality="critical")
        assert [z.id for z in rows] == [zone_id]
        assert service.zone_view(rows[0])["site_external_id"] == "S1"
        rows, total, _ = service.list_sites(ctx, kind="data_centre")
        assert total == 0
        assert service.find_zone_by_external_id(ctx, "Z2") is not None
        assert service.find_site_by_external_id(ctx, "S1").name == "Head office"  # type: ignore[union-attr]
    rec = records(rt, "site")[-1]
    assert rec["action"] == "site.updated"
    assert rec["changes"]["name"] == ["HQ", "Head office"]
    assert rec["changes"]["owner_id"] == [owner, None]
    assert rec["changes"]["owner_email"] == ["p1@firm.eu", None]


# --- providers and assets ----------------------------------------------------------


def test_provider_lei_is_checked_by_the_schema() -> None:
    good = with_check_digits("529900T8BM49AURSDO")
    assert ProviderIn(external_id="P1", name="Cloud", criticality="critical", lei=good.lower()).lei == good
    bad = good[:-2] + ("00" if good[-2:] != "00" else "01")
    with pytest.raises(ValidationError, match="check digits"):
        ProviderIn(external_id="P1", name="Cloud", criticality="critical", lei=bad)


def test_providers_by_contract_end(rt: Runtime, admin: Made) -> None:
    with rt.work(admin.principal) as ctx:
        for n, end in enumerate([date(2026, 12, 31), date(2027, 6, 30), None], start=1):
            service.create_provider(
                ctx, ProviderIn(external_id=f"P{n}", name=f"Provider {n}", criticality="important", contract_end=end)
            )
        rows, _total, _ = service.list_providers(ctx, contract_end_before=date(2027, 1, 1))
        assert [p.external_id for p in rows] == ["P1"]
        rows, _, _ = service.list_providers(ctx, criticality="important", q="provider 3")
        assert [p.external_id for p in rows] == ["P3"]
    refused(
        rt,
        admin,
        lambda ctx: service.create_provider(ctx, ProviderIn(external_id="P2", name="x", criticality="other")),
        Conflict,
    )
    assert count(rt, Provider) == 3


def asset_in(ext: str, **kw: Any) -> AssetIn:
    base: dict[str, Any] = {"external_id": ext, "name": f"Asset {ext}", "type": "server", "criticality": "other"}
    base.update(kw)
    return AssetIn(**base)


def test_critical_asset_needs_an_owner(rt: Runtime, admin: Made) -> None:
    err = refused(
        rt, admin, lambda ctx: service.create_asset(ctx, asset_in("A1", criticality="critical")), ValidationFailed
    )
    assert [(e.field, e.message) for e in err.errors] == [  # type: ignore[attr-defined]
        ("owner_id", "a critical asset needs an owner (§17 i)")
    ]
    assert count(rt, Asset) == 0
    err = refused(
        rt,
        admin,
        lambda ctx: service.create_asset(ctx, asset_in("A1", owner_id=404, zone_id=405, provider_id=406)),
        ValidationFailed,
    )
    assert {e.field for e in err.errors} == {"owner_id", "zone_id", "provider_id"}  # type: ignore[attr-defined]
    assert count(rt, Asset) == 0


def test_asset_dependencies_are_checked_and_replaced(rt: Runtime, admin: Made) -> None:
    owner = add_person(rt, admin, 1)
    with rt.work(admin.principal) as ctx:
        a = service.create_asset(ctx, asset_in("A1")).id
        b = service.create_asset(ctx, asset_in("A2")).id
        c = service.create_asset(ctx, asset_in("A3", depends_on=[a, b, a], tags=["x", " x", "", "y"])).id
    with rt.session() as s:
        assert sorted((d.asset_id, d.depends_on_id) for d in s.query(AssetDependency)) == [(c, a), (c, b)]
        assert s.get(Asset, c).tags == ["x", "y"]  # type: ignore[union-attr]
    created = records(rt, "asset")[-1]
    assert created["changes"]["depends_on"] == [None, [a, b]]

    err = refused(rt, admin, lambda ctx: service.update_asset(ctx, c, asset_in("A3", depends_on=[c])), ValidationFailed)
    assert err.errors[0].field == "depends_on"  # type: ignore[attr-defined]
    err = refused(
        rt, admin, lambda ctx: service.update_asset(ctx, c, asset_in("A3", depends_on=[a, 9999])), ValidationFailed
    )
    assert "9999" in err.errors[0].message  # type: ignore[attr-defined]

    with rt.work(admin.principal) as ctx:
        service.update_asset(ctx, c, asset_in("A3", depends_on=[b], criticality="critical", owner_id=owner))
    with rt.session() as s:
        assert [(d.asset_id, d.depends_on_id) for d in s.query(AssetDependency)] == [(c, b)]
    rec = records(rt, "asset")[-1]
    assert rec["action"] == "asset.updated"
    assert rec["changes"]["depends_on"] == [[a, b], [b]]
    assert rec["changes"]["criticality"] == ["other", "critical"]
    assert rec["changes"]["owner_email"] == [None, "p1@firm.eu"]
    with rt.work(admin.principal) as ctx:
        rows, total, _ = service.list_assets(ctx, criticality="critical", owner_id=owner)
        assert [r.id for r in rows] == [c]
        rows, total, _ = service.list_assets(ctx, type="database")
        assert total == 0
        assert service.find_asset_by_external_id(ctx, "A2").id == b  # type: ignore[union-attr]


# --- permissions ---------------------------------------------------------------------


def test_staff_cannot_read_or_write(rt: Runtime) -> None:
    staff = make_user(rt, Role.STAFF)
    refused(rt, staff, lambda ctx: service.create_person(ctx, person_in(1)), PermissionDenied)
    with pytest.raises(PermissionDenied), rt.work(staff.principal) as ctx:
        service.list_people(ctx)
    assert count(rt, Person) == 0


def test_auditor_reads_but_cannot_write(rt: Runtime, admin: Made) -> None:
    auditor = make_user(rt, Role.AUDITOR)
    pid = add_person(rt, admin, 1)
    with rt.work(auditor.principal) as ctx:
        assert service.get_person(ctx, pid).email == "p1@firm.eu"
        assert service.list_assets(ctx)[1] == 0
    refused(rt, auditor, lambda ctx: service.update_person(ctx, pid, person_in(1, full_name="X")), PermissionDenied)
    site = SiteIn(external_id="S", name="S", kind="office")
    refused(rt, auditor, lambda ctx: service.create_site(ctx, site), PermissionDenied)
    with rt.session() as s:
        assert s.get(Person, pid).full_name == "Person 1"  # type: ignore[union-attr]


def test_security_officer_without_mfa_cannot_write(rt: Runtime) -> None:
    so = make_user(rt, Role.SECURITY_OFFICER, enrol_mfa=False)
    err = refused(rt, so, lambda ctx: service.create_person(ctx, person_in(1)), PermissionDenied)
    assert "MFA" in str(err)


def test_each_register_write_leaves_exactly_one_record(rt: Runtime, admin: Made) -> None:
    owner = add_person(rt, admin, 1)
    writes: list[tuple[str, Callable[[Any], Any], dict[str, list[Any]]]] = [
        (
            "site",
            lambda ctx: service.create_site(ctx, SiteIn(external_id="S1", name="HQ", kind="office", owner_id=owner)),
            {"name": [None, "HQ"], "owner_email": [None, "p1@firm.eu"]},
        ),
        (
            "zone",
            lambda ctx: service.create_zone(
                ctx, ZoneIn(external_id="Z1", site_id=1, name="Vault", kind="safe_room", criticality="critical")
            ),
            {"kind": [None, "safe_room"], "site_external_id": [None, "S1"]},
        ),
        (
            "provider",
            lambda ctx: service.create_provider(
                ctx, ProviderIn(external_id="P1", name="Cloud", criticality="critical", contact_email="Ops@Cloud.EU")
            ),
            {"contact_email": [None, "ops@cloud.eu"], "criticality": [None, "critical"]},
        ),
        (
            "provider",
            lambda ctx: service.update_provider(
                ctx, 1, ProviderIn(external_id="P1", name="Cloud", criticality="important", contact_email=None)
            ),
            {"contact_email": ["ops@cloud.eu", None], "criticality": ["critical", "important"]},
        ),
        (
            "zone",
            lambda ctx: service.update_zone(
                ctx, 1, ZoneIn(external_id="Z1", site_id=1, name="Vault", kind="safe_room", criticality="important")
            ),
            {"criticality": ["critical", "important"]},
        ),
    ]
    for object_type, write, expected in writes:
        size = ledger_size(rt)
        with rt.work(admin.principal) as ctx:
            write(ctx)
        assert ledger_size(rt) == size + 1
        changes = records(rt, object_type)[-1]["changes"]
        for field, pair in expected.items():
            assert changes[field] == pair, (object_type, field)
        if changes.get("created_at"):
            assert changes["created_at"][0] is None
        else:  # an update names only what changed, and when
            assert set(changes) - {"updated_at"} == set(expected)


def test_a_write_only_token_can_update(rt: Runtime, admin: Made) -> None:
    from dataclasses import replace

    from portcullis.core.permissions import Permission

    pid = add_person(rt, admin, 1)
    writer = replace(admin.principal, scopes=frozenset({Permission.INVENTORY_WRITE}))
    with rt.work(writer) as ctx:
        service.update_person(ctx, pid, person_in(1, job_title="CTO"))
    with pytest.raises(PermissionDenied), rt.work(writer) as ctx:
        service.get_person(ctx, pid)
