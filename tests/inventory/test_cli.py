"""The inventory command line, run against the test database as a real token holder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.clock import FrozenClock
from portcullis.core.errors import PermissionDenied, ValidationFailed
from portcullis.core.lei import with_check_digits
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from portcullis.inventory.models import Asset, Person
from tests.factories import make_user
from tests.inventory.test_service import count, records


@pytest.fixture
def cli_env(
    rt: Runtime, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    # The command line runs on the real clock: bring the test clock to now so the
    # tokens made for it are neither expired nor from the future, whatever the date.
    real_now = datetime.now(UTC)
    if real_now > clock.now():
        clock.advance(real_now - clock.now())
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", settings.effective_database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(token: str, *args: str) -> Any:
    # Wide enough that Rich does not wrap table cells.
    result = CliRunner().invoke(app, list(args), env={"PORTCULLIS_TOKEN": token, "COLUMNS": "250"})
    return result


def run_json(token: str, *args: str) -> Any:
    result = run(token, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_org_set_defaults_and_override(rt: Runtime, cli_env: None) -> None:
    token = make_user(rt, Role.SECURITY_OFFICER).token
    lei = with_check_digits("529900EXAMPLE00001")
    org = run_json(
        token, "org", "set", "--legal-name", "Example", "--lei", lei, "--staff-count", "60", "--country", "de"
    )
    assert (org["tier"], org["lei"], org["country"]) == ("standard", lei, "DE")
    # Options not given keep their values.
    org = run_json(token, "org", "set", "--risk-profile", "high", "--complexity", "high")
    assert (org["legal_name"], org["staff_count"], org["tier"]) == ("Example", 60, "enhanced")

    rows = run_json(token, "org", "override", "privileged_approvers", "4", "--reason", "Four eyes are not enough")
    assert {r["key"]: r["value"] for r in rows}["privileged_approvers"] == 4
    bad = run(token, "org", "override", "privileged_approvers", "1", "--reason", "One approver is plenty")
    assert bad.exit_code == ValidationFailed.exit_code
    assert "two-approver rule" in bad.output
    rows = run_json(token, "org", "clear-override", "privileged_approvers", "--reason", "Back to the tier default")
    assert {r["key"]: r["value"] for r in rows}["privileged_approvers"] == 3
    assert [r["action"] for r in records(rt, "proportionality_override")] == [
        "organisation.default_overridden",
        "organisation.default_restored",
    ]
    shown = run(token, "org", "defaults")
    assert shown.exit_code == 0
    assert "retention_days.critical" in shown.stdout


def test_people_add_resolves_manager_by_email_and_lists(rt: Runtime, cli_env: None) -> None:
    token = make_user(rt, Role.ADMIN).token
    boss = run_json(token, "people", "add", "--external-id", "HR-1", "--email", "Boss@Firm.eu", "--name", "Boss")
    assert boss["email"] == "boss@firm.eu"
    p = run_json(
        token, "people", "add", "--external-id", "HR-2", "--email", "dev@firm.eu", "--name", "Dev",
        "--manager", "boss@firm.eu", "--department", "Engineering", "--start-date", "2026-01-05",
    )  # fmt: skip
    assert (p["manager_id"], p["manager_email"], p["start_date"]) == (boss["id"], "boss@firm.eu", "2026-01-05")

    bad = run(token, "people", "add", "--external-id", "HR-3", "--email", "x@firm.eu", "--name", "X",
              "--manager", "ghost@firm.eu")  # fmt: skip
    assert bad.exit_code == ValidationFailed.exit_code
    assert "--manager" in bad.output
    assert "ghost@firm.eu" in bad.output
    bad = run(token, "people", "add", "--external-id", "HR-3", "--email", "not-an-email", "--name", "X")
    assert bad.exit_code == ValidationFailed.exit_code
    assert "--email" in bad.output
    assert count(rt, Person) == 2

    page = run_json(token, "people", "list", "--department", "Engineering")
    assert [x["external_id"] for x in page["items"]] == ["HR-2"]
    page = run_json(token, "people", "list", "--limit", "1")
    assert (page["total"], len(page["items"]), page["next_after"]) == (2, 1, boss["id"])
    shown = run_json(token, "people", "show", str(p["id"]))
    assert shown["full_name"] == "Dev"
    missing = run(token, "people", "show", "999")
    assert missing.exit_code == 3


def test_sites_zones_providers_assets(rt: Runtime, cli_env: None) -> None:
    token = make_user(rt, Role.ADMIN).token
    run_json(token, "people", "add", "--external-id", "HR-1", "--email", "owner@firm.eu", "--name", "Owner")
    site = run_json(token, "sites", "add", "--external-id", "S1", "--name", "HQ", "--kind", "office",
                    "--owner", "owner@firm.eu")  # fmt: skip
    assert site["owner_email"] == "owner@firm.eu"
    zone = run_json(token, "zones", "add", "--external-id", "Z1", "--site", "S1", "--name", "Server room",
                    "--criticality", "critical", "--kind", "server_room")  # fmt: skip
    assert zone["site_id"] == site["id"]
    run_json(token, "providers", "add", "--external-id", "P1", "--name", "Cloud", "--criticality", "important",
             "--contract-end", "2027-01-31")  # fmt: skip
    run_json(token, "assets", "add", "--external-id", "A1", "--name", "DB", "--type", "database",
             "--criticality", "important")  # fmt: skip
    bad = run(token, "assets", "add", "--external-id", "A2", "--name", "Signer", "--type", "hsm",
              "--criticality", "critical")  # fmt: skip
    assert bad.exit_code == ValidationFailed.exit_code
    assert "a critical asset needs an owner" in bad.output
    asset = run_json(token, "assets", "add", "--external-id", "A2", "--name", "Signer", "--type", "hsm",
                     "--criticality", "critical", "--owner", "owner@firm.eu", "--zone", "Z1", "--provider", "P1",
                     "--depends-on", "A1", "--tag", "custody")  # fmt: skip
    assert (asset["zone_external_id"], asset["provider_external_id"], asset["tags"]) == ("Z1", "P1", ["custody"])
    assert count(rt, Asset) == 2
    page = run_json(token, "assets", "list", "--owner", "owner@firm.eu")
    assert [a["external_id"] for a in page["items"]] == ["A2"]
    page = run_json(token, "providers", "list", "--contract-end-before", "2027-02-01")
    assert [p["external_id"] for p in page["items"]] == ["P1"]
    page = run_json(token, "zones", "list", "--site", "S1")
    assert page["total"] == 1
    table = run(token, "sites", "list")
    assert table.exit_code == 0
    assert "HQ" in table.stdout


def test_auditor_cannot_add_from_the_command_line(rt: Runtime, cli_env: None) -> None:
    token = make_user(rt, Role.AUDITOR).token
    bad = run(token, "people", "add", "--external-id", "HR-1", "--email", "a@firm.eu", "--name", "A")
    assert bad.exit_code == PermissionDenied.exit_code
    assert count(rt, Person) == 0
    assert run_json(token, "people", "list")["total"] == 0
