"""`portcullis access ...`: the workflow from the command line, as real token holders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from portcullis.access import catalogue
from portcullis.access.schemas import AccessRoleIn
from portcullis.cli import app
from portcullis.core.clock import FrozenClock
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from tests.access.workflow_world import JUSTIFICATION, SYSTEM, World, build_world


@pytest.fixture
def w(rt: Runtime, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # The command line runs on the real clock: bring the test clock to now first.
    real_now = datetime.now(UTC)
    if real_now > clock.now():
        clock.advance(real_now - clock.now())
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", settings.effective_database_url)
    get_settings.cache_clear()
    yield build_world(rt)
    get_settings.cache_clear()


def run(w: World, who: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["access", *args], env={"PORTCULLIS_TOKEN": w.users[who].token, "COLUMNS": "250"})


def js(w: World, who: str, *args: str) -> Any:
    result = run(w, who, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_request_approve_hold_revoke(w: World) -> None:
    req = js(w, "ana", "request", "--entitlement", "server-room", "--justification", JUSTIFICATION, "--days", "3")
    assert (req["status"], req["subject_email"], req["duration_days"]) == ("pending", "ana@kestrel.example.eu", 3)
    assert [r["id"] for r in js(w, "zoe", "inbox")] == [req["id"]]
    decided = js(w, "zoe", "decide", str(req["id"]), "--approve", "--comment", "fine")
    assert decided["status"] == "approved"
    [g] = js(w, "ana", "my-access")
    assert (g["entitlement_key"], g["kind"]) == ("server-room", "time_bound")
    page = js(w, "sofia", "grants", "--zone", "Z-SRV")
    assert [x["id"] for x in page["items"]] == [g["id"]]
    assert js(w, "sofia", "grants", "--asset", "A-APP")["total"] == 0
    assert js(w, "sofia", "grants", "--person", "ana@kestrel.example.eu", "--status", "active")["total"] == 1
    revoked = js(w, "sofia", "revoke", str(g["id"]), "--reason", "visit over")
    assert (revoked["status"], revoked["end_reason"]) == ("revoked", "visit over")
    assert js(w, "ana", "my-access") == []
    table = run(w, "ana", "requests")
    assert table.exit_code == 0
    assert "server-room" in table.stdout
    assert "approved" in table.stdout


def test_request_for_someone_else_reject_and_cancel(w: World) -> None:
    req = js(
        w,
        "max",
        "request",
        "--entitlement",
        "server-room",
        "--for",
        "ben@kestrel.example.eu",
        "--justification",
        JUSTIFICATION,
    )
    assert req["subject_email"] == "ben@kestrel.example.eu"
    rejected = js(w, "zoe", "decide", str(req["id"]), "--reject", "--comment", "no escort available")
    assert rejected["status"] == "rejected"
    again = js(
        w,
        "max",
        "request",
        "--entitlement",
        "server-room",
        "--for",
        "ben@kestrel.example.eu",
        "--justification",
        JUSTIFICATION,
    )
    assert js(w, "max", "cancel", str(again["id"]))["status"] == "cancelled"
    listed = js(w, "sofia", "requests", "--for", "ben@kestrel.example.eu")
    assert [(r["id"], r["status"]) for r in listed["items"]] == [(req["id"], "rejected"), (again["id"], "cancelled")]


def test_refusals_exit_with_their_codes_and_reasons(w: World) -> None:
    bad = run(
        w,
        "ana",
        "request",
        "--entitlement",
        "server-room",
        "--for",
        "nobody@kestrel.example.eu",
        "--justification",
        JUSTIFICATION,
    )
    assert bad.exit_code == 2
    assert "--for: no person with email nobody@kestrel.example.eu" in bad.output
    long = run(w, "ana", "request", "--entitlement", "server-room", "--justification", JUSTIFICATION, "--days", "9")
    assert long.exit_code == 2
    assert "9 days is above the maximum of 7 days for server-room" in long.output
    neither = run(w, "ana", "request", "--justification", JUSTIFICATION)
    assert neither.exit_code == 2
    assert "one entitlement or one role" in neither.output
    req = js(
        w,
        "max",
        "request",
        "--entitlement",
        "app-read",
        "--for",
        "ana@kestrel.example.eu",
        "--justification",
        JUSTIFICATION,
    )
    own = run(w, "max", "decide", str(req["id"]), "--approve")
    assert own.exit_code == 6
    assert "request they made" in own.output
    assert run(w, "ana", "daily-pass").exit_code == 6
    assert run(w, "sofia", "revoke", "999999", "--reason", "x").exit_code == 3


def test_roles_findings_and_the_daily_pass(w: World) -> None:
    with w.rt.work(SYSTEM) as ctx:
        catalogue.create_role(ctx, AccessRoleIn(key="reader", name="Reader", entitlement_ids=[w.ents["app-read"]]))
    made = js(
        w, "sofia", "grant-role", "--person", "ana@kestrel.example.eu", "--role", "reader", "--reason", "joined support"
    )
    assert [(g["kind"], g["entitlement_key"]) for g in made] == [("standing", "app-read")]
    found = js(w, "sofia", "findings", "--person", "ana@kestrel.example.eu")
    assert [f["kind"] for f in found["items"]] == ["training_missing"]
    assert js(w, "sofia", "findings", "--owner", "olga@kestrel.example.eu")["total"] == 1
    summary = js(w, "sofia", "daily-pass")
    assert (summary["grants"], summary["opened"], summary["resolved"]) == (1, 0, 0)
    closed = js(w, "sofia", "resolve-finding", str(found["items"][0]["id"]), "--resolution", "course booked")
    assert closed["status"] == "resolved"
    assert js(w, "sofia", "findings")["total"] == 0
    assert js(w, "sofia", "findings", "--status", "all")["total"] == 1
    summary = js(w, "sofia", "daily-pass")
    assert summary["opened"] == 1  # still untrained: the check finds it again
