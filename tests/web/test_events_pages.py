"""The access-event pages: search an investigation's events, export them, see sources and quarantine."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.events.world import OPENSSH, EventWorld, build_event_world
from tests.factories import make_user
from tests.web.helpers import inline_problems, login


@pytest.fixture
def ew(rt: Runtime, tmp_path: Path) -> EventWorld:
    w = build_event_world(rt)
    w.add_source("bastion", "syslog", config={"parser": {"year": 2026}, "accounts": {"fztu": "HR-ana"}})
    w.ingest("bastion", OPENSSH)
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"Dec 10 06:55\n")
    w.ingest("bastion", bad)
    return w


def test_an_auditor_finds_a_persons_logins_and_exports_them(
    ew: EventWorld, client: TestClient, clock: FrozenClock
) -> None:
    login(client, make_user(ew.rt, Role.AUDITOR), clock)
    r = client.get("/events")
    assert r.status_code == 200
    assert "Bastion" in r.text
    assert ">2001<" in r.text  # records taken by the source
    r = client.get("/events", params={"person": "ana@kestrel.example.eu"})
    assert r.status_code == 200
    ana = [e for e in ew.events("bastion") if e.person_id == ew.w.people["ana"]]
    assert len(ana) >= 1
    assert r.text.count("ana@kestrel.example.eu</td>") == len(ana)
    r = client.get("/events/export.csv", params={"outcome": "failure", "category": "authentication"})
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = [e for e in ew.events("bastion") if (e.outcome, e.category) == ("failure", "authentication")]
    assert [int(x["ledger_seq"]) for x in rows] == [e.ledger_seq for e in expected]
    q = client.get("/events/quarantine")
    assert "Dec 10 06:55" in q.text
    assert inline_problems(q.text) == []


def test_a_bad_search_says_what_is_wrong(ew: EventWorld, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(ew.rt, Role.AUDITOR), clock)
    r = client.get("/events", params={"person": "nobody@example.eu", "since": "yesterday"})
    assert r.status_code == 400
    assert "no person with email" in r.text
    assert "&#39;yesterday&#39; is not a date and time" in r.text


def test_staff_do_not_see_events(ew: EventWorld, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(ew.rt, Role.STAFF), clock)
    assert client.get("/events").status_code == 403
    assert client.get("/events/export.csv").status_code == 403
    assert 'href="/events"' not in client.get("/").text
