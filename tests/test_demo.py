"""The demo organisation: built through the services, complete, audited, and built only once.

Counts are read back with plain SQL, not through the services that wrote them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from portcullis import demo_data
from portcullis.accounts import service as accounts
from portcullis.core.context import Principal
from portcullis.core.errors import Conflict
from portcullis.core.lei import lei_problem
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from portcullis.demo import build_demo, register_demo, reset_database
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import OrganisationIn
from portcullis.models import metadata
from tests.web.helpers import csrf_of, post_form


def _rows(rt: Runtime, sql: str, **params: object) -> list[tuple[Any, ...]]:
    with rt.session() as s:
        return [tuple(r) for r in s.execute(text(sql), params)]


def _one(rt: Runtime, sql: str, **params: object) -> Any:
    return _rows(rt, sql, **params)[0][0]


def _table_counts(rt: Runtime) -> dict[str, int]:
    with rt.session() as s:
        return {t.name: s.scalar(text(f'SELECT count(*) FROM "{t.name}"')) for t in metadata.sorted_tables}


def test_demo_builds_a_sixty_person_offeror(rt: Runtime) -> None:
    assert build_demo(rt).created

    org = _rows(rt, "SELECT legal_name, lei, country, staff_count, risk_profile FROM organisation")
    assert len(org) == 1
    name, lei, country, staff, risk = org[0]
    assert name == "Aurora Digital Assets S.A."
    assert lei_problem(str(lei)) is None
    assert (country, staff, risk) == ("LU", 60, "high")

    assert _one(rt, "SELECT count(*) FROM person WHERE kind <> 'service_account'") == 60
    assert _one(rt, "SELECT count(*) FROM person WHERE kind = 'service_account'") == 3
    assert _one(rt, "SELECT count(*) FROM person WHERE kind = 'contractor'") >= 3
    statuses = dict(_rows(rt, "SELECT status, count(*) FROM person GROUP BY status"))
    assert statuses["leaver"] == 2
    assert statuses["suspended"] == 1
    assert statuses["joiner"] == 2
    assert _one(rt, "SELECT count(*) FROM person WHERE status = 'leaver' AND end_date IS NULL") == 0
    departments = {r[0] for r in _rows(rt, "SELECT DISTINCT department FROM person")}
    assert {"Executive", "Engineering", "Security", "Operations", "Compliance", "Finance",
            "Customer Support", "Trading"} <= departments
    titles = {r[0] for r in _rows(rt, "SELECT job_title FROM person WHERE key_function_holder")}
    for role in ("Chief Executive Officer", "Chief Technology Officer", "Chief Information Security Officer",
                 "Head of Compliance", "Money Laundering Reporting Officer"):
        assert role in titles
    assert _one(rt, "SELECT count(*) FROM person WHERE kind <> 'service_account' AND idp_id IS NULL") == 0
    assert _one(rt, "SELECT count(*) FROM person WHERE badge_id IS NOT NULL") >= 50

    assert _one(rt, "SELECT count(*) FROM site") == 2
    zone_kinds = {r[0] for r in _rows(rt, "SELECT kind FROM zone")}
    assert {"server_room", "safe_room", "cage", "comms_room", "reception"} <= zone_kinds
    assert _one(rt, "SELECT count(*) FROM site WHERE owner_id IS NULL") == 0

    assert _one(rt, "SELECT count(*) FROM provider") == 5
    assert _one(rt, "SELECT count(*) FROM provider WHERE exit_plan = '' OR contract_end IS NULL") == 0

    assert _one(rt, "SELECT count(*) FROM asset") >= 40
    crits = {r[0] for r in _rows(rt, "SELECT DISTINCT criticality FROM asset")}
    assert crits == {"critical", "important", "other"}
    assert _one(rt, "SELECT count(*) FROM asset WHERE criticality = 'critical' AND owner_id IS NULL") == 0
    # Critical assets are owned by people who still work there.
    assert _one(rt, "SELECT count(*) FROM asset a JOIN person p ON p.id = a.owner_id "
                    "WHERE a.criticality = 'critical' AND p.status <> 'active'") == 0


def test_dependencies_follow_the_architecture(rt: Runtime) -> None:
    build_demo(rt)
    edges = set(_rows(rt, "SELECT a.external_id, d.external_id FROM asset_dependency x "
                          "JOIN asset a ON a.id = x.asset_id JOIN asset d ON d.id = x.depends_on_id"))
    assert ("AST-MATCH", "AST-DB-PROD") in edges
    assert ("AST-HOT-WALLET", "AST-HSM-1") in edges
    assert ("AST-WARM-WALLET", "AST-HSM-2") in edges
    assert len(edges) >= 40
    # The dependency graph has no cycle: repeatedly removing assets that depend on nothing empties it.
    remaining = dict.fromkeys({a for a, _ in edges} | {d for _, d in edges}, 0)
    while remaining:
        leaves = {n for n in remaining if not any(a == n and d in remaining for a, d in edges)}
        assert leaves, f"dependency cycle among {sorted(remaining)}"
        for n in leaves:
            del remaining[n]


def test_managers_form_one_tree(rt: Runtime) -> None:
    build_demo(rt)
    rows = _rows(rt, "SELECT id, manager_id, kind, job_title FROM person")
    manager = {pid: mid for pid, mid, _, _ in rows}
    roots = [(pid, title) for pid, mid, _, title in rows if mid is None]
    assert [title for _, title in roots] == ["Chief Executive Officer"]
    for pid in manager:
        seen = {pid}
        cur = manager[pid]
        while cur is not None:
            assert cur not in seen, f"manager cycle through person {cur}"
            seen.add(cur)
            cur = manager[cur]


def test_second_run_adds_nothing(rt: Runtime) -> None:
    assert build_demo(rt).created
    before = _table_counts(rt)
    again = build_demo(rt)
    assert not again.created
    assert _table_counts(rt) == before
    assert before["ledger_record"] > 0


def test_every_created_object_has_an_audit_record(rt: Runtime) -> None:
    build_demo(rt)
    audited = {(t, i) for t, i, a in _rows(rt, "SELECT object_type, object_id, action FROM ledger_record")
               if str(a).endswith(".created")}
    for table in ("organisation", "person", "site", "zone", "provider", "asset"):
        for (obj_id,) in _rows(rt, f"SELECT id FROM {table}"):
            assert (table, str(obj_id)) in audited, f"{table} {obj_id} has no audit record"
    for (user_id,) in _rows(rt, "SELECT id FROM user_account"):
        assert ("user", str(user_id)) in audited
    # The demo acts as itself, or (in its access history) as a demo platform user, marked as done by the demo.
    users = {r[0] for r in _rows(rt, "SELECT email FROM user_account")}
    audit = "SELECT r.payload FROM ledger_record r JOIN ledger_stream s ON s.id = r.stream_id WHERE s.name = 'audit'"
    for (payload,) in _rows(rt, audit):
        actor = json.loads(bytes(payload))["actor"]
        assert actor["name"] == "system:demo" or (actor["name"] in users and actor["via"] == "demo"), actor
    admin_id = _one(rt, "SELECT id FROM user_account WHERE email = :e", e=demo_data.ADMIN_EMAIL)
    assert _one(rt, "SELECT count(*) FROM ledger_record WHERE action = 'mfa.enrolled' AND object_id = :i",
                i=str(admin_id)) == 1
    assert _one(rt, "SELECT count(*) FROM ledger_record WHERE action = 'organisation.default_overridden'") == 1
    # The published TOTP secret and passwords never reach the ledger.
    for (payload,) in _rows(rt, "SELECT payload FROM ledger_record"):
        assert demo_data.ADMIN_TOTP_SECRET not in str(payload)
        assert demo_data.ADMIN_PASSWORD not in str(payload)


def test_demo_logins_work(rt: Runtime) -> None:
    build_demo(rt)
    with rt.session() as s:
        admin = accounts.check_password(s, rt.clock, rt.settings, demo_data.ADMIN_EMAIL, demo_data.ADMIN_PASSWORD, "t")
        assert admin is not None
        assert admin.role == "admin"
        assert accounts.needs_mfa(admin)
        # The secret printed on the console yields codes the login accepts.
        accounts.check_totp(s, rt.clock, admin, pyotp.TOTP(demo_data.ADMIN_TOTP_SECRET).at(rt.clock.now()))
        auditor = accounts.check_password(
            s, rt.clock, rt.settings, demo_data.AUDITOR_EMAIL, demo_data.AUDITOR_PASSWORD, "t"
        )
        assert auditor is not None
        assert auditor.role == "auditor"
        assert not accounts.needs_mfa(auditor)
        assert accounts.check_password(s, rt.clock, rt.settings, demo_data.ADMIN_EMAIL, "wrong password!", "t") is None


def test_refuses_a_database_holding_another_firm(rt: Runtime) -> None:
    with rt.work(Principal.system("tests")) as ctx:
        inventory.set_organisation(ctx, OrganisationIn(legal_name="Other Firm AG", staff_count=5))
    with pytest.raises(Conflict, match="Other Firm AG"):
        build_demo(rt)
    assert _one(rt, "SELECT count(*) FROM person") == 0
    assert _one(rt, "SELECT count(*) FROM user_account") == 0


def test_reset_deletes_only_the_embedded_database(tmp_path: Path) -> None:
    names = ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"]
    for n in [*names, "cli-token", "other.db"]:
        (tmp_path / n).write_text("x")
    removed = reset_database(Settings(data_dir=tmp_path))
    assert sorted(p.name for p in removed) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli-token", "other.db"]

    (tmp_path / "portcullis.db").write_text("x")
    with pytest.raises(Conflict, match="PORTCULLIS_DATABASE_URL"):
        reset_database(Settings(data_dir=tmp_path, database_url="postgresql+psycopg://x@127.0.0.1/db"))
    assert (tmp_path / "portcullis.db").exists()


def test_command_builds_migrates_and_prints_the_logins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("PORTCULLIS_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("noop")(lambda: None)  # a second command keeps "demo" a named sub-command
    register_demo(app)
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["demo"])
        assert first.exit_code == 0, first.output
        assert "Built the demo organisation" in first.output
        assert demo_data.ADMIN_EMAIL in first.output
        assert demo_data.AUDITOR_EMAIL in first.output
        assert demo_data.ADMIN_TOTP_SECRET in first.output
        assert "otpauth://totp/" in first.output
        assert "http://127.0.0.1:8000/" in first.output

        second = runner.invoke(app, ["demo"])
        assert second.exit_code == 0, second.output
        assert "already exists" in second.output

        reset = runner.invoke(app, ["demo", "--reset"])
        assert reset.exit_code == 0, reset.output
        assert "portcullis.db" in reset.output
        assert "Built the demo organisation" in reset.output

        code = runner.invoke(app, ["demo", "--code"])
        assert code.exit_code == 0
        printed = code.output.strip()
        assert re.fullmatch(r"\d{6}", printed)
        assert pyotp.TOTP(demo_data.ADMIN_TOTP_SECRET).verify(printed, valid_window=1)
    finally:
        get_settings.cache_clear()


def test_reset_is_refused_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:5432/absent")
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("noop")(lambda: None)
    register_demo(app)
    try:
        result = CliRunner().invoke(app, ["demo", "--reset"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == Conflict.exit_code
    assert "--reset only deletes the embedded SQLite database" in result.output


def test_the_printed_logins_open_the_web_ui(rt: Runtime, client: TestClient) -> None:
    build_demo(rt)
    r = post_form(client, "/login", "/login", {"email": demo_data.ADMIN_EMAIL, "password": demo_data.ADMIN_PASSWORD},
                  follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login/totp")
    code = pyotp.TOTP(demo_data.ADMIN_TOTP_SECRET).at(rt.clock.now())
    r = post_form(client, "/login/totp", "/login/totp", {"code": code}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/assets", params={"criticality": "critical"})
    assert page.status_code == 200
    assert "Matching engine" in page.text
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})

    r = post_form(client, "/login", "/login",
                  {"email": demo_data.AUDITOR_EMAIL, "password": demo_data.AUDITOR_PASSWORD}, follow_redirects=False)
    assert r.status_code == 303
    assert not r.headers["location"].startswith("/login")
    people = client.get("/people", params={"q": "Wagner"})
    assert people.status_code == 200
    assert "Luc Wagner" in people.text
