"""Expiry notices (§30) end to end: planned in the database, delivered to a real SMTP server and HTTP receiver.

What arrived is read on the receiving side; notice ids, dates, recipients and
signatures are computed here from the certificate the test issued itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from portcullis.access.models import Finding
from portcullis.certs import notices
from portcullis.certs.models import CertNotice, DeploymentKind
from portcullis.certs.register import CertIn, Place, record_found, register_certificate
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import PersonIn
from portcullis.keys.service import key_service
from portcullis.ledger.models import LedgerRecord
from portcullis.ledger.service import decode
from portcullis.scheduler import run_once
from tests.certs.pki import Issued, issue
from tests.certs.smtp_server import (
    SmtpTestServer,
    smtp_server_fixture,  # noqa: F401 - the fixture `smtp_server`
)
from tests.conftest import START

SYSTEM = Principal.system("tests")
OWNER = "olivia@kestrel.example.eu"
MANAGER = "marc@kestrel.example.eu"
PKI_TEAM = "pki@kestrel.example.eu"
SENDER = "portcullis@kestrel.example.eu"
HOST = "www.kestrel.example"
WEBHOOK_SECRET = "whsec-7f3a9c1e-do-not-log"
URL_TOKEN = "tok-5b8e2d40-in-the-url"
PASSWORD = "Relay-Passw0rd-4711"
FIRST_BACKOFF = timedelta(seconds=60)


# -- an HTTP receiver ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.body)
        return doc


@dataclass
class Hook:
    url: str = ""
    status: int = 202  # the answer once `fail_next` is used up
    fail_next: list[int] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, hit: Hit) -> int:
        with self.lock:
            self.hits.append(hit)
            return self.fail_next.pop(0) if self.fail_next else self.status


@pytest.fixture
def hook() -> Iterator[Hook]:
    receiver = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = receiver.answer(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            reply = b"ok" if status < 300 else b"receiver is down"
            self.send_response(status)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/expiry"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, smtp_server: SmtpTestServer, hook: Hook) -> Settings:
    return Settings(
        data_dir=tmp_path / "var",
        database_url=db_url,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        smtp_sender=SENDER,
        cert_notify_to=f" {PKI_TEAM.upper()} , ",
        cert_webhook_url=f"{hook.url}?token={URL_TOKEN}",
        cert_webhook_secret=SecretStr(WEBHOOK_SECRET),
    )


# -- the firm and its certificates -----------------------------------------------------------------------------


def person(name: str, mail: str, manager_id: int | None = None) -> PersonIn:
    return PersonIn(
        external_id=f"HR-{name}",
        email=mail,
        full_name=name,
        status="active",
        start_date=date(2024, 1, 1),
        manager_id=manager_id,
    )


def build_people(rt: Runtime) -> None:
    with rt.work(SYSTEM) as ctx:
        marc = inventory.create_person(ctx, person("Marc Manager", MANAGER))
        inventory.create_person(ctx, person("Olivia Owner", OWNER, manager_id=marc.id))


def leaf_expiring_in(days: float) -> Issued:
    return issue(
        HOST,
        sans=[HOST],
        not_before=START - timedelta(days=70),
        not_after=START + timedelta(days=days),
    )


def register(rt: Runtime, cert: Issued, place: Place) -> None:
    with rt.work(SYSTEM) as ctx:
        found = record_found(ctx, [cert.cert], place)
        register_certificate(ctx, found.leaf.id, CertIn(owner_email=OWNER))


def fingerprint(cert: Issued) -> str:
    return hashlib.sha256(cert.der).hexdigest()


def expected_id(cert: Issued, threshold: str, channel: str) -> str:
    return f"cert-{fingerprint(cert)[:32]}-{threshold}-{channel}"


def tick(rt: Runtime, chans: notices.Channels | None = None) -> dict[str, int]:
    """Plan in one unit of work, then deliver: what the certs.plan and certs.notify jobs do."""
    chans = chans or notices.channels(rt.settings)
    with rt.work(Principal.system("scheduler")) as ctx:
        notices.plan_notices(ctx, chans)
    return notices.deliver_notices(rt, chans)


def notice_rows(rt: Runtime) -> list[CertNotice]:
    with rt.session() as s:
        return list(s.scalars(select(CertNotice).order_by(CertNotice.id)))


def row(rt: Runtime, threshold: str, channel: str) -> CertNotice:
    [n] = [n for n in notice_rows(rt) if (n.threshold, n.channel) == (threshold, channel)]
    return n


def ledger(rt: Runtime, action: str) -> list[tuple[str, dict[str, Any]]]:
    """(object id, the fields the record sets) of each record of `action`, oldest first."""
    with rt.session() as s:
        stmt = select(LedgerRecord).where(LedgerRecord.action == action).order_by(LedgerRecord.id)
        out = []
        for r in s.scalars(stmt):
            payload = decode(r)
            assert payload["action"] == action
            assert payload["object_type"] == "cert_notice"
            assert all(before is None for before, _ in payload["changes"].values())
            out.append((r.object_id, {k: after for k, (_, after) in payload["changes"].items()}))
        return out


def open_findings(rt: Runtime, kind: str) -> list[Finding]:
    with rt.session() as s:
        return list(s.scalars(select(Finding).where(Finding.kind == kind, Finding.status == "open")))


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


# -- once per threshold and channel --------------------------------------------------------------------------


def test_each_notice_is_sent_once_and_overdue_reaches_the_manager(
    rt: Runtime, clock: FrozenClock, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    cert = leaf_expiring_in(20)
    fp = fingerprint(cert)
    register(rt, cert, Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    # Unseal the key service first: certs.plan builds it inside its unit of work, and on SQLite its first
    # unseal (a write in a second transaction) waits for that unit of work's lock (reported, jobs.py).
    key_service(rt)

    first = run_once(rt)

    assert first["certs.plan"]["ok"], first["certs.plan"]
    assert first["certs.plan"]["result"]["notices_planned"] == 2
    assert first["certs.notify"] == {"ok": True, "result": {"sent": 2, "failed": 0}}
    [mail] = smtp_server.messages
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == (OWNER, PKI_TEAM)  # the owner and PORTCULLIS_CERT_NOTIFY_TO, not the manager yet
    assert mail.message["Message-ID"] == f"<{expected_id(cert, '30d', 'email')}@portcullis>"
    assert mail.message["Subject"] == f"[Portcullis] Certificate {HOST} ({fp[:16]}) expires in 20 days (2026-12-14)"
    assert fp in mail.message.get_content()
    [hit] = hook.hits
    assert hit.path == f"/hooks/expiry?token={URL_TOKEN}"
    assert hit.headers["idempotency-key"] == expected_id(cert, "30d", "webhook")
    assert hit.headers["x-portcullis-signature"] == signature(hit.body)
    assert hit.json["notice"] == "30d"
    assert hit.json["certificate"]["fingerprint"] == fp
    assert hit.json["certificate"]["days_left"] == 20
    assert datetime.fromisoformat(hit.json["certificate"]["not_after"]) == START + timedelta(days=20)

    again = run_once(rt)
    assert again["certs.notify"] == {"ok": True, "result": {"sent": 0, "failed": 0}}
    assert (len(smtp_server.messages), len(hook.hits)) == (1, 1)

    clock.advance(timedelta(days=10))  # 10 days left: the 15-day notice
    assert tick(rt) == {"sent": 2, "failed": 0}
    assert tick(rt) == {"sent": 0, "failed": 0}
    assert [m.message["Message-ID"] for m in smtp_server.messages[1:]] == [
        f"<{expected_id(cert, '15d', 'email')}@portcullis>"
    ]
    assert [h.json["notice"] for h in hook.hits] == ["30d", "15d"]
    assert "expires in 10 days" in smtp_server.messages[1].message["Subject"]

    clock.advance(timedelta(days=9, hours=12))  # 12 hours left
    tick(rt)
    assert [h.json["notice"] for h in hook.hits] == ["30d", "15d", "2d"]

    clock.advance(timedelta(days=1))  # expired 12 hours ago: escalation
    assert tick(rt) == {"sent": 2, "failed": 0}
    assert tick(rt) == {"sent": 0, "failed": 0}
    overdue = smtp_server.messages[3]
    assert overdue.rcpt_tos == (MANAGER, OWNER, PKI_TEAM)
    assert overdue.message["Subject"] == f"[Portcullis] OVERDUE: certificate {HOST} ({fp[:16]}) expired on 2026-12-14"
    assert [h.json["notice"] for h in hook.hits] == ["30d", "15d", "2d", "overdue"]
    assert hook.hits[3].json["certificate"]["days_left"] == -1
    assert len(smtp_server.messages) == 4

    plan = [(t, ch) for t in ("30d", "15d", "2d", "overdue") for ch in ("email", "webhook")]
    rows = notice_rows(rt)
    assert sorted((n.threshold, n.channel) for n in rows) == sorted(plan)
    assert {(n.status, n.attempts, n.last_error) for n in rows} == {("sent", 1, None)}
    by_id = {str(n.id): n for n in rows}
    due = ledger(rt, "cert.notice_due")
    assert sorted(oid for oid, _ in due) == sorted(by_id)
    for oid, payload in due:
        n = by_id[oid]
        assert payload["certificate"] == fp
        assert payload["threshold"] == n.threshold
        assert payload["channel"] == n.channel
    sent = ledger(rt, "cert.notice_sent")
    assert sorted(p["notice_id"] for _, p in sent) == sorted(expected_id(cert, t, ch) for t, ch in plan)
    for oid, payload in sent:
        assert payload["notice_id"] == expected_id(cert, by_id[oid].threshold, by_id[oid].channel)
        assert payload["attempts"] == 1
    assert ledger(rt, "cert.notice_failed") == []


def test_a_certificate_first_seen_late_gets_only_the_tightest_notice(
    rt: Runtime, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    register(rt, leaf_expiring_in(10), Place(DeploymentKind.FILE, "/etc/nginx/tls/www.pem"))

    assert tick(rt) == {"sent": 2, "failed": 0}

    assert [(n.threshold, n.channel) for n in notice_rows(rt)] == [("15d", "email"), ("15d", "webhook")]
    assert [h.json["notice"] for h in hook.hits] == ["15d"]


def test_a_ca_certificate_gets_the_365_and_180_day_notices(
    rt: Runtime, clock: FrozenClock, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    root = issue(
        "Kestrel Root CA", ca=True, not_before=START - timedelta(days=3000), not_after=START + timedelta(days=300)
    )
    register(rt, root, Place(DeploymentKind.FILE, "/etc/pki/kestrel-root.pem"))

    tick(rt)
    assert [h.json["notice"] for h in hook.hits] == ["365d"]
    for days, left in ((130, 170), (140, 30), (15, 15), (13, 2), (1, 1)):
        clock.advance(timedelta(days=days))
        tick(rt)
        assert [h.json["notice"] for h in hook.hits] == ["365d", "180d"], f"{left} days left"
    clock.advance(timedelta(days=2))
    tick(rt)

    assert [h.json["notice"] for h in hook.hits] == ["365d", "180d", "overdue"]
    assert [m.message["Message-ID"] for m in smtp_server.messages] == [
        f"<{expected_id(root, t, 'email')}@portcullis>" for t in ("365d", "180d", "overdue")
    ]
    assert {n.threshold for n in notice_rows(rt)} == {"365d", "180d", "overdue"}


# -- failures, retries, findings -----------------------------------------------------------------------------


def test_a_failed_delivery_is_retried_after_the_backoff_and_then_sent_once(
    rt: Runtime, clock: FrozenClock, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    cert = leaf_expiring_in(20)
    register(rt, cert, Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    smtp_server.fail("MAIL", "451 4.3.0 mailbox locked, try again later", times=1)
    hook.fail_next = [500]

    assert tick(rt) == {"sent": 0, "failed": 2}

    email, webhook = row(rt, "30d", "email"), row(rt, "30d", "webhook")
    for n in (email, webhook):
        assert (n.status, n.attempts, n.sent_at) == ("pending", 1, None)
        assert n.next_attempt_at == START + FIRST_BACKOFF
    assert email.last_error is not None
    assert "451" in email.last_error
    assert webhook.last_error is not None
    assert "500" in webhook.last_error
    assert smtp_server.messages == []
    assert len(hook.hits) == 1

    # Not before the back-off is over: the SMTP server would now accept, so a re-send would show.
    clock.advance(FIRST_BACKOFF - timedelta(seconds=1))
    assert tick(rt) == {"sent": 0, "failed": 0}
    assert smtp_server.messages == []
    assert len(hook.hits) == 1

    clock.advance(timedelta(seconds=1))
    assert tick(rt) == {"sent": 2, "failed": 0}
    clock.advance(timedelta(hours=1))
    assert tick(rt) == {"sent": 0, "failed": 0}

    [mail] = smtp_server.messages
    assert mail.message["Message-ID"] == f"<{expected_id(cert, '30d', 'email')}@portcullis>"
    assert len(hook.hits) == 2
    assert {h.headers["idempotency-key"] for h in hook.hits} == {expected_id(cert, "30d", "webhook")}
    for n in notice_rows(rt):
        assert (n.status, n.attempts, n.last_error) == ("sent", 2, None)
        assert n.sent_at == START + FIRST_BACKOFF
    failed = ledger(rt, "cert.notice_failed")
    assert sorted(p["notice_id"] for _, p in failed) == sorted(
        expected_id(cert, "30d", ch) for ch in ("email", "webhook")
    )
    for oid, payload in failed:
        assert payload["attempts"] == 1
        assert datetime.fromisoformat(payload["next_attempt_at"]) == START + FIRST_BACKOFF
        assert oid in {str(email.id), str(webhook.id)}
    assert {(oid, p["attempts"]) for oid, p in ledger(rt, "cert.notice_sent")} == {
        (str(email.id), 2),
        (str(webhook.id), 2),
    }
    assert open_findings(rt, "cert_notice_failed") == []


def test_after_the_last_attempt_the_notice_fails_with_a_finding(
    rt: Runtime, clock: FrozenClock, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    cert = leaf_expiring_in(20)
    register(rt, cert, Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    hook.status = 503

    tick(rt)
    for attempt in range(1, notices.MAX_ATTEMPTS + 1):
        n = row(rt, "30d", "webhook")
        assert (n.attempts, len(hook.hits)) == (attempt, attempt)
        if attempt == notices.MAX_ATTEMPTS:
            break
        delay = timedelta(seconds=min(6 * 3600, 60 * 2 ** (attempt - 1)))
        assert (n.status, n.next_attempt_at) == ("pending", clock.now() + delay)
        assert open_findings(rt, "cert_notice_failed") == []
        clock.advance(delay - timedelta(seconds=1))
        notices.deliver_notices(rt, notices.channels(rt.settings))
        assert len(hook.hits) == attempt, "retried before its back-off was over"
        clock.advance(timedelta(seconds=1))
        notices.deliver_notices(rt, notices.channels(rt.settings))

    n = row(rt, "30d", "webhook")
    assert (n.status, n.next_attempt_at) == ("failed", None)
    assert n.last_error is not None
    assert "503" in n.last_error
    [finding] = open_findings(rt, "cert_notice_failed")
    assert finding.key == f"cert_notice_failed:notice:{n.id}"
    assert "webhook" in finding.detail
    assert "503" in finding.detail
    assert [p["attempts"] for oid, p in ledger(rt, "cert.notice_failed") if oid == str(n.id)] == list(
        range(1, notices.MAX_ATTEMPTS + 1)
    )
    # A failed notice is not tried again, and the email went out once at the start.
    clock.advance(timedelta(days=1))
    tick(rt)
    assert len(hook.hits) == notices.MAX_ATTEMPTS
    assert len(smtp_server.messages) == 1
    assert row(rt, "30d", "email").status == "sent"


def test_a_malformed_recipient_is_a_failed_attempt_not_a_crash(
    rt: Runtime, settings: Settings, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    register(rt, leaf_expiring_in(20), Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    chans = notices.channels(settings.model_copy(update={"cert_notify_to": "PKI Team <pki@kestrel.example.eu>"}))

    assert tick(rt, chans) == {"sent": 1, "failed": 1}

    email = row(rt, "30d", "email")
    assert (email.status, email.attempts, email.next_attempt_at) == ("pending", 1, START + FIRST_BACKOFF)
    assert email.last_error is not None
    assert "not a bare email address" in email.last_error
    assert smtp_server.messages == []
    assert row(rt, "30d", "webhook").status == "sent"


def test_a_notice_left_sending_by_a_crashed_worker_is_picked_up_again(
    rt: Runtime, clock: FrozenClock, smtp_server: SmtpTestServer, hook: Hook
) -> None:
    build_people(rt)
    register(rt, leaf_expiring_in(20), Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    chans = notices.channels(rt.settings)
    with rt.work(SYSTEM) as ctx:
        assert notices.plan_notices(ctx, chans) == 2
    email, webhook = row(rt, "30d", "email"), row(rt, "30d", "webhook")
    with rt.session() as s:
        # The email's worker died long ago; the webhook's worker claimed it a moment ago and is still at it.
        dead = s.get(CertNotice, email.id)
        live = s.get(CertNotice, webhook.id)
        assert dead is not None
        assert live is not None
        dead.status, dead.next_attempt_at = "sending", START - timedelta(minutes=1)
        live.status, live.next_attempt_at = "sending", START + timedelta(minutes=5)

    assert notices.deliver_notices(rt, chans) == {"sent": 1, "failed": 0}
    assert len(smtp_server.messages) == 1
    assert hook.hits == []
    assert row(rt, "30d", "webhook").status == "sending"

    clock.advance(timedelta(minutes=5))  # the live worker's claim has lapsed: it died too
    assert notices.deliver_notices(rt, chans) == {"sent": 1, "failed": 0}
    assert len(hook.hits) == 1
    assert len(smtp_server.messages) == 1
    assert {(n.status, n.attempts) for n in notice_rows(rt)} == {("sent", 1)}


def test_a_rescheduled_notice_is_not_claimed_by_a_worker_that_listed_it_before(
    rt: Runtime, smtp_server: SmtpTestServer, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_people(rt)
    register(rt, leaf_expiring_in(20), Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    chans = notices.channels(rt.settings)
    with rt.work(SYSTEM) as ctx:
        notices.plan_notices(ctx, chans)
    hook.status = 500
    listed = notices._due
    other: list[dict[str, int]] = []

    def due_then_another_worker_runs(rt_: Runtime) -> list[int]:
        ids = listed(rt_)
        if not other:
            # Between this worker's listing and its claims, another worker sends the email and fails the webhook.
            monkeypatch.setattr(notices, "_due", listed)
            other.append(notices.deliver_notices(rt_, chans))
        return ids

    monkeypatch.setattr(notices, "_due", due_then_another_worker_runs)
    mine = notices.deliver_notices(rt, chans)

    assert other == [{"sent": 1, "failed": 1}]
    assert mine == {"sent": 0, "failed": 0}
    assert len(hook.hits) == 1, "the webhook was retried before its back-off"
    assert len(smtp_server.messages) == 1
    assert row(rt, "30d", "webhook").attempts == 1


# -- secrets ---------------------------------------------------------------------------------------------------


def test_no_secret_reaches_the_ledger_or_the_notice_rows(
    rt: Runtime, clock: FrozenClock, settings: Settings, hook: Hook
) -> None:
    build_people(rt)
    register(rt, leaf_expiring_in(20), Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    hook.fail_next = [500]
    secret_settings = {"smtp_username": "notifier", "smtp_password": SecretStr(PASSWORD)}
    forbidden = [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0notifier\0{PASSWORD}".encode()).decode(),
        WEBHOOK_SECRET,
        URL_TOKEN,
    ]
    # A relay that refuses the login and echoes the credentials back in its reply, then one that takes them.
    with (
        SmtpTestServer(auth_users={"notifier": "another-password"}, auth_echo=True) as careless,
        SmtpTestServer(auth_users={"notifier": PASSWORD}) as relay,
    ):
        bad = notices.channels(settings.model_copy(update={**secret_settings, "smtp_port": careless.port}))
        good = notices.channels(settings.model_copy(update={**secret_settings, "smtp_port": relay.port}))
        assert tick(rt, bad) == {"sent": 0, "failed": 2}
        clock.advance(FIRST_BACKOFF)
        assert tick(rt, good) == {"sent": 2, "failed": 0}
        [mail] = relay.messages
        assert mail.authenticated_as == "notifier"

    [failed_hit, retried] = hook.hits
    assert failed_hit.headers["idempotency-key"] == retried.headers["idempotency-key"]
    assert retried.path == f"/hooks/expiry?token={URL_TOKEN}"  # the token is used, only not written down
    assert retried.headers["x-portcullis-signature"] == signature(retried.body)
    errors = [p["error"] for _, p in ledger(rt, "cert.notice_failed")]
    assert any("535" in e for e in errors)
    assert any("500" in e for e in errors)
    with rt.session() as s:
        records = [r.payload.decode("utf-8") for r in s.scalars(select(LedgerRecord))]
        findings = [f.detail for f in s.scalars(select(Finding))]
    rows = [repr([getattr(n, c.name) for c in CertNotice.__table__.columns]) for n in notice_rows(rt)]
    assert records
    assert rows
    for text in records + rows + findings + [n.last_error or "" for n in notice_rows(rt)]:
        for secret in forbidden:
            assert secret not in text


def test_webhook_target_is_written_down_without_credentials(rt: Runtime, settings: Settings, hook: Hook) -> None:
    build_people(rt)
    register(rt, leaf_expiring_in(20), Place(DeploymentKind.ENDPOINT, f"{HOST}:443"))
    port = hook.url.split(":")[2].split("/")[0]
    url = f"http://hookuser:{URL_TOKEN}@127.0.0.1:{port}/hooks/{URL_TOKEN}/expiry"
    chans = notices.channels(settings.model_copy(update={"cert_webhook_url": url}))

    assert tick(rt, chans) == {"sent": 2, "failed": 0}

    [hit] = hook.hits
    assert hit.path == f"/hooks/{URL_TOKEN}/expiry"
    webhook = row(rt, "30d", "webhook")
    assert webhook.target == f"http://127.0.0.1:{port}"
    for action in ("cert.notice_due", "cert.notice_sent"):
        assert URL_TOKEN not in json.dumps([p for _, p in ledger(rt, action)])
