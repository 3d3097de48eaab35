"""The ledger pages: streams with their last verification, the two buttons behind CSRF, and proofs."""

from __future__ import annotations

import hashlib
import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.ledger import merkle
from portcullis.ledger.models import LedgerCheckpoint, LedgerRecord
from tests.factories import make_user
from tests.ledger.test_tamper import _as_owner, _fill
from tests.web.helpers import csrf_of, inline_problems, login, post_form


def _payloads(rt: Runtime) -> list[bytes]:
    with rt.session() as s:
        return [bytes(p) for p in s.scalars(select(LedgerRecord.payload).order_by(LedgerRecord.seq))]


def _count(rt: Runtime, model: type[LedgerRecord] | type[LedgerCheckpoint]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count(model.id))) or 0


def _audit_row(page: str) -> str:
    found = re.search(r'<tr>\s*<td><a href="/ledger/audit">audit</a></td>(.*?)</tr>', page, re.S)
    assert found, "no row for the audit stream"
    return found.group(1)


def test_auditor_verifies_and_signs(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.AUDITOR), clock)
    _fill(rt, 20)
    r = client.get("/ledger")
    assert r.status_code == 200
    assert inline_problems(r.text) == []
    assert '<a href="/ledger" aria-current="page">Ledger</a>' in r.text
    assert str(rt.signer.verifier) in html.unescape(r.text)
    row = _audit_row(r.text)
    assert f"<td>{len(_payloads(rt))}</td>" in row
    assert "never" in row
    assert "Sign checkpoint" in r.text

    # Without the form's token nothing happens.
    before = _count(rt, LedgerRecord)
    r = client.post("/ledger/verify", data={})
    assert r.status_code == 403
    assert _count(rt, LedgerRecord) == before

    r = post_form(client, "/ledger", "/ledger/verify", {}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/ledger?done=verified"
    page = client.get(r.headers["location"]).text
    assert "Verification finished" in page
    assert '<span class="badge ok">ok</span>' in _audit_row(page)

    assert _count(rt, LedgerCheckpoint) == 0
    r = post_form(client, "/ledger", "/ledger/checkpoints", {}, follow_redirects=False)
    assert r.status_code == 303
    assert _count(rt, LedgerCheckpoint) == 1
    size = len(_payloads(rt))
    page = client.get(r.headers["location"]).text
    assert "Checkpoints signed" in page
    assert f"size {size}" in _audit_row(page)
    assert "unsigned" not in _audit_row(page)

    _as_owner(rt, "UPDATE ledger_record SET payload = :p WHERE seq = 7", p=b'{"action":"forged"}')
    post_form(client, "/ledger", "/ledger/verify", {})
    row = _audit_row(client.get("/ledger").text)
    assert '<span class="badge bad">FAILED</span>' in row
    assert "audit[7]: changed" in row


def test_stream_page_shows_checkpoints_and_a_proof(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.MANAGEMENT_BODY), clock)
    _fill(rt, 25)
    page = client.get("/ledger").text
    assert "Verify now" in page
    assert "Sign checkpoint" not in page  # reading, not signing
    token = csrf_of(page)
    r = client.post("/ledger/checkpoints", data={"csrf_token": token})
    assert r.status_code == 403
    assert _count(rt, LedgerCheckpoint) == 0

    r = client.get("/ledger/audit", params={"index": "4"})
    assert r.status_code == 404
    assert "no checkpoint yet" in r.text
    with rt.session() as s:
        from portcullis.ledger.checkpoints import checkpoint_all

        checkpoint_all(s, rt.signer, rt.clock.now())
    payloads = _payloads(rt)
    r = client.get("/ledger/audit")
    assert r.status_code == 200
    assert inline_problems(r.text) == []
    assert f"<td>{len(payloads)}</td>" in r.text
    assert "\u2014 " + rt.signer.name in html.unescape(r.text)  # the signed note, signature line and all

    r = client.get("/ledger/audit", params={"index": "4"})
    assert r.status_code == 200
    assert inline_problems(r.text) == []
    leaves = [hashlib.sha256(b"\x00" + p).digest() for p in payloads]
    expected = merkle.inclusion_proof(merkle.memory_range_hash(leaves), 4, len(leaves))
    shown = re.findall(r'<li><code>([0-9a-f]{64})</code></li>', r.text)
    assert shown == [h.hex() for h in expected]
    assert leaves[4].hex() in r.text
    assert '"object_id": "' in html.unescape(r.text)

    r = client.get("/ledger/audit", params={"index": str(len(payloads) + 3)})
    assert r.status_code == 404
    assert "not covered by the latest checkpoint" in r.text
    assert client.get("/ledger/audit", params={"index": "x"}).status_code == 400
    assert client.get("/ledger/nope").status_code == 404


def test_staff_cannot_see_or_use_the_ledger(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.STAFF, enrol_mfa=False), clock)
    home = client.get("/").text
    assert 'href="/ledger"' not in home
    for path in ("/ledger", "/ledger/audit", "/ledger/audit?index=0"):
        r = client.get(path)
        assert r.status_code == 403, path
        assert inline_problems(r.text) == []
    token = csrf_of(client.get("/account").text)
    before = _count(rt, LedgerRecord)
    for action in ("/ledger/verify", "/ledger/checkpoints"):
        assert client.post(action, data={"csrf_token": token}).status_code == 403
    assert _count(rt, LedgerRecord) == before
    assert _count(rt, LedgerCheckpoint) == 0
