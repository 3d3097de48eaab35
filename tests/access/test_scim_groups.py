"""SCIM Groups: an access role whose members hold its entitlements as standing grants, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from portcullis.access import catalogue, grants
from portcullis.access.models import AccessRole, Grant, RoleMembership
from portcullis.access.schemas import AccessRoleIn
from portcullis.core.errors import ValidationFailed
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.access.scim_helpers import BASE, ERROR_URN, SCIM_JSON, auth, idp_token, patch, scim_client
from tests.access.workflow_world import SYSTEM, World, build_world, records

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def w(rt: Runtime) -> World:
    return build_world(rt)


@pytest.fixture
def token(rt: Runtime) -> str:
    return idp_token(rt)


def _role(w: World, key: str, *ents: str, **kw: Any) -> int:
    with w.rt.work(SYSTEM) as ctx:
        return catalogue.create_role(
            ctx, AccessRoleIn(key=key, name=key.title(), entitlement_ids=[w.ents[e] for e in ents], **kw)
        ).id


def _uid(w: World, name: str) -> str:
    return str(w.people[name])


def _members(*ids: str) -> list[dict[str, str]]:
    return [{"value": i} for i in ids]


def _open(w: World, role_id: int) -> dict[int, RoleMembership]:
    """Open memberships of the role by person id, from the database."""
    with w.rt.session() as s:
        rows = s.scalars(
            select(RoleMembership).where(RoleMembership.role_id == role_id, RoleMembership.ended_at.is_(None))
        )
        return {m.person_id: m for m in rows}


def _role_grants(w: World, role_id: int, status: str = "active") -> dict[int, set[int]]:
    """person id -> entitlement ids of their standing grants from the role, from the database."""
    out: dict[int, set[int]] = {}
    with w.rt.session() as s:
        for g in s.scalars(select(Grant).where(Grant.role_id == role_id, Grant.status == status)):
            assert g.kind == "standing"
            out.setdefault(g.person_id, set()).add(g.entitlement_id)
    return out


def is_scim_error(r: Any, status: int, scim_type: str | None = None) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(SCIM_JSON)
    body = r.json()
    assert (body["schemas"], body["status"]) == ([ERROR_URN], str(status))
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    detail: str = body["detail"]
    return detail


def _patch(c: Any, token: str, gid: int | str, *ops: dict[str, Any]) -> Any:
    return c.patch(f"{BASE}/Groups/{gid}", json=patch(*ops), headers=auth(token))


# --- creation and reading --------------------------------------------------------------------


def test_post_creates_a_role_with_its_members(w: World, token: str) -> None:
    body = {
        "schemas": [GROUP_URN],
        "displayName": "Custody Operators",
        "externalId": "8f2c-entra-object-id",
        "members": _members(_uid(w, "ana"), _uid(w, "olga")),
    }
    with scim_client(w.rt) as c:
        r = c.post(BASE + "/Groups", json=body, headers=auth(token))
        assert r.status_code == 201, r.text
        out = r.json()
        # a second group of the same name gets a key of its own
        other = c.post(BASE + "/Groups", json={"schemas": [GROUP_URN], "displayName": "Custody Operators!"},
                       headers=auth(token))
        assert other.status_code == 201, other.text
    assert r.headers["location"] == f"https://testserver/scim/v2/Groups/{out['id']}"
    with w.rt.session() as s:
        role = s.get(AccessRole, int(out["id"]))
        second = s.get(AccessRole, int(other.json()["id"]))
        assert role is not None
        assert second is not None
        assert (role.key, role.name, role.external_id) == ("8f2c-entra-object-id", "Custody Operators",
                                                           "8f2c-entra-object-id")
        assert (second.key, second.external_id) == ("custody-operators", None)
    members = _open(w, int(out["id"]))
    assert set(members) == {w.people["ana"], w.people["olga"]}
    assert {m.source for m in members.values()} == {"scim"}
    assert sorted(m["value"] for m in out["members"]) == sorted([_uid(w, "ana"), _uid(w, "olga")])
    assert out["members"][0]["$ref"].startswith("https://testserver/scim/v2/Users/")
    created = records(w.rt, "role.created")
    assert created[0]["actor"]["via"] == "scim"
    assert len(records(w.rt, "role_membership.started")) == 2


def test_slug_keys_are_made_unique(w: World, token: str) -> None:
    _role(w, "payments-desk")
    with scim_client(w.rt) as c:
        r = c.post(BASE + "/Groups", json={"schemas": [GROUP_URN], "displayName": "Payments  Desk"},
                   headers=auth(token))
    assert r.status_code == 201, r.text
    with w.rt.session() as s:
        assert s.get(AccessRole, int(r.json()["id"])).key == "payments-desk-2"  # type: ignore[union-attr]


def test_get_shows_members_and_their_names_on_request(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room")
    with w.rt.work(SYSTEM) as ctx:
        grants.grant_role(ctx, w.people["ana"], role, "catalogue grant")
    with scim_client(w.rt) as c:
        plain = c.get(f"{BASE}/Groups/{role}", headers=auth(token)).json()
        named = c.get(f"{BASE}/Groups/{role}?attributes=members.display,members.value", headers=auth(token)).json()
        bare = c.get(f"{BASE}/Groups/{role}?excludedAttributes=members", headers=auth(token)).json()
    assert (plain["id"], plain["displayName"], plain["meta"]["resourceType"]) == (str(role), "Ops", "Group")
    assert plain["members"] == [{"value": _uid(w, "ana"), "$ref": f"https://testserver/scim/v2/Users/{_uid(w, 'ana')}"}]
    assert named["members"] == [{"value": _uid(w, "ana"), "display": "Ana"}]
    assert "members" not in bare


def test_duplicate_external_id_and_unknown_members_are_refused(w: World, token: str) -> None:
    base = {"schemas": [GROUP_URN], "displayName": "Ops", "externalId": "ext-1"}
    with scim_client(w.rt) as c:
        assert c.post(BASE + "/Groups", json=base, headers=auth(token)).status_code == 201
        assert "ext-1" in is_scim_error(c.post(BASE + "/Groups", json=base, headers=auth(token)), 409, "uniqueness")
        bad = {**base, "externalId": "ext-2", "members": _members("999999")}
        assert "'999999' is not the id of a user" in is_scim_error(
            c.post(BASE + "/Groups", json=bad, headers=auth(token)), 400, "invalidValue"
        )
        is_scim_error(c.post(BASE + "/Groups", json={"schemas": [GROUP_URN]}, headers=auth(token)), 400)
        is_scim_error(c.get(BASE + "/Groups/424242", headers=auth(token)), 404)
    with w.rt.session() as s:
        assert list(s.scalars(select(AccessRole.external_id))) == ["ext-1"]


# --- membership makes and ends standing grants ----------------------------------------------------


def test_adding_members_makes_standing_grants_and_removing_revokes_them(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room", "app-read")
    ana, olga, sofia = w.people["ana"], w.people["olga"], w.people["sofia"]
    both = {w.ents["server-room"], w.ents["app-read"]}
    with scim_client(w.rt) as c:
        r = _patch(c, token, role, {"op": "add", "path": "members", "value": _members(str(ana), str(olga))})
        assert r.status_code == 200, r.text
        assert _role_grants(w, role) == {ana: both, olga: both}
        # adding a member again changes nothing (RFC 7644: no duplicates)
        r = _patch(c, token, role, {"op": "add", "path": "members", "value": _members(str(ana), str(sofia))})
        assert r.status_code == 200, r.text
        assert _role_grants(w, role) == {ana: both, olga: both, sofia: both}
        assert len(records(w.rt, "role_membership.started")) == 3
        r = _patch(c, token, role, {"op": "remove", "path": f'members[value eq "{olga}"]'})
        assert r.status_code == 200, r.text
        assert sorted(m["value"] for m in r.json()["members"]) == sorted([str(ana), str(sofia)])
        assert _role_grants(w, role) == {ana: both, sofia: both}
        assert _role_grants(w, role, "revoked") == {olga: both}
        r = _patch(c, token, role, {"op": "remove", "path": "members"})
        assert r.status_code == 200, r.text
        assert "members" not in r.json()
    assert _role_grants(w, role) == {}
    assert _open(w, role) == {}
    revoked = records(w.rt, "grant.revoked")
    assert len(revoked) == 6
    assert {x["reason"] for x in revoked} == {"SCIM: removed from group Ops"}


def test_put_replaces_the_name_and_diffs_the_members(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room")
    with w.rt.work(SYSTEM) as ctx:
        [kept] = [g.id for g in grants.grant_role(ctx, w.people["ana"], role, "catalogue grant")]
        grants.grant_role(ctx, w.people["olga"], role, "catalogue grant")
    body = {"schemas": [GROUP_URN], "displayName": "Operations", "members": _members(_uid(w, "ana"), _uid(w, "sofia"))}
    with scim_client(w.rt) as c:
        r = c.put(f"{BASE}/Groups/{role}", json=body, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.json()["displayName"] == "Operations"
    room = {w.ents["server-room"]}
    assert _role_grants(w, role) == {w.people["ana"]: room, w.people["sofia"]: room}
    assert _role_grants(w, role, "revoked") == {w.people["olga"]: room}
    with w.rt.session() as s:
        g = s.get(Grant, kept)
        assert g is not None
        assert g.status == "active"
        r2 = s.get(AccessRole, role)
        assert r2 is not None
        assert (r2.key, r2.name) == ("ops", "Operations")
    assert [x["changes"]["name"] for x in records(w.rt, "role.updated")] == [["Ops", "Operations"]]


def test_a_scim_leaver_loses_memberships_and_grants(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room")
    with scim_client(w.rt) as c:
        assert _patch(c, token, role, {"op": "add", "path": "members",
                                       "value": _members(_uid(w, "ana"), _uid(w, "olga"))}).status_code == 200
        r = c.patch(f"{BASE}/Users/{_uid(w, 'ana')}", json=patch({"op": "replace", "path": "active", "value": False}),
                    headers=auth(token))
        assert r.status_code == 200, r.text
        group = c.get(f"{BASE}/Groups/{role}", headers=auth(token)).json()
    assert [m["value"] for m in group["members"]] == [_uid(w, "olga")]
    assert set(_open(w, role)) == {w.people["olga"]}
    assert _role_grants(w, role, "revoked") == {w.people["ana"]: {w.ents["server-room"]}}
    with w.rt.session() as s:
        ended = s.scalars(select(RoleMembership).where(RoleMembership.person_id == w.people["ana"])).one()
        assert ended.end_reason == "leaver"


def test_an_ineligible_member_is_refused_with_reasons_and_nothing_changes(w: World, token: str) -> None:
    security = _role(w, "sec", "server-room", departments=["Security"])
    dba = _role(w, "dba", "db-admin")
    with scim_client(w.rt) as c:
        r = _patch(c, token, security, {"op": "add", "path": "members",
                                        "value": _members(_uid(w, "sofia"), _uid(w, "ana"))})
        detail = is_scim_error(r, 400, "invalidValue")
        assert "ana@kestrel.example.eu" in detail
        assert "department Engineering is not one of: Security" in detail
        # sofia was eligible and came first, yet the request is one unit of work
        assert _open(w, security) == {}
        assert _role_grants(w, security) == {}
        r = c.put(f"{BASE}/Groups/{dba}", json={"schemas": [GROUP_URN], "displayName": "Renamed",
                                               "members": _members(_uid(w, "ben"))}, headers=auth(token))
        assert "MFA is not enrolled" in is_scim_error(r, 400, "invalidValue")
        body = {"schemas": [GROUP_URN], "displayName": "New", "members": _members(_uid(w, "ben"))}
        # a leaver at the IdP is still a SCIM user, and may hold no access
        r = c.patch(f"{BASE}/Users/{_uid(w, 'ben')}", json=patch({"op": "replace", "path": "active", "value": False}),
                    headers=auth(token))
        assert r.status_code == 200, r.text
        r = c.post(BASE + "/Groups", json=body, headers=auth(token))
        assert "the person is a leaver and may hold no access" in is_scim_error(r, 400, "invalidValue")
    with w.rt.session() as s:
        assert s.get(AccessRole, dba).name == "Dba"  # type: ignore[union-attr]
        assert s.scalar(select(AccessRole.id).where(AccessRole.name == "New")) is None
        assert list(s.scalars(select(RoleMembership))) == []
        assert list(s.scalars(select(Grant))) == []


def test_delete_retires_the_role(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room")
    with scim_client(w.rt) as c:
        assert _patch(c, token, role, {"op": "add", "path": "members", "value": _members(_uid(w, "ana"))}
                      ).status_code == 200
        r = c.delete(f"{BASE}/Groups/{role}", headers=auth(token))
        assert r.status_code == 204
        is_scim_error(c.get(f"{BASE}/Groups/{role}", headers=auth(token)), 404)
        is_scim_error(c.delete(f"{BASE}/Groups/{role}", headers=auth(token)), 404)
        listed = c.get(BASE + "/Groups", headers=auth(token)).json()
    assert listed["totalResults"] == 0
    assert _open(w, role) == {}
    assert _role_grants(w, role, "revoked") == {w.people["ana"]: {w.ents["server-room"]}}
    with w.rt.session() as s:
        assert s.get(AccessRole, role).retired_at is not None  # type: ignore[union-attr]
    with w.rt.work(SYSTEM) as ctx, pytest.raises(ValidationFailed, match="cannot be granted"):
        grants.grant_role(ctx, w.people["olga"], role, "after retirement")


# --- filters and paging ---------------------------------------------------------------------------


def test_filters_and_paging(w: World, token: str) -> None:
    ids = [_role(w, f"team-{i}") for i in range(5)]
    with scim_client(w.rt) as c:
        c.post(BASE + "/Groups", json={"schemas": [GROUP_URN], "displayName": "Auditors", "externalId": "aud-9"},
               headers=auth(token))

        def get(query: str) -> dict[str, Any]:
            r = c.get(f"{BASE}/Groups?{query}", headers=auth(token))
            assert r.status_code == 200, r.text
            out: dict[str, Any] = r.json()
            return out

        page = get("startIndex=2&count=2")
        assert (page["totalResults"], page["startIndex"], page["itemsPerPage"]) == (6, 2, 2)
        assert [g["id"] for g in page["Resources"]] == [str(ids[1]), str(ids[2])]
        assert get("count=0")["Resources"] == []
        assert [g["displayName"] for g in get('filter=displayName eq "team-3"')["Resources"]] == ["Team-3"]
        assert [g["displayName"] for g in get('filter=externalId eq "aud-9"')["Resources"]] == ["Auditors"]
        assert get('filter=externalId eq "team-3"')["totalResults"] == 0  # catalogue roles have no externalId
        assert [g["id"] for g in get(f'filter=id eq "{ids[4]}"')["Resources"]] == [str(ids[4])]
        r = c.get(BASE + '/Groups?filter=displayName co "team"', headers=auth(token))
        is_scim_error(r, 400, "invalidFilter")


# --- authentication ------------------------------------------------------------------------------

GROUP_ROUTES = [
    ("GET", "/Groups"),
    ("POST", "/Groups"),
    ("GET", "/Groups/1"),
    ("PUT", "/Groups/1"),
    ("PATCH", "/Groups/1"),
    ("DELETE", "/Groups/1"),
]


@pytest.mark.parametrize(("method", "path"), GROUP_ROUTES)
def test_group_routes_refuse_without_a_token_or_the_permission(rt: Runtime, method: str, path: str) -> None:
    with rt.work(SYSTEM) as ctx:
        catalogue.create_role(ctx, AccessRoleIn(key="ops", name="Ops"))
    narrow = idp_token(rt, scopes=["access.admin"])
    staff = idp_token(rt, scopes=["self", "access.request"], role=Role.STAFF)
    body = {"schemas": [GROUP_URN], "displayName": "Intruders"}
    with scim_client(rt) as c:
        r = c.request(method, BASE + path, json=body)
        assert "Bearer" in is_scim_error(r, 401)
        for token in (narrow, staff):
            r = c.request(method, BASE + path, headers=auth(token), json=body)
            assert "identity.provision" in is_scim_error(r, 403)
    with rt.session() as s:
        assert list(s.scalars(select(AccessRole.name))) == ["Ops"]
        assert s.scalar(select(AccessRole.retired_at)) is None


def test_discovery_publishes_groups(rt: Runtime, token: str) -> None:
    with scim_client(rt) as c:
        types = c.get(BASE + "/ResourceTypes", headers=auth(token)).json()["Resources"]
        schemas = c.get(BASE + "/Schemas", headers=auth(token)).json()["Resources"]
        group_type = c.get(BASE + "/ResourceTypes/Group", headers=auth(token))
        group_schema = c.get(f"{BASE}/Schemas/{GROUP_URN}", headers=auth(token))
    assert {t["endpoint"] for t in types} == {"/Users", "/Groups"}
    assert GROUP_URN in {s["id"] for s in schemas}
    assert group_type.status_code == 200
    assert group_type.json()["schema"] == GROUP_URN
    attrs = {a["name"]: a for a in group_schema.json()["attributes"]}
    assert {"displayName", "members"} <= set(attrs)


# --- Microsoft Entra's deviations ------------------------------------------------------------------


def _entra_ops(w: World) -> list[dict[str, Any]]:
    return [
        {"op": "Add", "path": "members", "value": _members(_uid(w, "ana"), _uid(w, "olga"))},
        {"op": "Replace", "value": {"displayName": "Ops (Entra)"}},
    ]


def test_entra_capitalised_ops_need_the_setting(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room")
    assert w.rt.settings.scim_entra_compat is False
    with scim_client(w.rt) as c:
        detail = is_scim_error(_patch(c, token, role, *_entra_ops(w)), 400)
    assert "PORTCULLIS_SCIM_ENTRA_COMPAT" in detail
    assert _open(w, role) == {}


def test_entra_patches_are_accepted_with_the_setting(w: World, token: str) -> None:
    role = _role(w, "ops", "server-room")
    w.rt.settings.scim_entra_compat = True
    with scim_client(w.rt) as c:
        r = _patch(c, token, role, *_entra_ops(w))
        assert r.status_code == 200, r.text
        assert r.json()["displayName"] == "Ops (Entra)"
        assert set(_open(w, role)) == {w.people["ana"], w.people["olga"]}
        # Entra removes members with the ids in the value: only those go, not everyone
        r = _patch(c, token, role, {"op": "Remove", "path": "members", "value": _members(_uid(w, "olga"))})
        assert r.status_code == 200, r.text
    assert set(_open(w, role)) == {w.people["ana"]}
    assert _role_grants(w, role) == {w.people["ana"]: {w.ents["server-room"]}}
