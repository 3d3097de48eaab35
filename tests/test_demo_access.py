"""The demo firm's access governance: the problems a new user must see at once, a believable history.

Everything is read back from the database with plain SQL (or through the pages a
user would open), never from what build_demo returns.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from portcullis import demo_data, scheduler
from portcullis.access import requests
from portcullis.access.schemas import RequestIn
from portcullis.accounts import service as accounts
from portcullis.accounts.models import User
from portcullis.core.clock import FrozenClock, as_utc
from portcullis.core.errors import ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.demo import build_demo
from portcullis.models import metadata
from tests.web.helpers import post_form


def _rows(rt: Runtime, sql: str, **params: object) -> list[tuple[Any, ...]]:
    with rt.session() as s:
        return [tuple(r) for r in s.execute(text(sql), params)]


def _one(rt: Runtime, sql: str, **params: object) -> Any:
    return _rows(rt, sql, **params)[0][0]


def _at(value: object) -> datetime:
    # Plain SQL on SQLite gives the stored text; on PostgreSQL, a datetime.
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


def _payload(raw: object) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(bytes(raw) if isinstance(raw, (bytes, memoryview)) else str(raw))
    return data


def _open(rt: Runtime, kind: str) -> list[tuple[Any, ...]]:
    return _rows(rt, "SELECT id, person_id, grant_id, account_id, owner_id, due_on, opened_at FROM finding "
                     "WHERE status = 'open' AND kind = :k", k=kind)


def test_the_four_problems_are_open_findings(rt: Runtime, request: pytest.FixtureRequest) -> None:
    started = time.perf_counter()
    build_demo(rt)
    took = time.perf_counter() - started
    if "sqlite" in request.node.name:
        # It runs at every `portcullis demo`; generous for a shared machine (about 1.5 s alone).
        assert took < 6, f"the demo took {took:.1f} s to build"

    # (a) A leaver still holds an active grant, and the daily pass says so.
    leaver = _rows(rt, "SELECT f.id, p.status, g.status FROM finding f JOIN person p ON p.id = f.person_id "
                       "JOIN access_grant g ON g.id = f.grant_id "
                       "WHERE f.status = 'open' AND f.kind = 'person_inactive'")
    assert leaver, "no open person_inactive finding"
    assert {(status, grant) for _, status, grant in leaver} == {("leaver", "active")}

    # (b) Privileged access held by someone not enrolled in MFA.
    no_mfa = _rows(rt, "SELECT p.mfa_enrolled, e.privileged, e.remote_admin, g.status FROM finding f "
                       "JOIN person p ON p.id = f.person_id JOIN access_grant g ON g.id = f.grant_id "
                       "JOIN entitlement e ON e.id = g.entitlement_id "
                       "WHERE f.status = 'open' AND f.kind = 'mfa_missing'")
    assert no_mfa
    for mfa, privileged, remote, status in no_mfa:
        assert not mfa
        assert (privileged or remote)
        assert status == "active"

    # (c) One person holds both sides of a separation-of-duties rule.
    conflicts = _rows(rt, """
        SELECT DISTINCT f.person_id FROM finding f JOIN sod_rule r ON 1 = 1
        JOIN access_grant gl ON gl.person_id = f.person_id AND gl.entitlement_id = r.left_entitlement_id
        JOIN access_grant gr ON gr.person_id = f.person_id AND gr.entitlement_id = r.right_entitlement_id
        WHERE f.status = 'open' AND f.kind = 'sod_conflict' AND gl.status = 'active' AND gr.status = 'active'
    """)
    assert len(conflicts) == 1
    assert len(_open(rt, "sod_conflict")) == 2  # one finding per grant of the pair

    # (d) An account in the directory that belongs to nobody.
    orphans = _rows(rt, "SELECT a.system, a.account_name, a.person_id, a.active FROM finding f "
                        "JOIN target_account a ON a.id = f.account_id "
                        "WHERE f.status = 'open' AND f.kind = 'orphan_account'")
    assert orphans == [("corp-ldap", "svc-legacy-backup", None, True)]

    # The reconciliation's other findings are there too.
    live = _rows(rt, "SELECT p.status, a.active FROM finding f JOIN person p ON p.id = f.person_id "
                     "JOIN target_account a ON a.id = f.account_id "
                     "WHERE f.status = 'open' AND f.kind = 'leaver_account_live'")
    assert live == [("leaver", True)]
    assert len(_open(rt, "access_without_grant")) == 1
    unprovisioned = _rows(rt, "SELECT g.status, g.provisioned_at FROM finding f "
                              "JOIN access_grant g ON g.id = f.grant_id "
                              "WHERE f.status = 'open' AND f.kind = 'grant_not_provisioned'")
    assert unprovisioned == [("active", None)]

    # Each finding is someone's to act on, by a date.
    for kind in ("person_inactive", "mfa_missing", "sod_conflict", "orphan_account", "leaver_account_live"):
        for _id, _p, _g, _a, owner, due, opened in _open(rt, kind):
            assert owner is not None, f"{kind} finding {_id} has no owner"
            assert _at(due) > _at(opened)


def test_the_admin_has_a_request_to_decide_and_sees_their_access(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    build_demo(rt)
    statuses = dict(_rows(rt, "SELECT status, count(*) FROM access_request GROUP BY status"))
    assert statuses.get("pending") == 1
    assert statuses.get("approved", 0) >= 1
    assert statuses.get("rejected") == 1
    assert statuses.get("expired") == 1

    admin_person = _one(rt, "SELECT person_id FROM user_account WHERE email = :e", e=demo_data.ADMIN_EMAIL)
    pending = _rows(rt, "SELECT id, requester_id, subject_id, required_approvals, approver_kinds, decide_by "
                        "FROM access_request WHERE status = 'pending'")
    request_id, requester, subject, needed, kinds, decide_by = pending[0]
    assert admin_person not in (requester, subject)
    assert "security_officer" in (json.loads(kinds) if isinstance(kinds, str) else kinds)
    assert _at(decide_by) > clock.now()
    approvals = _rows(rt, "SELECT approver_id, approve FROM approval WHERE request_id = :r", r=request_id)
    assert len(approvals) == needed - 1
    assert all(a for _, a in approvals)
    assert admin_person not in {a for a, _ in approvals}

    with rt.session() as s:
        admin = s.query(User).filter_by(email=demo_data.ADMIN_EMAIL).one()
        principal = accounts.principal_for(admin, "web", True)
    with rt.work(principal) as ctx:
        assert [r.id for r in requests.approvals_inbox(ctx)] == [request_id]

    # The same, as the admin sees it after logging in.
    r = post_form(client, "/login", "/login", {"email": demo_data.ADMIN_EMAIL, "password": demo_data.ADMIN_PASSWORD},
                  follow_redirects=False)
    assert r.status_code == 303
    code = pyotp.TOTP(demo_data.ADMIN_TOTP_SECRET).at(clock.now())
    assert post_form(client, "/login/totp", "/login/totp", {"code": code}, follow_redirects=False).status_code == 303
    subject_email = _one(rt, "SELECT email FROM person WHERE id = :i", i=subject)
    inbox = client.get("/access/approvals")
    assert inbox.status_code == 200
    assert subject_email in inbox.text
    held = _rows(rt, "SELECT e.name FROM access_grant g JOIN entitlement e ON e.id = g.entitlement_id "
                     "WHERE g.person_id = :p AND g.status = 'active'", p=admin_person)
    assert held, "the CISO holds no access"
    findings = client.get("/access/findings")
    assert findings.status_code == 200
    assert "svc-legacy-backup" in findings.text
    mine = client.get("/access")
    assert mine.status_code == 200
    for (name,) in held:
        assert name in mine.text


def test_every_user_is_someone_and_every_grant_is_audited(rt: Runtime) -> None:
    build_demo(rt)
    assert _one(rt, "SELECT count(*) FROM user_account WHERE person_id IS NULL") == 0
    assert _one(rt, "SELECT count(*) FROM user_account") >= 2
    titles = dict(_rows(rt, "SELECT u.email, p.job_title FROM user_account u JOIN person p ON p.id = u.person_id"))
    assert titles[demo_data.ADMIN_EMAIL] == "Chief Information Security Officer"
    auditor_dept = _one(rt, "SELECT p.department FROM user_account u JOIN person p ON p.id = u.person_id "
                            "WHERE u.email = :e", e=demo_data.AUDITOR_EMAIL)
    assert auditor_dept == "Compliance"
    # Whoever approves in the demo's history was enrolled in MFA, as the platform requires of approvers.
    roles = {"admin", "security_officer", "approver", "key_custodian"}
    for email, role, enrolled in _rows(rt, "SELECT email, role, totp_enrolled_at FROM user_account"):
        if role in roles:
            assert enrolled is not None, f"{email} ({role}) has no MFA"

    audited: dict[str, set[str]] = {}
    payloads: dict[str, list[dict[str, Any]]] = {}
    for obj, action, payload in _rows(rt, "SELECT object_id, action, payload FROM ledger_record "
                                          "WHERE object_type = 'grant'"):
        audited.setdefault(str(obj), set()).add(str(action))
        payloads.setdefault(str(obj), []).append(_payload(payload))
    grants = _rows(rt, "SELECT id, request_id, role_id FROM access_grant")
    assert len(grants) > 60
    for gid, request_id, role_id in grants:
        actions = audited.get(str(gid), set())
        assert actions & {"grant.created", "grant.imported"}, f"grant {gid} has no ledger record"
        if request_id is None and role_id is None:
            # Neither requested nor from a role: access found from before Portcullis, and said so.
            assert "grant.imported" in actions
            imported = [p for p in payloads[str(gid)] if p.get("action") == "grant.imported"]
            assert imported[0]["source"] == "legacy spreadsheet"
        else:
            assert "grant.imported" not in actions
    # Findings, requests and decisions are in the ledger too.
    for table, object_type in (("finding", "finding"), ("access_request", "access_request")):
        ids = {str(i) for (i,) in _rows(rt, f"SELECT id FROM {table}")}
        logged = {str(o) for (o,) in _rows(rt, "SELECT object_id FROM ledger_record WHERE object_type = :t",
                                           t=object_type)}
        assert ids
        assert ids <= logged
    assert _one(rt, "SELECT count(*) FROM ledger_record WHERE action = 'reconciliation.run'") == 1


def test_the_history_reads_in_time_order_and_ends_now(rt: Runtime, clock: FrozenClock) -> None:
    build_demo(rt)
    times = [_at(t) for (t,) in _rows(rt, "SELECT recorded_at FROM ledger_record ORDER BY stream_id, seq")]
    assert times == sorted(times), "the demo's ledger goes back in time"
    assert times[0] <= clock.now() - timedelta(days=14)
    assert times[-1] <= clock.now()
    # A request expired before now, an ad hoc grant ran out by itself, one was revoked, one is still running.
    assert _one(rt, "SELECT count(*) FROM access_request WHERE status = 'expired' AND decide_by <= :n",
                n=clock.now()) == 1
    ended = dict(_rows(rt, "SELECT status, count(*) FROM access_grant WHERE status <> 'active' GROUP BY status"))
    assert ended.get("expired", 0) >= 1
    assert ended.get("revoked", 0) >= 1
    running = _rows(rt, "SELECT starts_at, expires_at FROM access_grant "
                        "WHERE status = 'active' AND request_id IS NOT NULL")
    assert running
    for starts, expires in running:
        assert _at(starts) < clock.now() < _at(expires)
    # The scheduler, run right after, finds nothing more to do: the demo is a consistent state.
    results = scheduler.run_once(rt)
    assert results["access.expire_requests"] == {"ok": True, "result": 0}
    assert results["access.expire_grants"] == {"ok": True, "result": 0}
    daily = results["access.daily_pass"]["result"]
    assert (daily["opened"], daily["resolved"]) == (0, 0)


def test_the_problems_could_only_come_from_before_portcullis(rt: Runtime) -> None:
    build_demo(rt)
    # The person without MFA holding privileged access could not have asked for it through Portcullis.
    person_id, entitlement_id = _rows(rt, "SELECT f.person_id, g.entitlement_id FROM finding f "
                                          "JOIN access_grant g ON g.id = f.grant_id "
                                          "WHERE f.status = 'open' AND f.kind = 'mfa_missing'")[0]
    with rt.session() as s:
        admin = s.query(User).filter_by(email=demo_data.ADMIN_EMAIL).one()
        principal = accounts.principal_for(admin, "web", True)
    with pytest.raises(ValidationFailed) as refused, rt.work(principal) as ctx:
        requests.request_access(ctx, RequestIn(subject_id=person_id, entitlement_id=entitlement_id,
                                               justification="Extend the engagement by two weeks", duration_days=14))
    assert "MFA" in str(refused.value.errors)


def test_a_second_run_adds_no_rows_and_no_ledger_records(rt: Runtime) -> None:
    assert build_demo(rt).created
    with rt.session() as s:
        before = {t.name: s.scalar(text(f'SELECT count(*) FROM "{t.name}"')) for t in metadata.sorted_tables}
    assert not build_demo(rt).created
    with rt.session() as s:
        after = {t.name: s.scalar(text(f'SELECT count(*) FROM "{t.name}"')) for t in metadata.sorted_tables}
    assert after == before
    for table in ("access_grant", "finding", "entitlement", "access_role", "training_record", "target_account"):
        assert before[table] > 0, f"the demo built no {table}"
