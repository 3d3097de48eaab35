"""Reconciliation over REST and the command line, with real tokens, a real slapd, both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from portcullis.access.api_reconcile import router
from portcullis.access.cli_reconcile import PASSWORD_ENV, register
from portcullis.access.models import Finding, TargetAccount
from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from portcullis.ledger.models import LedgerRecord
from tests.access.slapd import Slapd, slapd_server  # noqa: F401 - the fixture
from tests.access.test_reconcile_ldap import SYSTEM, load_directory
from tests.access.test_reconcile_service import BAD, EXPECTED, build_world, count, export, open_findings
from tests.factories import make_user

API = "/api/v1"


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    from portcullis.app import create_app

    app = create_app(rt)
    # Until the lead includes the reconciliation router in create_app.
    if not any(getattr(r, "path", "") == f"{API}/target-accounts" for r in app.routes):
        app.include_router(router, prefix=API)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def test_csv_upload_finds_and_lists_accounts(api: TestClient, rt: Runtime, clock: FrozenClock) -> None:
    w = build_world(rt, clock, "back-office")
    admin = make_user(rt, Role.SECURITY_OFFICER)
    r = api.post(
        f"{API}/reconciliation/csv",
        params={"system": "back-office"},
        headers={**admin.headers, "content-type": "text/csv"},
        content=export("back-office"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["findings_opened"] == 4
    assert set(open_findings(rt)) == EXPECTED
    # The same file as multipart: nothing new.
    files = {"file": ("export.csv", export("back-office"), "text/csv")}
    r = api.post(f"{API}/reconciliation/csv", params={"system": "back-office"}, headers=admin.headers, files=files)
    assert r.status_code == 200, r.text
    assert r.json()["findings_opened"] == 0

    auditor = make_user(rt, Role.AUDITOR)
    page = api.get(f"{API}/target-accounts", headers=auditor.headers, params={"orphan": "true"}).json()
    assert [a["account_name"] for a in page["items"]] == ["ghost"]
    page = api.get(f"{API}/target-accounts", headers=auditor.headers, params={"person_id": w.people["erin"]}).json()
    assert [(a["account_name"], a["person_email"]) for a in page["items"]] == [("esmith", "erin@aurora.example")]
    page = api.get(f"{API}/target-accounts", headers=auditor.headers, params={"system": "back-office", "limit": 3})
    body = page.json()
    assert (body["total"], len(body["items"]), body["next_after"] is not None) == (7, 3, True)
    rest = api.get(
        f"{API}/target-accounts", headers=auditor.headers, params={"limit": 10, "after": body["next_after"]}
    ).json()
    assert len(rest["items"]) == 4
    # Reading is not reconciling.
    r = api.post(
        f"{API}/reconciliation/csv",
        params={"system": "back-office"},
        headers={**auditor.headers, "content-type": "text/csv"},
        content=export("back-office"),
    )
    assert r.status_code == 403


def test_csv_upload_with_errors_is_a_problem_and_writes_nothing(
    api: TestClient, rt: Runtime, clock: FrozenClock
) -> None:
    build_world(rt, clock, "back-office")
    admin = make_user(rt, Role.ADMIN)
    ledger_before = count(rt, LedgerRecord)
    r = api.post(
        f"{API}/reconciliation/csv",
        params={"system": "back-office"},
        headers={**admin.headers, "content-type": "text/csv"},
        content=BAD.encode(),
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    got = {(e["line"], e["field"]) for e in r.json()["errors"]}
    assert (5, "active") in got
    assert (7, "account") in got
    assert count(rt, TargetAccount) == 0
    assert count(rt, LedgerRecord) == ledger_before
    # No system: refused by the schema, naming the parameter.
    r = api.post(f"{API}/reconciliation/csv", headers={**admin.headers, "content-type": "text/csv"}, content=b"x")
    assert r.status_code == 422
    assert "system" in r.json()["errors"][0]["field"]


def test_ldap_over_the_api_never_shows_or_records_the_password(
    api: TestClient, rt: Runtime, clock: FrozenClock, slapd: Slapd
) -> None:
    build_world(rt, clock, SYSTEM)
    load_directory(slapd)
    admin = make_user(rt, Role.ADMIN)
    body = {"system": SYSTEM, "url": slapd.url, "bind_dn": slapd.bind_dn, "password": slapd.password}
    body["base"] = slapd.base
    r = api.post(f"{API}/reconciliation/ldap", headers=admin.headers, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["orphans"] == 1
    assert set(open_findings(rt)) == EXPECTED
    assert slapd.password not in r.text
    # A wrong password: 422 naming the bind, without the password, nothing written.
    wrong = {**body, "password": "Wrong-Password-0815"}
    before = count(rt, LedgerRecord)
    r = api.post(f"{API}/reconciliation/ldap", headers=admin.headers, json=wrong)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "bind_dn"
    assert "Wrong-Password-0815" not in r.text
    assert count(rt, LedgerRecord) == before
    # An unknown field is refused by the schema; the answer does not echo the password.
    r = api.post(f"{API}/reconciliation/ldap", headers=admin.headers, json={**body, "passwd": slapd.password})
    assert r.status_code == 422
    assert slapd.password not in r.text
    with rt.session() as s:
        payloads = [bytes(p) for p in s.scalars(select(LedgerRecord.payload))]
    assert not [p for p in payloads if slapd.password.encode() in p]
    assert not [p for p in payloads if b"Wrong-Password-0815" in p]


# --- command line -------------------------------------------------------------------------


@pytest.fixture
def cli(rt: Runtime, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[typer.Typer]:
    # The command line runs on the real clock: the world is built to end now.
    clock.advance(datetime.now(UTC) - timedelta(days=2, minutes=5) - clock.now())
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", settings.effective_database_url)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    yield app
    get_settings.cache_clear()


def invoke(app: typer.Typer, token: str, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> Any:
    return CliRunner().invoke(
        app, list(args), env={"PORTCULLIS_TOKEN": token, "COLUMNS": "250", **(env or {})}, input=stdin
    )


def test_cli_ldap_csv_and_accounts(
    rt: Runtime, clock: FrozenClock, cli: typer.Typer, slapd: Slapd, tmp_path: Any
) -> None:
    build_world(rt, clock, SYSTEM)
    load_directory(slapd)
    token = make_user(rt, Role.ADMIN).token
    ldap_args = ["reconcile", "ldap", "--url", slapd.url, "--bind-dn", slapd.bind_dn, "--base", slapd.base]
    result = invoke(cli, token, *ldap_args, "--system", SYSTEM, "--json", env={PASSWORD_ENV: slapd.password})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["orphans"], report["findings_opened"]) == (1, 4)
    assert slapd.password not in result.output
    # Without the variable the password is prompted for, and not echoed.
    result = invoke(cli, token, *ldap_args, "--system", SYSTEM, stdin=slapd.password + "\n")
    assert result.exit_code == 0, result.output
    assert "0 opened" in result.stdout
    assert slapd.password not in result.output

    result = invoke(cli, token, "reconcile", "accounts", "--orphan", "--json")
    assert result.exit_code == 0, result.output
    assert [a["account_name"] for a in json.loads(result.stdout)["items"]] == ["ghost"]

    accounts_before, ledger_before = count(rt, TargetAccount), count(rt, LedgerRecord)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(BAD.replace("back-office", SYSTEM).encode())
    result = invoke(cli, token, "reconcile", "csv", str(bad), "--system", SYSTEM)
    assert result.exit_code == 2
    rows = [line.replace("│", " ").split() for line in result.stdout.splitlines()]
    assert ["5", "active"] in [r[:2] for r in rows], result.stdout
    assert ["7", "account"] in [r[:2] for r in rows], result.stdout
    assert "nothing was written" in result.stdout
    assert (count(rt, TargetAccount), count(rt, LedgerRecord)) == (accounts_before, ledger_before)

    good = tmp_path / "good.csv"
    good.write_bytes(export("hr-portal"))
    result = invoke(cli, token, "reconcile", "csv", str(good), "--system", "hr-portal", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accounts"] == 7
    assert json.loads(result.stdout)["source"]["filename"] == "good.csv"


def test_cli_refuses_before_asking_for_the_password(rt: Runtime, clock: FrozenClock, cli: typer.Typer) -> None:
    token = make_user(rt, Role.AUDITOR).token
    result = invoke(
        cli, token, "reconcile", "ldap", "--url", "ldap://127.0.0.1:9/", "--bind-dn", "cn=x", "--base", "dc=x",
        "--system", SYSTEM,
    )  # fmt: skip
    assert result.exit_code == 6  # PermissionDenied
    assert "Password" not in result.output
    with rt.session() as s:
        assert s.scalar(select(Finding.id).limit(1)) is None
