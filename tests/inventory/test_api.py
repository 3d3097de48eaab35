"""The inventory REST API: create, filter, page, and problem details naming the field."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from portcullis.core.lei import with_check_digits
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory.models import Asset, Person
from tests.factories import make_user
from tests.inventory.test_service import count, records

API = "/api/v1"


def _person(n: int, **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"external_id": f"HR-{n}", "email": f"p{n}@firm.eu", "full_name": f"Person {n}"}
    body.update(kw)
    return body


def test_people_create_filter_and_page_across_pages(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.SECURITY_OFFICER).headers
    for n in range(1, 8):
        r = client.post(f"{API}/people", headers=h, json=_person(n, department="Ops" if n != 4 else "Legal"))
        assert r.status_code == 201, r.text
    assert r.json()["email"] == "p7@firm.eu"

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        params: dict[str, Any] = {"department": "Ops", "limit": 4}
        if after is not None:
            params["after"] = after
        page = client.get(f"{API}/people", headers=h, params=params).json()
        assert page["total"] == 6
        seen += [p["external_id"] for p in page["items"]]
        pages += 1
        after = page["next_after"]
        if after is None:
            break
    assert pages == 2
    assert seen == ["HR-1", "HR-2", "HR-3", "HR-5", "HR-6", "HR-7"]

    r = client.get(f"{API}/people", headers=h, params={"q": "person 4"})
    assert [p["department"] for p in r.json()["items"]] == ["Legal"]


def test_update_and_read_back(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.ADMIN).headers
    boss = client.post(f"{API}/people", headers=h, json=_person(1)).json()["id"]
    pid = client.post(f"{API}/people", headers=h, json=_person(2)).json()["id"]
    r = client.put(f"{API}/people/{pid}", headers=h, json=_person(2, manager_id=boss, status="active"))
    assert r.status_code == 200, r.text
    got = client.get(f"{API}/people/{pid}", headers=h).json()
    assert (got["manager_email"], got["status"]) == ("p1@firm.eu", "active")
    assert [rec["action"] for rec in records(rt, "person")] == ["person.created", "person.created", "person.updated"]


def test_not_found_is_problem_json(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.AUDITOR).headers
    for path in ("people", "sites", "zones", "providers", "assets"):
        r = client.get(f"{API}/{path}/424242", headers=h)
        assert r.status_code == 404, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "424242" in r.json()["detail"]
    r = client.get(f"{API}/organisation", headers=h)
    assert r.status_code == 404


def test_schema_errors_name_the_field(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.ADMIN).headers
    r = client.post(f"{API}/providers", headers=h, json={"external_id": "P1", "name": "X", "criticality": "vital"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["criticality"]

    r = client.put(f"{API}/organisation", headers=h, json={"legal_name": "X", "staff_count": 5, "lei": "5299001234"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["lei"]

    r = client.get(f"{API}/assets", headers=h, params={"limit": 501})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["query.limit"]


def test_rule_errors_name_the_field_and_write_nothing(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.ADMIN).headers
    r = client.post(
        f"{API}/assets",
        headers=h,
        json={"external_id": "A1", "name": "Wallet signer", "type": "hsm", "criticality": "critical"},
    )
    assert r.status_code == 422
    body = r.json()
    assert body["errors"] == [{"field": "owner_id", "message": "a critical asset needs an owner (§17 i)"}]
    assert count(rt, Asset) == 0

    client.post(f"{API}/people", headers=h, json=_person(1, idp_id="okta-1"))
    r = client.post(f"{API}/people", headers=h, json=_person(2, idp_id="okta-1"))
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "idp_id"
    assert "okta-1" in r.json()["detail"]
    assert count(rt, Person) == 1


def test_organisation_defaults_and_overrides(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.SECURITY_OFFICER).headers
    org = {"legal_name": "Example", "lei": with_check_digits("529900EXAMPLE00001"), "staff_count": 60}
    r = client.put(f"{API}/organisation", headers=h, json=org)
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "standard"

    reason = "Weekly is what our regulator expects"
    r = client.put(
        f"{API}/organisation/overrides", headers=h, json={"key": "review_days.critical", "value": 7, "reason": reason}
    )
    assert r.status_code == 200, r.text
    defaults = {d["key"]: d for d in client.get(f"{API}/organisation/defaults", headers=h).json()}
    assert (defaults["review_days.critical"]["value"], defaults["review_days.critical"]["reason"]) == (7, reason)
    assert defaults["review_days.other"]["overridden"] is False

    r = client.put(f"{API}/organisation/overrides", headers=h, json={"key": "nope", "value": 7, "reason": reason})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "key"

    r = client.delete(f"{API}/organisation/overrides/review_days.critical", headers=h, params={"reason": "short"})
    assert r.status_code == 422
    r = client.delete(
        f"{API}/organisation/overrides/review_days.critical", headers=h, params={"reason": "Back to the default"}
    )
    assert r.status_code == 200, r.text
    assert {d["key"]: d["value"] for d in r.json()}["review_days.critical"] == 90


def test_auditor_reads_but_cannot_write_over_the_api(rt: Runtime, client: TestClient) -> None:
    auditor = make_user(rt, Role.AUDITOR).headers
    assert client.get(f"{API}/assets", headers=auditor).status_code == 200
    r = client.post(f"{API}/people", headers=auditor, json=_person(1))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    staff = make_user(rt, Role.STAFF).headers
    assert client.get(f"{API}/people", headers=staff).status_code == 403
    assert count(rt, Person) == 0


def test_site_zone_provider_asset_round_trip(rt: Runtime, client: TestClient) -> None:
    h = make_user(rt, Role.ADMIN).headers
    owner = client.post(f"{API}/people", headers=h, json=_person(1)).json()["id"]
    site = client.post(f"{API}/sites", headers=h, json={"external_id": "S1", "name": "HQ", "kind": "office"}).json()
    zone = client.post(
        f"{API}/zones",
        headers=h,
        json={"external_id": "Z1", "site_id": site["id"], "name": "Server room", "criticality": "critical"},
    ).json()
    prov = client.post(
        f"{API}/providers",
        headers=h,
        json={"external_id": "P1", "name": "Cloud", "criticality": "critical", "contract_end": "2027-03-31"},
    ).json()
    base = client.post(
        f"{API}/assets",
        headers=h,
        json={"external_id": "A1", "name": "DB", "type": "database", "criticality": "important"},
    ).json()
    r = client.post(
        f"{API}/assets",
        headers=h,
        json={
            "external_id": "A2",
            "name": "Exchange engine",
            "type": "application",
            "criticality": "critical",
            "owner_id": owner,
            "zone_id": zone["id"],
            "provider_id": prov["id"],
            "depends_on": [base["id"]],
        },
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["zone_external_id"], got["provider_external_id"], got["depends_on"]) == ("Z1", "P1", [base["id"]])
    r = client.get(f"{API}/assets", headers=h, params={"provider_id": prov["id"], "criticality": "critical"})
    assert [a["external_id"] for a in r.json()["items"]] == ["A2"]
    r = client.get(f"{API}/providers", headers=h, params={"contract_end_before": "2027-01-01"})
    assert r.json()["total"] == 0
    r = client.get(f"{API}/zones", headers=h, params={"site_id": site["id"]})
    assert [z["external_id"] for z in r.json()["items"]] == ["Z1"]
    r = client.put(f"{API}/sites/{site['id']}", headers=h, json={"external_id": "S1", "name": "HQ", "kind": "nope"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "kind"
