"""Expiry notices over real SMTP (aiosmtpd) and a real HTTP receiver (http.server).

What arrived is checked on the receiving side, parsed by the stdlib, against
values the tests fix themselves (hard-coded ids, HMACs computed here).
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import json
import ssl
import tempfile
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.parser import BytesParser
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest

from portcullis.certs.notify import (
    DeliveryError,
    Notice,
    SmtpConfig,
    WebhookConfig,
    backoff_delay,
    message_id,
    post_webhook,
    send_email,
    verify_signature,
)
from tests.certs.smtp_server import (
    SmtpTestServer,
    make_server_tls,
    refusing_port,
    silent_port,
    smtp_server_fixture,  # noqa: F401 - the fixture `smtp_server`
)

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NOW_EPOCH = calendar.timegm((2026, 11, 24, 9, 0, 0))
SENDER = "portcullis@firm.example"
PASSWORD = "Relay-Passw0rd-4711"
SECRET = b"webhook-shared-secret-0123456789"


def notice(*recipients: str, notice_id: str = "cert:ab12cd:30d") -> Notice:
    return Notice(
        notice_id=notice_id,
        subject="Zertifikat www.firm.example läuft in 30 Tagen ab",
        text="The certificate for www.firm.example expires on 2026-12-24.\nRenew it now (§30).\n",
        recipients=recipients or ("pki@firm.example",),
        payload={"notice": notice_id, "fingerprint": "ab12cd", "days_left": 30, "subject": "CN=www.firm.example"},
    )


def smtp(server: SmtpTestServer, **kwargs: Any) -> SmtpConfig:
    return SmtpConfig(server.host, server.port, SENDER, **kwargs)


# -- email ---------------------------------------------------------------------------------------------------


def test_email_arrives_as_sent(smtp_server: SmtpTestServer) -> None:
    sent = notice("pki@firm.example", "ops@firm.example")

    returned = send_email(smtp(smtp_server), sent, now=NOW)

    assert returned == "<cert%3Aab12cd%3A30d@portcullis>"
    [mail] = smtp_server.messages
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == ("pki@firm.example", "ops@firm.example")
    assert max(mail.raw) < 0x80, "non-ASCII must be encoded, for relays without 8BITMIME"
    reparsed = BytesParser(policy=default_policy).parsebytes(mail.raw)
    for msg in (mail.message, reparsed):
        assert msg["Message-ID"] == "<cert%3Aab12cd%3A30d@portcullis>"
        assert msg["Message-ID"].defects == ()
        assert msg["Subject"] == "Zertifikat www.firm.example läuft in 30 Tagen ab"
        assert msg["From"] == SENDER
        assert [a.addr_spec for a in msg["To"].addresses] == ["pki@firm.example", "ops@firm.example"]
        assert parsedate_to_datetime(msg["Date"]) == NOW
        assert msg["Auto-Submitted"] == "auto-generated"
        assert msg.get_content().replace("\r\n", "\n") == sent.text  # CRLF is the wire's line end


@pytest.mark.parametrize(
    ("notice_id", "expected"),
    [
        ("cert:ab12cd:30d", "<cert%3Aab12cd%3A30d@portcullis>"),
        ("cert.ab12cd.30d", "<cert.ab12cd.30d@portcullis>"),
        ("cert%3Aab12cd%3A30d", "<cert%253Aab12cd%253A30d@portcullis>"),
        (".a..b%c.", "<%2Ea.%2Eb%25c%2E@portcullis>"),
        ('ca:[x]<y>@z"q\\', "<ca%3A%5Bx%5D%3Cy%3E%40z%22q%5C@portcullis>"),
    ],
)
def test_message_id_is_a_valid_and_distinct_id(notice_id: str, expected: str) -> None:
    assert message_id(notice_id) == expected
    parsed = BytesParser(policy=default_policy).parsebytes(f"Message-ID: {expected}\r\n\r\n".encode())
    assert parsed["Message-ID"].defects == ()


def test_refused_recipient_is_named_and_the_others_still_get_it(smtp_server: SmtpTestServer) -> None:
    smtp_server.refuse("gone@firm.example")

    with pytest.raises(DeliveryError) as caught:
        send_email(smtp(smtp_server), notice("pki@firm.example", "gone@firm.example"), now=NOW)

    err = caught.value
    assert (err.channel, err.target, err.temporary) == ("email", f"127.0.0.1:{smtp_server.port}", False)
    assert "gone@firm.example (550" in str(err)
    assert "delivered to pki@firm.example" in str(err)
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("pki@firm.example",)


def test_every_recipient_refused(smtp_server: SmtpTestServer) -> None:
    smtp_server.refuse("gone@firm.example")

    with pytest.raises(DeliveryError) as caught:
        send_email(smtp(smtp_server), notice("gone@firm.example"), now=NOW)

    assert "recipients refused: gone@firm.example (550 5.1.1 mailbox unavailable)" in str(caught.value)
    assert caught.value.temporary is False
    assert smtp_server.messages == []


def test_server_down_is_a_temporary_failure() -> None:
    with refusing_port() as port, pytest.raises(DeliveryError) as caught:
        send_email(SmtpConfig("127.0.0.1", port, SENDER, timeout=5), notice(), now=NOW)

    assert caught.value.temporary is True
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "cannot connect" in str(caught.value)


def test_server_that_never_greets_times_out() -> None:
    with silent_port() as port, pytest.raises(DeliveryError) as caught:
        send_email(SmtpConfig("127.0.0.1", port, SENDER, timeout=0.3), notice(), now=NOW)

    assert caught.value.temporary is True


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA"])
@pytest.mark.parametrize("code", [421, 451])
def test_temporary_reply_is_marked_temporary_and_a_retry_goes_through(
    smtp_server: SmtpTestServer, stage: Literal["MAIL", "RCPT", "DATA"], code: int
) -> None:
    smtp_server.fail(stage, f"{code} 4.3.0 busy, try later")
    cfg = smtp(smtp_server)

    with pytest.raises(DeliveryError) as caught:
        send_email(cfg, notice(), now=NOW)
    assert caught.value.temporary is True
    assert f"{code} 4.3.0 busy, try later" in str(caught.value)
    assert smtp_server.messages == []

    send_email(cfg, notice(), now=NOW)
    assert len(smtp_server.messages) == 1


def test_permanent_reply_is_not_temporary(smtp_server: SmtpTestServer) -> None:
    smtp_server.fail("DATA", "554 5.7.1 message refused")

    with pytest.raises(DeliveryError) as caught:
        send_email(smtp(smtp_server), notice(), now=NOW)

    assert (caught.value.temporary, caught.value.status) == (False, 554)
    assert "554 5.7.1 message refused" in str(caught.value)


def _everything_said(err: DeliveryError) -> str:
    return "\n".join([str(err), repr(err), err.reason, *traceback.format_exception(err)])


@pytest.mark.parametrize(
    ("auth_users", "echo", "expected"),
    [({}, False, "535"), ({}, True, "535 5.7.8 refused: notifier *** *** ***"), (None, False, "AUTH")],
    ids=["auth-refused", "auth-refused-echoing-credentials", "no-auth-offered"],
)
def test_password_never_in_the_error(auth_users: dict[str, str] | None, echo: bool, expected: str) -> None:
    with SmtpTestServer(auth_users=auth_users, auth_echo=echo) as server:
        cfg = smtp(server, username="notifier", password=PASSWORD)
        with pytest.raises(DeliveryError) as caught:
            send_email(cfg, notice(), now=NOW)

    err = caught.value
    assert err.temporary is False
    assert expected in str(err)
    said = _everything_said(err)
    plain = base64.b64encode(f"\0notifier\0{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, base64.b64encode(PASSWORD.encode()).decode(), plain):
        assert secret not in said
    assert PASSWORD not in repr(cfg)
    assert server.messages == []


@pytest.mark.parametrize("tls", ["none", "starttls", "implicit"])
def test_login_over_each_transport(tls: Literal["none", "starttls", "implicit"]) -> None:
    with SmtpTestServer(auth_users={"notifier": PASSWORD}, tls=tls) as server:
        cfg = smtp(
            server,
            starttls=tls == "starttls",
            ssl=tls == "implicit",
            cafile=server.ca_file,
            username="notifier",
            password=PASSWORD,
        )
        send_email(cfg, notice(), now=NOW)

    [mail] = server.messages
    assert mail.authenticated_as == "notifier"
    assert mail.tls is (tls != "none")


def test_untrusted_server_certificate_is_permanent() -> None:
    with SmtpTestServer(tls="implicit") as server, pytest.raises(DeliveryError) as caught:
        send_email(smtp(server, ssl=True), notice(), now=NOW)  # system trust store: the test CA is not in it

    assert caught.value.temporary is False
    assert "certificate" in str(caught.value)
    assert server.messages == []


def test_server_requiring_starttls_refuses_plain_mail() -> None:
    with SmtpTestServer(tls="starttls") as server, pytest.raises(DeliveryError) as caught:
        send_email(smtp(server), notice(), now=NOW)

    assert caught.value.status == 530
    assert caught.value.temporary is False


def test_notice_without_recipients_is_not_sent(smtp_server: SmtpTestServer) -> None:
    bare = Notice("cert:ab12cd:15d", "s", "t", (), {})

    with pytest.raises(DeliveryError, match="no recipients"):
        send_email(smtp(smtp_server), bare, now=NOW)


@pytest.mark.parametrize(
    ("notice_id", "subject", "recipient"),
    [
        ("cert:x:30d", "two\nlines", "a@firm.example"),
        ("cert:x:30d", "s", "Ops <ops@firm.example>"),
        ("cert:x:30d", "s", "a@firm.example, b@firm.example"),
        ("cert:x:30d", "s", "a@firm.example>\r\nRCPT TO:<b@firm.example"),
        ("cert x 30d", "s", "a@firm.example"),
        ("", "s", "a@firm.example"),
    ],
)
def test_malformed_notice_is_refused(notice_id: str, subject: str, recipient: str) -> None:
    with pytest.raises(ValueError):
        Notice(notice_id, subject, "t", (recipient,), {})


def test_smtp_config_checks() -> None:
    with pytest.raises(ValueError, match="exclusive"):
        SmtpConfig("h", 25, SENDER, starttls=True, ssl=True)
    with pytest.raises(ValueError, match="go together"):
        SmtpConfig("h", 25, SENDER, username="u")
    assert Address(addr_spec=SENDER).addr_spec == SENDER


# -- webhook -------------------------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    status: int = 202
    reply: bytes = b"accepted"
    hits: list[Hit] = field(default_factory=list)


def _serve(receiver: Receiver, context: ssl.SSLContext | None = None) -> tuple[ThreadingHTTPServer, threading.Thread]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.hits.append(Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(receiver.status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(receiver.reply)))
            self.send_header("Location", "http://elsewhere.invalid/")
            self.end_headers()
            self.wfile.write(receiver.reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    scheme = "https" if context is not None else "http"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_port}/hooks/expiry"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    server, thread = _serve(rec)
    yield rec
    server.shutdown()
    server.server_close()
    thread.join()


def test_webhook_delivers_a_signed_body(receiver: Receiver) -> None:
    sent = notice()
    cfg = WebhookConfig(receiver.url, secret=SECRET)

    assert post_webhook(cfg, sent, now=NOW) == 202

    [hit] = receiver.hits
    assert hit.path == "/hooks/expiry"
    assert json.loads(hit.body) == sent.payload
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["idempotency-key"] == "cert:ab12cd:30d"
    assert hit.headers["x-portcullis-timestamp"] == str(NOW_EPOCH)
    signature = hit.headers["x-portcullis-signature"]
    assert signature == "sha256=" + hmac.new(SECRET, hit.body, hashlib.sha256).hexdigest()
    assert verify_signature(SECRET, hit.body, signature)
    assert not verify_signature(SECRET, hit.body.replace(b"30", b"31"), signature)
    assert not verify_signature(b"another-secret", hit.body, signature)
    assert not verify_signature(SECRET, hit.body, signature.removeprefix("sha256="))
    assert not verify_signature(SECRET, hit.body, signature[:-2])
    assert SECRET.decode() not in repr(cfg)


def test_webhook_without_secret_is_unsigned(receiver: Receiver) -> None:
    post_webhook(WebhookConfig(receiver.url), notice(), now=NOW)

    [hit] = receiver.hits
    assert "x-portcullis-signature" not in hit.headers
    assert hit.headers["idempotency-key"] == "cert:ab12cd:30d"


@pytest.mark.parametrize(
    ("status", "temporary"), [(500, True), (503, True), (429, True), (404, False), (400, False), (302, False)]
)
def test_webhook_refusal_carries_status_and_body_excerpt(receiver: Receiver, status: int, temporary: bool) -> None:
    receiver.status = status
    receiver.reply = ("E" * 150 + "F" * 300).encode()

    with pytest.raises(DeliveryError) as caught:
        post_webhook(WebhookConfig(receiver.url, secret=SECRET), notice(), now=NOW)

    err = caught.value
    assert (err.channel, err.status, err.temporary) == ("webhook", status, temporary)
    assert f"answered {status}" in str(err)
    assert "E" * 150 + "F" * 50 in str(err)
    assert "F" * 51 not in str(err)
    assert len(receiver.hits) == 1, "a redirect is not followed"


def test_webhook_unreachable_keeps_url_credentials_out_of_the_error() -> None:
    with refusing_port() as port, pytest.raises(DeliveryError) as caught:
        post_webhook(
            WebhookConfig(f"http://hook:UrlPassw0rd@127.0.0.1:{port}/hooks/T0KEN-in-path?token=Q-T0KEN", timeout=5),
            notice(),
            now=NOW,
        )

    err = caught.value
    assert err.temporary is True
    assert err.target == f"http://127.0.0.1:{port}"
    for secret in ("UrlPassw0rd", "T0KEN"):
        assert secret not in _everything_said(err)


def test_webhook_payload_that_is_not_json_is_not_sent(receiver: Receiver) -> None:
    bad = Notice("cert:ab12cd:2d", "s", "t", (), {"days_left": float("nan")})

    with pytest.raises(DeliveryError, match="not JSON") as caught:
        post_webhook(WebhookConfig(receiver.url), bad, now=NOW)

    assert caught.value.temporary is False
    assert receiver.hits == []


def test_webhook_over_https_with_a_private_ca() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        context, ca_file = make_server_tls(Path(tmp))
        rec = Receiver()
        server, thread = _serve(rec, context)
        try:
            assert post_webhook(WebhookConfig(rec.url, verify=ca_file), notice(), now=NOW) == 202
            with pytest.raises(DeliveryError) as caught:
                post_webhook(WebhookConfig(rec.url), notice(), now=NOW)  # system trust store
        finally:
            server.shutdown()
            server.server_close()
            thread.join()

    assert len(rec.hits) == 1
    assert caught.value.temporary is False
    assert "certificate" in str(caught.value)


def test_webhook_config_checks() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookConfig("ftp://example.org/x")
    with pytest.raises(ValueError, match="empty key"):
        WebhookConfig("https://example.org/x", secret=b"")


# -- retry schedule ------------------------------------------------------------------------------------------


def test_backoff_doubles_from_one_minute_to_six_hours() -> None:
    assert [backoff_delay(n) for n in range(1, 6)] == [60.0, 120.0, 240.0, 480.0, 960.0]
    expected = [min(6 * 3600.0, 60.0 * 2 ** (n - 1)) for n in range(1, 16)]
    assert [backoff_delay(n) for n in range(1, 16)] == expected
    assert backoff_delay(9) == 15360.0
    assert backoff_delay(10) == 21600.0
    assert backoff_delay(10_000) == 21600.0


def test_backoff_with_own_base_and_cap() -> None:
    assert [backoff_delay(n, base=5, cap=100) for n in range(1, 8)] == [5, 10, 20, 40, 80, 100, 100]


@pytest.mark.parametrize(
    ("attempt", "base", "cap"), [(0, 60.0, 600.0), (-1, 60.0, 600.0), (1, 0.0, 600.0), (1, 60.0, 30.0)]
)
def test_backoff_refuses_nonsense(attempt: int, base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        backoff_delay(attempt, base=base, cap=cap)
