"""The access catalogue over REST: create, read, filter, page, problem details naming fields, permissions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portcullis.access.api_catalogue import router
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.access.test_catalogue import World, build_world
from tests.factories import make_user
from tests.inventory.test_service import records

API = "/api/v1"


@pytest.fixture
def world(rt: Runtime) -> World:
    return build_world(rt, make_user(rt, Role.ADMIN))


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    from portcullis.app import create_app

    app = create_app(rt)
    # Until the lead includes the access routers in create_app.
    if not any(getattr(r, "path", "") == f"{API}/entitlements" for r in app.routes):
        app.include_router(router, prefix=API)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def _problem(r: Any, status: int) -> list[str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in r.json()["errors"]]


def test_entitlements_create_read_update_filter_and_page(api: TestClient, world: World) -> None:
    h = world.admin.headers
    ids = []
    for n in range(5):
        body = {"key": f"crm.e{n}", "name": f"CRM {n}", "asset_id": world.important_asset_id, "privileged": n >= 3}
        r = api.post(f"{API}/entitlements", headers=h, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    got = api.get(f"{API}/entitlements/{ids[3]}", headers=h).json()
    assert (got["key"], got["asset_external_id"], got["target_kind"], got["required_approvals"]) == (
        "crm.e3",
        "A-2",
        "asset",
        2,
    )
    page1 = api.get(f"{API}/entitlements", headers=h, params={"limit": 3}).json()
    page2 = api.get(f"{API}/entitlements", headers=h, params={"limit": 3, "after": page1["next_after"]}).json()
    assert [e["key"] for e in page1["items"] + page2["items"]] == [f"crm.e{n}" for n in range(5)]
    assert (page1["total"], page2["next_after"]) == (5, None)
    priv = api.get(f"{API}/entitlements", headers=h, params={"privileged": "true"}).json()
    assert [e["key"] for e in priv["items"]] == ["crm.e3", "crm.e4"]

    body = {"key": "crm.e0", "name": "Door", "zone_id": world.zone_id, "max_duration_days": 7}
    r = api.put(f"{API}/entitlements/{ids[0]}", headers=h, json=body)
    assert r.status_code == 200, r.text
    again = api.get(f"{API}/entitlements", headers=h, params={"zone_id": world.zone_id}).json()["items"]
    assert [(e["id"], e["zone_external_id"], e["max_duration_days"]) for e in again] == [(ids[0], "Z-1", 7)]
    assert records(rt_of(api), "entitlement")[-1]["action"] == "entitlement.updated"


def rt_of(client: TestClient) -> Runtime:
    rt: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return rt


def test_entitlement_problems_name_the_field(api: TestClient, world: World) -> None:
    h = world.admin.headers
    r = api.post(f"{API}/entitlements", headers=h, json={"key": "x", "name": "X", "asset_id": 999})
    assert _problem(r, 422) == ["asset_id"]
    r = api.post(
        f"{API}/entitlements",
        headers=h,
        json={
            "key": "x",
            "name": "X",
            "asset_id": world.critical_asset_id,
            "privileged": True,
            "approvers": ["manager"],
        },
    )
    assert _problem(r, 422) == ["approvers"]
    assert "owner" in r.json()["errors"][0]["message"]
    # Both targets at once: refused by the schema.
    r = api.post(
        f"{API}/entitlements",
        headers=h,
        json={"key": "x", "name": "X", "asset_id": world.important_asset_id, "zone_id": world.zone_id},
    )
    _problem(r, 422)
    assert "exactly one" in r.json()["errors"][0]["message"]
    ok = api.post(f"{API}/entitlements", headers=h, json={"key": "x", "name": "X", "zone_id": world.zone_id})
    assert ok.status_code == 201
    r = api.post(f"{API}/entitlements", headers=h, json={"key": "x", "name": "Y", "zone_id": world.zone_id})
    assert _problem(r, 409) == ["key"]
    assert api.get(f"{API}/entitlements/4242", headers=h).status_code == 404


def test_roles_sod_training_mappings_and_links(api: TestClient, world: World) -> None:
    h = world.admin.headers
    pay = api.post(f"{API}/entitlements", headers=h, json={"key": "pay", "name": "P", "zone_id": world.zone_id}).json()
    chk = api.post(f"{API}/entitlements", headers=h, json={"key": "chk", "name": "C", "zone_id": world.zone_id}).json()

    r = api.post(f"{API}/roles", headers=h, json={"key": "ops", "name": "Ops", "entitlement_ids": [pay["id"], 999]})
    assert _problem(r, 422) == ["entitlement_ids"]
    r = api.post(
        f"{API}/roles",
        headers=h,
        json={"key": "ops", "name": "Ops", "entitlement_ids": [pay["id"]], "departments": ["IT"]},
    )
    assert r.status_code == 201, r.text
    role = r.json()
    assert role["entitlement_keys"] == ["pay"]
    r = api.put(
        f"{API}/roles/{role['id']}", headers=h, json={"key": "ops", "name": "Ops", "entitlement_ids": [chk["id"]]}
    )
    assert r.json()["entitlement_keys"] == ["chk"]
    assert api.get(f"{API}/roles/{role['id']}", headers=h).json()["departments"] == []
    assert [x["key"] for x in api.get(f"{API}/roles", headers=h, params={"q": "OPS"}).json()["items"]] == ["ops"]

    same = {"name": "Bad", "left_entitlement_id": pay["id"], "right_entitlement_id": pay["id"]}
    assert _problem(api.post(f"{API}/sod-rules", headers=h, json=same), 422) == ["right_entitlement_id"]
    rule = {"name": "Maker-checker", "left_entitlement_id": pay["id"], "right_entitlement_id": chk["id"]}
    assert api.post(f"{API}/sod-rules", headers=h, json=rule).status_code == 201
    listed = api.get(f"{API}/sod-rules", headers=h, params={"entitlement_id": chk["id"]}).json()
    assert [(x["left"], x["right"]) for x in listed["items"]] == [("entitlement pay", "entitlement chk")]

    t = {
        "person_id": world.alice_id,
        "course": "AML",
        "completed_at": "2026-01-10T00:00:00Z",
        "expires_at": "2025-01-01",
    }
    assert _problem(api.post(f"{API}/training-records", headers=h, json=t), 422) == ["expires_at"]
    t["expires_at"] = "2027-01-10T00:00:00Z"
    assert api.post(f"{API}/training-records", headers=h, json=t).status_code == 201
    t["person_id"] = world.bob_id
    assert api.post(f"{API}/training-records", headers=h, json=t).status_code == 201
    mine = api.get(f"{API}/training-records", headers=h, params={"person_id": world.alice_id}).json()
    assert [(x["person_id"], x["course"]) for x in mine["items"]] == [(world.alice_id, "AML")]

    m = {"system": "ldap", "group_name": "cn=pay", "entitlement_id": pay["id"]}
    assert api.post(f"{API}/group-mappings", headers=h, json=m).status_code == 201
    assert _problem(api.post(f"{API}/group-mappings", headers=h, json=m), 409) == ["group_name"]
    assert api.get(f"{API}/group-mappings", headers=h, params={"system": "okta"}).json()["total"] == 0

    staff = make_user(rt_of(api), Role.STAFF)
    r = api.post(f"{API}/identities/link", headers=h, json={"user_id": staff.user.id, "person_id": 999})
    assert _problem(r, 422) == ["person_id"]
    r = api.post(f"{API}/identities/link", headers=h, json={"user_id": staff.user.id, "person_id": world.bob_id})
    assert r.status_code == 200, r.text
    other = make_user(rt_of(api), Role.APPROVER)
    r = api.post(f"{API}/identities/link", headers=h, json={"user_id": other.user.id, "person_id": world.bob_id})
    assert _problem(r, 409) == ["person_id"]


def test_staff_read_the_catalogue_but_nothing_else(api: TestClient, world: World) -> None:
    h = world.admin.headers
    api.post(f"{API}/entitlements", headers=h, json={"key": "door", "name": "Door", "zone_id": world.zone_id})
    staff = make_user(rt_of(api), Role.STAFF).headers
    assert [e["key"] for e in api.get(f"{API}/entitlements", headers=staff).json()["items"]] == ["door"]
    assert api.get(f"{API}/roles", headers=staff).status_code == 200
    r = api.post(f"{API}/entitlements", headers=staff, json={"key": "x", "name": "X", "zone_id": world.zone_id})
    assert r.status_code == 403
    assert api.get(f"{API}/sod-rules", headers=staff).status_code == 403
    assert api.get(f"{API}/training-records", headers=staff).status_code == 403
