"""The events API: register a source (refused with the field named when wrong), search, export, quarantine."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.events.world import OPENSSH, EventWorld, build_event_world
from tests.factories import make_user


@pytest.fixture
def ew(rt: Runtime) -> EventWorld:
    return build_event_world(rt)


def test_sources_are_registered_and_refused_by_field(ew: EventWorld, client: TestClient) -> None:
    officer = make_user(ew.rt, Role.SECURITY_OFFICER).headers
    body = {
        "key": "bastion",
        "name": "Bastion",
        "format": "syslog",
        "asset": "A-DB",
        "config": {"parser": {"year": 2026}, "accounts": {"fztu": "HR-ana"}},
    }
    r = client.post("/api/v1/events/sources", json=body, headers=officer)
    assert r.status_code == 201, r.text
    assert r.json()["stream"] == "events:bastion"
    assert client.post("/api/v1/events/sources", json=body, headers=officer).status_code == 409
    bad = {**body, "key": "b2", "format": "syslog", "config": {"accounts": {"x": "HR-nobody"}, "parsr": {}}}
    r = client.post("/api/v1/events/sources", json=bad, headers=officer)
    assert r.status_code == 422
    assert "config" in {e["field"] for e in r.json()["errors"]}
    bad = {**body, "key": "b3", "config": {"accounts": {"x": "HR-nobody"}}}
    r = client.post("/api/v1/events/sources", json=bad, headers=officer)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["config.accounts.x"]
    bad = {**body, "key": "b4", "format": "nonsense"}
    r = client.post("/api/v1/events/sources", json=bad, headers=officer)
    assert [e["field"] for e in r.json()["errors"]] == ["format"]


def test_search_export_and_quarantine(ew: EventWorld, client: TestClient) -> None:
    ew.add_source("bastion", "syslog", config={"parser": {"year": 2026}, "accounts": {"fztu": "HR-ana"}})
    ew.ingest("bastion", OPENSSH)
    auditor = make_user(ew.rt, Role.AUDITOR).headers
    r = client.get("/api/v1/events", params={"person": "ana@kestrel.example.eu"}, headers=auditor)
    assert r.status_code == 200
    page = r.json()
    mine = [e for e in ew.events("bastion") if e.person_id == ew.w.people["ana"]]
    assert page["total"] == len(mine)
    assert {e["ledger_seq"] for e in page["items"]} == {e.ledger_seq for e in mine}
    r = client.get("/api/v1/events", params={"outcome": "failure", "limit": 10}, headers=auditor)
    failures = [e for e in ew.events("bastion") if e.outcome == "failure"]
    assert r.json()["total"] == len(failures)
    assert len(r.json()["items"]) == 10
    nxt = client.get(
        "/api/v1/events", params={"outcome": "failure", "limit": 10, "after": r.json()["next_after"]}, headers=auditor
    )
    assert [e["id"] for e in nxt.json()["items"]] == [e.id for e in failures[10:20]]
    r = client.get("/api/v1/events", params={"category": "kernel"}, headers=auditor)
    assert r.status_code == 422
    r = client.get("/api/v1/events/export.csv", params={"source": "bastion"}, headers=auditor)
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == len(ew.events("bastion"))
    r = client.get("/api/v1/events/quarantine", headers=auditor)
    assert r.json()["total"] == 0
