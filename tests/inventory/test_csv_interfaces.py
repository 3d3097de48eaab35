"""The CSV import and export through the REST API and the command line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from portcullis.app import API_PREFIX, create_app
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory.csv_api import router as csv_router
from portcullis.inventory.csv_cli import register_csv
from portcullis.inventory.csv_read import MAX_BYTES
from tests.factories import make_user
from tests.inventory.test_csv_import import DATA, counts, csv_bytes

BAD_PEOPLE = csv_bytes(
    "external_id,email,full_name,manager_email",
    "HR-0100,ravi.patel@kestrel.example.eu,Ravi Patel,",
    "HR-0101,eva.lind@kestrel.example.eu,Eva Lind,nobody@kestrel.example.eu",
)


@pytest.fixture
def api(rt: Runtime) -> Iterator[TestClient]:
    app = create_app(rt)
    # Until app.py includes the router; afterwards the app already has the routes.
    if not any(getattr(r, "path", "") == f"{API_PREFIX}/imports/{{kind}}" for r in app.routes):
        app.include_router(csv_router, prefix=API_PREFIX)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def test_api_dry_run_then_commit_raw_and_multipart(rt: Runtime, api: TestClient) -> None:
    h = make_user(rt, Role.SECURITY_OFFICER).headers
    people = (DATA / "people.csv").read_bytes()
    before = counts(rt)
    r = api.post(
        f"{API_PREFIX}/imports/people",
        params={"dry_run": "true"},
        content=people,
        headers={**h, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["dry_run"], r.json()["created"], r.json()["committed"]) == (True, 9, False)
    assert counts(rt) == before

    r = api.post(
        f"{API_PREFIX}/imports/people", files={"file": ("people.csv", people, "text/csv")}, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["committed"], r.json()["created"]) == (True, 9)
    assert counts(rt)["person"] == before["person"] + 9

    r = api.post(
        f"{API_PREFIX}/imports/providers",
        content=(DATA / "providers.csv").read_bytes(),
        headers={**h, "Content-Type": "text/csv"},
    )
    assert (r.status_code, r.json()["created"]) == (200, 4)


def test_api_bad_file_is_422_problem_naming_line_and_field(rt: Runtime, api: TestClient) -> None:
    h = make_user(rt, Role.SECURITY_OFFICER).headers
    before = counts(rt)
    r = api.post(f"{API_PREFIX}/imports/people", content=BAD_PEOPLE, headers={**h, "Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["errors"] == [
        {"field": "manager_email", "line": 3, "message": "no person with email 'nobody@kestrel.example.eu' "
         "in the register or in this file"}
    ]
    assert "nothing was imported" in body["detail"]
    assert counts(rt) == before
    # A dry run of the same file reports, with 200, what is wrong.
    r = api.post(
        f"{API_PREFIX}/imports/people?dry_run=true", content=BAD_PEOPLE, headers={**h, "Content-Type": "text/csv"}
    )
    assert (r.status_code, r.json()["ok"], r.json()["errors"][0]["line"]) == (200, False, 3)
    r = api.post(f"{API_PREFIX}/imports/people", files={"upload": ("x.csv", b"a", "text/csv")}, headers=h)
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "file")
    r = api.post(
        f"{API_PREFIX}/imports/people", content=b"x" * (MAX_BYTES + 100_000), headers={**h, "Content-Type": "text/csv"}
    )
    assert (r.status_code, r.json()["errors"][0]["field"]) == (413, "file")
    r = api.post(f"{API_PREFIX}/imports/keys", content=BAD_PEOPLE, headers={**h, "Content-Type": "text/csv"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "kind")
    assert counts(rt) == before


def test_api_export_is_csv_and_imports_back_unchanged(rt: Runtime, api: TestClient) -> None:
    h = make_user(rt, Role.SECURITY_OFFICER).headers
    for kind in ("people", "providers", "zones", "assets"):
        r = api.post(
            f"{API_PREFIX}/imports/{kind}",
            content=(DATA / f"{kind}.csv").read_bytes(),
            headers={**h, "Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
    auditor = make_user(rt, Role.AUDITOR).headers
    r = api.get(f"{API_PREFIX}/exports/assets", headers=auditor)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="portcullis-assets-2026-11-24.csv"'
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert len(rows) == 6
    r = api.post(f"{API_PREFIX}/imports/assets", content=r.content, headers={**h, "Content-Type": "text/csv"})
    assert (r.json()["unchanged"], r.json()["updated"], r.json()["created"]) == (6, 0, 0)


def test_api_permissions(rt: Runtime, api: TestClient) -> None:
    auditor = make_user(rt, Role.AUDITOR).headers
    staff = make_user(rt, Role.STAFF).headers
    people = (DATA / "people.csv").read_bytes()
    r = api.post(f"{API_PREFIX}/imports/people?dry_run=true", content=people, headers=auditor)
    assert r.status_code == 403
    assert api.get(f"{API_PREFIX}/exports/people", headers=staff).status_code == 403
    assert api.get(f"{API_PREFIX}/exports/people").status_code == 401


# --- command line ---------------------------------------------------------------


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Keeps the commands as sub-commands."""

    register_csv(app)
    return app


def test_cli_import_dry_run_commit_errors_and_export(rt: Runtime, cli_env: None, tmp_path: Path) -> None:
    token = make_user(rt, Role.SECURITY_OFFICER).token
    env = {"PORTCULLIS_TOKEN": token, "COLUMNS": "250"}
    app = _cli()
    runner = CliRunner()
    people = str(DATA / "people.csv")
    before = counts(rt)

    result = runner.invoke(app, ["import", "people", people, "--dry-run", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["created"], json.loads(result.stdout)["dry_run"]) == (9, True)
    assert counts(rt) == before

    result = runner.invoke(app, ["import", "people", people], env=env)
    assert result.exit_code == 0, result.output
    assert "9 created, 0 updated, 0 unchanged (imported)" in result.stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(BAD_PEOPLE)
    after_good = counts(rt)
    result = runner.invoke(app, ["import", "people", str(bad)], env=env)
    assert result.exit_code == 2
    assert "NOT imported" in result.stdout
    assert "nobody@kestrel.example.eu" in result.stdout
    assert counts(rt) == after_good

    result = runner.invoke(app, ["import", "people", str(tmp_path / "missing.csv")], env=env)
    assert result.exit_code == 2
    assert "missing.csv" in result.output

    out = tmp_path / "export.csv"
    result = runner.invoke(app, ["export", "people", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"external_id,email,full_name,kind,")
    assert out.read_bytes().count(b"\r\n") == 10
    result = runner.invoke(app, ["import", "people", str(out), "--json"], env=env)
    assert (result.exit_code, json.loads(result.stdout)["unchanged"]) == (0, 9)

    result = runner.invoke(app, ["export", "providers"], env=env)
    assert result.exit_code == 0
    assert result.stdout_bytes == (
        b"external_id,name,lei,services,criticality,contract_start,contract_end,exit_plan,contact_email\r\n"
    )
