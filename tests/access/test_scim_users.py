"""SCIM Users: joiners, movers and leavers from the IdP change inventory people, audited, on both databases."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from portcullis.access import catalogue
from portcullis.access.models import Grant
from portcullis.access.schemas import AccessRoleIn
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory.models import Person
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from tests.access.scim_helpers import (
    BASE,
    ENTERPRISE_URN,
    ERROR_URN,
    SCIM_JSON,
    auth,
    idp_token,
    new_user,
    patch,
    scim_client,
)
from tests.access.workflow_world import SYSTEM, build_world

TODAY = date(2026, 11, 24)  # the frozen clock's day


def person(rt: Runtime, person_id: int | str) -> Person:
    with rt.session() as s:
        p = s.get(Person, int(person_id))
        assert p is not None
        s.expunge(p)
        return p


def audit(rt: Runtime, object_id: int | str) -> list[dict[str, Any]]:
    with rt.session() as s:
        rows = s.scalars(
            select(LedgerRecord)
            .where(LedgerRecord.object_type == "person", LedgerRecord.object_id == str(object_id))
            .order_by(LedgerRecord.id)
        )
        return [decode(r) for r in rows]


def is_scim_error(r: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body: dict[str, Any] = r.json()
    assert body["schemas"] == [ERROR_URN]
    assert body["status"] == str(status)
    assert body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


@pytest.fixture
def token(rt: Runtime) -> str:
    return idp_token(rt)


def create(c: Any, token: str, body: dict[str, Any]) -> dict[str, Any]:
    r = c.post(BASE + "/Users", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


# --- joiners -----------------------------------------------------------------------------------


def test_create_makes_a_joiner_in_the_register_and_the_ledger(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        boss = create(c, token, new_user("grace@kestrel.example.eu", "Grace Hopper", externalId="HR-100"))
        body = new_user(
            "Ada.Lovelace@kestrel.example.eu",
            "Ada Lovelace",
            externalId="HR-101",
            title="Custody engineer",
            schemas=["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
            **{ENTERPRISE_URN: {"department": "Engineering", "manager": {"value": boss["id"]}}},
        )
        r = c.post(BASE + "/Users", json=body, headers=auth(token))
    assert r.status_code == 201
    assert r.headers["content-type"].startswith(SCIM_JSON)
    out = r.json()
    assert r.headers["location"] == f"https://testserver/scim/v2/Users/{out['id']}"
    p = person(rt, out["id"])
    assert (p.email, p.full_name, p.external_id, p.job_title) == (
        "ada.lovelace@kestrel.example.eu",
        "Ada Lovelace",
        "HR-101",
        "Custody engineer",
    )
    assert (p.department, p.manager_id, p.status, p.idp_id) == (
        "Engineering",
        int(boss["id"]),
        "joiner",
        "Ada.Lovelace@kestrel.example.eu",
    )
    records = audit(rt, out["id"])
    assert [x["action"] for x in records] == ["person.created"]
    # The ledger names the admin whose token the IdP used, and that it came through SCIM.
    assert records[0]["actor"]["role"] == "admin"
    assert records[0]["actor"]["via"] == "scim"
    assert out[ENTERPRISE_URN]["manager"]["value"] == boss["id"]


def test_given_and_family_name_make_the_full_name(rt: Runtime, token: str) -> None:
    body = new_user("kat@kestrel.example.eu")
    body["name"] = {"givenName": "Katherine", "familyName": "Johnson"}
    with scim_client(rt) as c:
        out = create(c, token, body)
    assert person(rt, out["id"]).full_name == "Katherine Johnson"


def test_without_external_id_the_person_gets_a_scim_one_not_shown_back(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("nohr@kestrel.example.eu"))
    assert person(rt, out["id"]).external_id.startswith("scim:")
    assert "externalId" not in out


def test_a_user_name_that_is_not_an_email_takes_the_email_from_emails(rt: Runtime, token: str) -> None:
    body = new_user("jdoe@kestrel.example.eu")
    body["userName"] = "jdoe"
    with scim_client(rt) as c:
        out = create(c, token, body)
    p = person(rt, out["id"])
    assert (p.email, p.idp_id) == ("jdoe@kestrel.example.eu", "jdoe")
    assert out["userName"] == "jdoe"


def test_duplicate_user_name_is_a_uniqueness_error_and_changes_nothing(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        create(c, token, new_user("dup@kestrel.example.eu", externalId="HR-1"))
        r = c.post(BASE + "/Users", json=new_user("dup@kestrel.example.eu", "Other"), headers=auth(token))
        body = is_scim_error(r, 409, "uniqueness")
        assert "userName" in body["detail"]
        r = c.post(BASE + "/Users", json=new_user("other@kestrel.example.eu", externalId="HR-1"), headers=auth(token))
        assert "externalId" in is_scim_error(r, 409, "uniqueness")["detail"]
    with rt.session() as s:
        assert len(list(s.scalars(select(Person)))) == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"emails": [], "userName": "nomail"}, "email"),
        ({"name": {}}, "name"),
        ({"active": "yes"}, "active"),
        ({"title": {"a": 1}}, "title"),
        ({"phoneNumbers": [{"value": "1"}], "userName": ""}, "userName"),
    ],
)
def test_bad_users_are_refused_in_scim_format_naming_the_attribute(
    rt: Runtime, token: str, change: dict[str, Any], words: str
) -> None:
    body = new_user("bad@kestrel.example.eu")
    body.update(change)
    with scim_client(rt) as c:
        r = c.post(BASE + "/Users", json=body, headers=auth(token))
    assert words in is_scim_error(r, 400, "invalidValue")["detail"]
    with rt.session() as s:
        assert s.scalar(select(Person.id)) is None


def test_a_body_that_is_not_json_is_invalid_syntax(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        r = c.post(BASE + "/Users", content=b"{not json", headers=auth(token))
    is_scim_error(r, 400, "invalidSyntax")


# --- movers ------------------------------------------------------------------------------------


def test_put_replaces_and_patch_moves_the_person(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        boss = create(c, token, new_user("boss@kestrel.example.eu", "Big Boss"))
        out = create(c, token, new_user("mover@kestrel.example.eu", "Mo Ver", externalId="HR-7", title="Analyst"))
        uid = out["id"]
        put = new_user("mover@kestrel.example.eu", "Mo Ver-Smith", title="Senior analyst")
        r = c.put(f"{BASE}/Users/{uid}", json=put, headers=auth(token))
        assert r.status_code == 200, r.text
        p = person(rt, uid)
        # externalId is HR's: a PUT that leaves it out keeps it.
        assert (p.full_name, p.job_title, p.external_id) == ("Mo Ver-Smith", "Senior analyst", "HR-7")
        ops = patch(
            {"op": "replace", "path": f"{ENTERPRISE_URN}:department", "value": "Risk"},
            {"op": "add", "path": f"{ENTERPRISE_URN}:manager", "value": {"value": boss["id"]}},
            {"op": "remove", "path": "title"},
            {"op": "replace", "value": {"name": {"formatted": "Mo Smith"}}},
            # A userName that is not an address leaves the email to emails.
            {"op": "replace", "path": "userName", "value": "msmith"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "mo.smith@kestrel.example.eu"},
        )
        r = c.patch(f"{BASE}/Users/{uid}", json=ops, headers=auth(token))
        assert r.status_code == 200, r.text
    p = person(rt, uid)
    assert (p.department, p.manager_id, p.job_title, p.full_name, p.email, p.idp_id) == (
        "Risk",
        int(boss["id"]),
        "",
        "Mo Smith",
        "mo.smith@kestrel.example.eu",
        "msmith",
    )
    assert [x["action"] for x in audit(rt, uid)] == ["person.created", "person.updated", "person.updated"]


def test_manager_must_be_a_user(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("m@kestrel.example.eu"))
        r = c.patch(
            f"{BASE}/Users/{out['id']}",
            json=patch({"op": "replace", "path": f"{ENTERPRISE_URN}:manager", "value": {"value": "999"}}),
            headers=auth(token),
        )
    assert "manager" in is_scim_error(r, 400, "invalidValue")["detail"]
    assert person(rt, out["id"]).manager_id is None


@pytest.mark.parametrize(
    ("ops", "scim_type"),
    [
        ([{"op": "remove", "path": "userName"}], "mutability"),
        ([{"op": "remove", "path": "emails"}], "mutability"),
        ([{"op": "move", "path": "title", "value": "x"}], "invalidSyntax"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "replace", "path": "shoeSize", "value": 42}], "invalidPath"),
        ([], "invalidSyntax"),
    ],
)
def test_bad_patches_are_refused_and_change_nothing(
    rt: Runtime, token: str, ops: list[dict[str, Any]], scim_type: str
) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("p@kestrel.example.eu", title="Keeper"))
        r = c.patch(f"{BASE}/Users/{out['id']}", json=patch(*ops), headers=auth(token))
        is_scim_error(r, 400, scim_type)
    assert person(rt, out["id"]).job_title == "Keeper"
    assert len(audit(rt, out["id"])) == 1


def test_a_patch_without_the_patchop_schema_is_refused(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("s@kestrel.example.eu"))
        r = c.patch(
            f"{BASE}/Users/{out['id']}", json={"Operations": [{"op": "remove", "path": "title"}]}, headers=auth(token)
        )
    is_scim_error(r, 400, "invalidSyntax")


# --- leavers and rehires -------------------------------------------------------------------------


def test_active_false_makes_a_leaver_and_revokes_their_grants(rt: Runtime) -> None:
    w = build_world(rt)
    token = idp_token(rt)
    with rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(
            ctx, AccessRoleIn(key="eng-read", name="Engineering read", entitlement_ids=[w.ents["app-read"]])
        )
        from portcullis.access import grants

        held = grants.grant_role(ctx, w.people["ben"], role.id, "joined engineering")
    assert len(held) == 1
    with scim_client(rt) as c:
        r = c.patch(
            f"{BASE}/Users/{w.people['ben']}",
            json=patch({"op": "replace", "path": "active", "value": False}),
            headers=auth(token),
        )
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False
    p = person(rt, w.people["ben"])
    assert (p.status, p.end_date) == ("leaver", TODAY)
    with rt.session() as s:
        g = s.get(Grant, held[0].id)
        assert g is not None
        assert (g.status, g.end_reason) == ("revoked", "leaver")


def test_active_true_rehires_a_leaver(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("back@kestrel.example.eu", active=False))
        assert (person(rt, out["id"]).status, person(rt, out["id"]).end_date) == ("leaver", TODAY)
        r = c.patch(
            f"{BASE}/Users/{out['id']}", json=patch({"op": "replace", "value": {"active": True}}), headers=auth(token)
        )
        assert r.status_code == 200, r.text
    p = person(rt, out["id"])
    assert (p.status, p.end_date, p.start_date) == ("active", None, TODAY)


def test_delete_makes_a_leaver_never_deletes_and_a_new_post_is_a_rehire(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("gone@kestrel.example.eu", externalId="HR-9"))
        uid = out["id"]
        r = c.delete(f"{BASE}/Users/{uid}", headers=auth(token))
        assert r.status_code == 204
        p = person(rt, uid)  # still in the register, with its history
        assert (p.status, p.end_date, p.idp_id) == ("leaver", TODAY, None)
        is_scim_error(c.get(f"{BASE}/Users/{uid}", headers=auth(token)), 404)
        listed = c.get(f"{BASE}/Users", params={"filter": 'externalId eq "HR-9"'}, headers=auth(token)).json()
        assert listed["totalResults"] == 0
        is_scim_error(c.delete(f"{BASE}/Users/{uid}", headers=auth(token)), 404)
        again = create(c, token, new_user("gone@kestrel.example.eu", "Back Again", externalId="HR-9"))
    assert again["id"] == uid
    p = person(rt, uid)
    assert (p.status, p.full_name, p.end_date) == ("active", "Back Again", None)
    assert [x["action"] for x in audit(rt, uid)] == ["person.created", "person.updated", "person.updated"]


# --- Entra's deviations ---------------------------------------------------------------------------

ENTRA_PATCHES = [
    patch({"op": "Replace", "path": "active", "value": False}),
    patch({"op": "replace", "path": "active", "value": "False"}),
    patch({"op": "Replace", "value": {"active": "False"}}),
]


@pytest.mark.parametrize("body", ENTRA_PATCHES)
def test_entra_deviations_are_refused_without_the_setting(rt: Runtime, token: str, body: dict[str, Any]) -> None:
    assert rt.settings.scim_entra_compat is False
    with scim_client(rt) as c:
        out = create(c, token, new_user("e@kestrel.example.eu"))
        r = c.patch(f"{BASE}/Users/{out['id']}", json=body, headers=auth(token))
    assert "PORTCULLIS_SCIM_ENTRA_COMPAT" in is_scim_error(r, 400, "invalidValue")["detail"]
    assert person(rt, out["id"]).status == "joiner"


@pytest.mark.parametrize("body", ENTRA_PATCHES)
def test_entra_deviations_are_accepted_with_the_setting(rt: Runtime, token: str, body: dict[str, Any]) -> None:
    rt.settings.scim_entra_compat = True
    with scim_client(rt) as c:
        out = create(c, token, new_user("e@kestrel.example.eu"))
        r = c.patch(f"{BASE}/Users/{out['id']}", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    assert (person(rt, out["id"]).status, person(rt, out["id"]).end_date) == ("leaver", TODAY)


def test_entra_path_keys_in_a_value_object_need_the_setting(rt: Runtime, token: str) -> None:
    body = patch({"op": "replace", "value": {f"{ENTERPRISE_URN}:department": "Ops", "name.givenName": "Al"}})
    with scim_client(rt) as c:
        out = create(c, token, new_user("k@kestrel.example.eu"))
        is_scim_error(c.patch(f"{BASE}/Users/{out['id']}", json=body, headers=auth(token)), 400, "invalidPath")
        assert person(rt, out["id"]).department == ""
        rt.settings.scim_entra_compat = True
        r = c.patch(f"{BASE}/Users/{out['id']}", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    assert person(rt, out["id"]).department == "Ops"


def test_entra_string_booleans_on_creation_need_the_setting(rt: Runtime, token: str) -> None:
    body = new_user("s@kestrel.example.eu", active="True")
    with scim_client(rt) as c:
        is_scim_error(c.post(BASE + "/Users", json=body, headers=auth(token)), 400, "invalidValue")
        rt.settings.scim_entra_compat = True
        out = create(c, token, body)
    assert person(rt, out["id"]).status == "joiner"


# --- filter and paging -----------------------------------------------------------------------------


def test_filter_by_user_name_and_external_id(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        for i in range(3):
            create(c, token, new_user(f"u{i}@kestrel.example.eu", externalId=f"HR-{i}"))

        def ids(flt: str) -> list[str]:
            r = c.get(BASE + "/Users", params={"filter": flt}, headers=auth(token))
            assert r.status_code == 200, r.text
            return [x["userName"] for x in r.json()["Resources"]]

        assert ids('userName eq "u1@kestrel.example.eu"') == ["u1@kestrel.example.eu"]
        assert ids('username EQ "U2@KESTREL.example.eu"') == ["u2@kestrel.example.eu"]
        assert ids('externalId eq "HR-0"') == ["u0@kestrel.example.eu"]
        assert ids('externalId eq "HR-404"') == []
        r = c.get(BASE + "/Users", params={"filter": 'title co "x"'}, headers=auth(token))
        is_scim_error(r, 400, "invalidFilter")


def test_filter_finds_people_imported_before_scim_by_email(rt: Runtime, token: str) -> None:
    w = build_world(rt)
    with scim_client(rt) as c:
        r = c.get(BASE + "/Users", params={"filter": 'userName eq "ana@kestrel.example.eu"'}, headers=auth(token))
    assert [x["id"] for x in r.json()["Resources"]] == [str(w.people["ana"])]


def test_paging_with_start_index_and_count(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        made = [create(c, token, new_user(f"p{i}@kestrel.example.eu"))["id"] for i in range(5)]

        def page(**params: Any) -> dict[str, Any]:
            r = c.get(BASE + "/Users", params=params, headers=auth(token))
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

        first = page(startIndex=1, count=2)
        assert [x["id"] for x in first["Resources"]] == made[:2]
        assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
        last = page(startIndex=5, count=2)
        assert [x["id"] for x in last["Resources"]] == made[4:]
        assert page(startIndex=0, count=1)["Resources"][0]["id"] == made[0]
        none = page(count=0)
        assert (none["totalResults"], none["Resources"]) == (5, [])
        is_scim_error(c.get(BASE + "/Users", params={"count": "many"}, headers=auth(token)), 400, "invalidValue")


def test_attributes_and_excluded_attributes(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        out = create(c, token, new_user("a@kestrel.example.eu", title="Clerk"))
        only = c.get(f"{BASE}/Users/{out['id']}", params={"attributes": "title"}, headers=auth(token)).json()
        without = c.get(
            f"{BASE}/Users/{out['id']}", params={"excludedAttributes": "title,emails"}, headers=auth(token)
        ).json()
    assert only["title"] == "Clerk"
    assert "emails" not in only
    assert "userName" not in only
    assert "title" not in without
    assert "emails" not in without
    assert without["userName"] == "a@kestrel.example.eu"


# --- authentication and permission -------------------------------------------------------------

ROUTES = [
    ("GET", "/ServiceProviderConfig"),
    ("GET", "/Schemas"),
    ("GET", "/ResourceTypes"),
    ("GET", "/Users"),
    ("POST", "/Users"),
    ("GET", "/Users/1"),
    ("PUT", "/Users/1"),
    ("PATCH", "/Users/1"),
    ("DELETE", "/Users/1"),
    ("GET", "/Nowhere"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_without_a_valid_token(rt: Runtime, method: str, path: str) -> None:
    with scim_client(rt) as c:
        r = c.request(method, BASE + path, json=new_user("x@kestrel.example.eu"))
        assert "Bearer" in is_scim_error(r, 401)["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = c.request(method, BASE + path, headers=auth("pc_nope.nope"), json=new_user("x@kestrel.example.eu"))
        is_scim_error(r, 401)
    with rt.session() as s:
        assert s.scalar(select(Person.id)) is None


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_tokens_that_may_not_provision(rt: Runtime, method: str, path: str) -> None:
    # An admin's token scoped to something else, and a staff member's full token.
    narrow = idp_token(rt, scopes=["inventory.write"])
    staff = idp_token(rt, scopes=["self", "access.request"], role=Role.STAFF)
    with scim_client(rt) as c:
        for token in (narrow, staff):
            r = c.request(method, BASE + path, headers=auth(token), json=new_user("x@kestrel.example.eu"))
            assert "identity.provision" in is_scim_error(r, 403)["detail"]
    with rt.session() as s:
        assert s.scalar(select(Person.id)) is None


def test_the_provision_scope_does_not_open_the_rest_of_the_api(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        r = c.get("/api/v1/people", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403


def test_unknown_endpoints_and_methods_answer_in_scim_format(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        is_scim_error(c.get(BASE + "/Nowhere", headers=auth(token)), 404)
        is_scim_error(c.delete(BASE + "/Schemas", headers=auth(token)), 405)
        is_scim_error(c.get(BASE + "/Users/abc", headers=auth(token)), 404)
