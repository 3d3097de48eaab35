"""The request-to-grant workflow over the REST API, with problem details for every refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from portcullis.access import catalogue
from portcullis.access.schemas import AccessRoleIn
from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.access.workflow_world import JUSTIFICATION, SYSTEM, World, build_world
from tests.factories import make_user

API = "/api/v1"


@pytest.fixture
def w(rt: Runtime, client: TestClient) -> World:
    return build_world(rt)


def _h(w: World, name: str) -> dict[str, str]:
    return w.users[name].headers


def test_request_through_two_approvals_to_the_grant(w: World, client: TestClient) -> None:
    body = {
        "subject_id": w.people["ana"],
        "entitlement_id": w.ents["db-admin"],
        "justification": JUSTIFICATION,
        "duration_days": 2,
    }
    r = client.post(f"{API}/access-requests", json=body, headers=_h(w, "ana"))
    assert r.status_code == 201, r.text
    req = r.json()
    assert (req["status"], req["required_approvals"], req["subject_email"]) == ("pending", 2, "ana@kestrel.example.eu")
    rid = req["id"]

    inbox = client.get(f"{API}/approvals/inbox", headers=_h(w, "sofia"))
    assert [x["id"] for x in inbox.json()] == [rid]
    r = client.post(
        f"{API}/access-requests/{rid}/decisions", json={"approve": True, "comment": "ok"}, headers=_h(w, "sofia")
    )
    assert (r.status_code, r.json()["status"], r.json()["approvals"]) == (200, "pending", 1)
    assert client.get(f"{API}/approvals/inbox", headers=_h(w, "sofia")).json() == []
    r = client.post(f"{API}/access-requests/{rid}/decisions", json={"approve": True}, headers=_h(w, "olga"))
    assert r.json()["status"] == "approved"

    mine = client.get(f"{API}/me/access", headers=_h(w, "ana")).json()
    assert [(g["entitlement_key"], g["kind"], g["request_id"]) for g in mine] == [("db-admin", "time_bound", rid)]
    one = client.get(f"{API}/access-requests/{rid}", headers=_h(w, "ana")).json()
    assert [d["approver_email"] for d in one["decisions"]] == ["sofia@kestrel.example.eu", "olga@kestrel.example.eu"]

    page = client.get(f"{API}/grants", params={"asset_id": w.critical_asset_id}, headers=_h(w, "sofia")).json()
    assert page["total"] == 1
    gid = page["items"][0]["id"]
    r = client.post(f"{API}/grants/{gid}/revoke", json={"reason": "task done"}, headers=_h(w, "sofia"))
    assert (r.status_code, r.json()["status"], r.json()["end_reason"]) == (200, "revoked", "task done")
    assert client.get(f"{API}/me/access", headers=_h(w, "ana")).json() == []
    revoked = client.get(f"{API}/grants", params={"status": "revoked"}, headers=_h(w, "olga")).json()
    assert [g["id"] for g in revoked["items"]] == [gid]


def test_refusals_are_problem_details_naming_fields(w: World, client: TestClient) -> None:
    w.update_person("ben", status="suspended")
    body = {"subject_id": w.people["ben"], "entitlement_id": w.ents["db-admin"], "justification": JUSTIFICATION}
    r = client.post(f"{API}/access-requests", json=body, headers=_h(w, "ana"))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in r.json()["errors"]} == {"subject_id"}
    assert len(r.json()["errors"]) == 2  # suspended, and no MFA for privileged access

    r = client.post(
        f"{API}/access-requests", json={"subject_id": w.people["ana"], "justification": "short"}, headers=_h(w, "ana")
    )
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} >= {"justification"}

    rid = client.post(
        f"{API}/access-requests",
        json={"subject_id": w.people["ana"], "entitlement_id": w.ents["app-read"], "justification": JUSTIFICATION},
        headers=_h(w, "max"),
    ).json()["id"]
    r = client.post(f"{API}/access-requests/{rid}/decisions", json={"approve": True}, headers=_h(w, "max"))
    assert r.status_code == 403
    assert "request they made" in r.json()["detail"]
    r = client.post(f"{API}/access-requests/{rid}/decisions", json={"approve": True}, headers=_h(w, "ana"))
    assert r.status_code == 403  # staff hold no ACCESS_APPROVE
    r = client.post(f"{API}/access-requests/{rid}/decisions", json={"approve": False}, headers=_h(w, "olga"))
    assert r.json()["status"] == "rejected"
    r = client.post(f"{API}/access-requests/{rid}/decisions", json={"approve": True}, headers=_h(w, "sofia"))
    assert r.status_code == 409  # decided already, whoever asks
    r = client.post(f"{API}/access-requests/{rid}/cancel", headers=_h(w, "max"))
    assert (r.status_code, r.json()["title"]) == (409, "Conflict")
    assert client.get(f"{API}/access-requests/999999", headers=_h(w, "sofia")).status_code == 404
    r = client.post(f"{API}/grants/999999/revoke", json={"reason": "x"}, headers=_h(w, "sofia"))
    assert r.status_code == 404
    r = client.post(f"{API}/grants/1/revoke", json={"reason": ""}, headers=_h(w, "sofia"))
    assert r.status_code == 422


def test_listing_requests_by_who_may_see_them(w: World, client: TestClient, rt: Runtime) -> None:
    own = w.ask("ana", "ana", "server-room")
    other = w.ask("max", "ben", "server-room")
    page = client.get(f"{API}/access-requests", headers=_h(w, "ana")).json()
    assert [x["id"] for x in page["items"]] == [own]
    assert client.get(f"{API}/access-requests/{other}", headers=_h(w, "ana")).status_code == 403
    auditor = make_user(rt, Role.AUDITOR, email="audit@kestrel.example.eu")
    page = client.get(f"{API}/access-requests", params={"status": "pending"}, headers=auditor.headers).json()
    assert page["total"] == 2
    page = client.get(f"{API}/access-requests", params={"subject_id": w.people["ben"]}, headers=auditor.headers).json()
    assert [x["id"] for x in page["items"]] == [other]
    assert client.post(f"{API}/access/daily-pass", headers=auditor.headers).status_code == 403
    # a user linked to nobody has no requests, access or inbox of their own
    assert client.get(f"{API}/me/access", headers=auditor.headers).status_code == 403
    loner = make_user(rt, Role.STAFF, email="loner@kestrel.example.eu")
    assert client.get(f"{API}/me/access", headers=loner.headers).json() == []
    assert client.get(f"{API}/access-requests", headers=loner.headers).json()["total"] == 0
    cancel = client.post(f"{API}/access-requests/{own}/cancel", headers=_h(w, "ana"))
    assert cancel.json()["status"] == "cancelled"


def test_role_grant_findings_and_daily_pass(w: World, client: TestClient, clock: FrozenClock) -> None:
    with w.rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(
            ctx, AccessRoleIn(key="reader", name="Reader", entitlement_ids=[w.ents["app-read"]])
        )
    r = client.post(
        f"{API}/people/{w.people['ana']}/roles",
        json={"role_id": role.id, "reason": "joined support"},
        headers=_h(w, "sofia"),
    )
    assert r.status_code == 201, r.text
    [g] = r.json()
    assert (g["kind"], g["role_id"], g["expires_at"]) == ("standing", role.id, None)
    r = client.post(
        f"{API}/people/{w.people['ana']}/roles", json={"role_id": role.id, "reason": "again"}, headers=_h(w, "sofia")
    )
    assert r.status_code == 409
    assert (
        client.post(
            f"{API}/people/{w.people['ana']}/roles", json={"role_id": role.id, "reason": "x"}, headers=_h(w, "olga")
        ).status_code
        == 403
    )

    found = client.get(f"{API}/findings", headers=_h(w, "olga")).json()
    assert [(f["kind"], f["grant_id"], f["owner_email"]) for f in found["items"]] == [
        ("training_missing", g["id"], "olga@kestrel.example.eu")
    ]
    fid = found["items"][0]["id"]
    w.train("ana", "SEC-101", clock.now() - timedelta(days=1))
    r = client.post(f"{API}/access/daily-pass", headers=_h(w, "sofia"))
    assert (r.status_code, r.json()["resolved"], r.json()["grants"]) == (200, 1, 1)
    assert client.get(f"{API}/findings", headers=_h(w, "olga")).json()["total"] == 0
    closed = client.get(f"{API}/findings", params={"status": "resolved"}, headers=_h(w, "olga")).json()
    assert [f["id"] for f in closed["items"]] == [fid]
    r = client.post(f"{API}/findings/{fid}/resolve", json={"resolution": "done"}, headers=_h(w, "sofia"))
    assert r.status_code == 409
    w.update_person("ana", department="Support")
    [review] = client.get(f"{API}/findings", params={"kind": "mover_review"}, headers=_h(w, "sofia")).json()["items"]
    assert review["owner_email"] == "max@kestrel.example.eu"
    r = client.post(
        f"{API}/findings/{review['id']}/resolve", json={"resolution": "still needed"}, headers=_h(w, "sofia")
    )
    assert (r.json()["status"], r.json()["resolution"]) == ("resolved", "still needed")
