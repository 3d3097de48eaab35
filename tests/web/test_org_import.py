from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory.models import Organisation, Person, ProportionalityOverride
from tests.factories import make_user
from tests.web.helpers import csrf_of, login, post_form

# GLEIF's own LEI, whose check digits are right.
GOOD_LEI = "506700GE1G29325QX363"
PEOPLE_HEADER = "external_id,email,full_name,kind,department,manager_email,status\n"


def _people(rt: Runtime) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count(Person.id))) or 0


def _admin(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.ADMIN), clock)


def test_organisation_profile_sets_the_tier(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    profile = {"legal_name": "Example CASP SE", "country": "DE", "staff_count": "60", "risk_profile": "high",
               "complexity": "medium", "competent_authority": "BaFin"}
    r = post_form(client, "/organisation", "/organisation", {**profile, "lei": "506700GE1G29325QX364"})
    assert r.status_code == 400
    assert re.search(r'id="lei-errors">\s*<li>LEI', r.text)
    with rt.session() as s:
        assert s.scalar(select(func.count(Organisation.id))) == 0

    r = post_form(client, "/organisation", "/organisation", {**profile, "lei": GOOD_LEI})
    assert r.status_code == 200
    assert "Example CASP SE" in r.text
    # 60 staff (1) + high risk (2) + medium complexity (1) = 4 points: enhanced.
    assert re.search(r'<span class="badge ok">enhanced</span> · 4 points', r.text)


def test_override_needs_a_reason_and_can_be_cleared(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    r = post_form(client, "/organisation", "/organisation/overrides",
                  {"key": "review_days.critical", "value": "60", "reason": "short"})
    assert r.status_code == 400
    assert 'id="reason-errors"' in r.text
    r = post_form(client, "/organisation", "/organisation/overrides",
                  {"key": "privileged_approvers", "value": "1", "reason": "we are a very small team"})
    assert r.status_code == 400
    assert "two-approver rule" in r.text
    reason = "board decision 2026-11: quarterly is too slow for custody"
    r = post_form(client, "/organisation", "/organisation/overrides",
                  {"key": "review_days.critical", "value": "60", "reason": reason})
    assert r.status_code == 200
    assert reason in r.text
    with rt.session() as s:
        assert s.scalars(select(ProportionalityOverride.value)).all() == [60]
    r = post_form(client, "/organisation", "/organisation/overrides/clear",
                  {"key": "review_days.critical", "reason": "tier default is adequate again"})
    assert r.status_code == 200
    assert "The override has been cleared" in r.text
    with rt.session() as s:
        assert s.scalar(select(func.count(ProportionalityOverride.id))) == 0


def _upload(client: TestClient, csv: str, action: str, kind: str = "people") -> str:
    page = client.get("/import")
    r = client.post(
        "/import",
        data={"kind": kind, "action": action, "csrf_token": csrf_of(page.text)},
        files={"file": ("people.csv", csv.encode("utf-8"), "text/csv")},
    )
    return f"{r.status_code}\n{r.text}"


def test_import_dry_run_reports_bad_rows_and_writes_nothing(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _admin(rt, client, clock)
    bad = PEOPLE_HEADER + (
        "E-1,ada@firm.eu,Ada,employee,Ops,,active\n"
        "E-2,bob@firm.eu,Bob,employee,Ops,nobody@firm.eu,active\n"
    )
    for action in ("dry_run", "commit"):
        out = _upload(client, bad, action)
        assert out.startswith("422")
        assert "Nothing was imported." in out
        first_error = r'id="import-errors">.*?<tbody>\s*<tr><td>(\d+)</td><td><code>(\w+)</code>'
        row = re.search(first_error, out, re.S)
        assert row
        assert row.groups() == ("3", "manager_email")
        assert "nobody@firm.eu" in out
        assert _people(rt) == 0

    good = PEOPLE_HEADER + (
        "E-1,ada@firm.eu,Ada,employee,Ops,,active\n"
        "E-2,bob@firm.eu,Bob,employee,Ops,ada@firm.eu,active\n"
    )
    out = _upload(client, good, "dry_run")
    assert out.startswith("200")
    assert "Dry run: nothing was written." in out
    assert re.search(r"Would create <strong>2</strong>", out)
    assert _people(rt) == 0
    out = _upload(client, good, "commit")
    assert "Imported." in out
    assert _people(rt) == 2
    exported = client.get("/import/export/people")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "bob@firm.eu" in exported.text


def test_import_refuses_a_missing_file_and_an_unknown_kind(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    page = client.get("/import")
    r = client.post("/import", data={"kind": "people", "action": "dry_run", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 400
    assert 'id="file-errors"' in r.text
    out = _upload(client, PEOPLE_HEADER, "dry_run", kind="spaceships")
    assert out.startswith("400")
    assert 'id="kind-errors"' in out


def test_import_without_csrf_token_is_refused(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    r = client.post("/import", data={"kind": "people", "action": "commit"},
                    files={"file": ("p.csv", (PEOPLE_HEADER + "E-1,a@f.eu,A,,,,\n").encode(), "text/csv")})
    assert r.status_code == 403
    assert _people(rt) == 0
