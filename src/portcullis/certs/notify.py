"""Delivery of certificate expiry notices by email (SMTP) and by webhook (§30: prompt renewal).

Pure senders: which notice is due, and that each is sent once, is the caller's
bookkeeping in the database. What this module guarantees is that a repeat of the
same notice is recognisable by its receiver: the notice id becomes the email's
Message-ID and the webhook's Idempotency-Key, so a retry after an ambiguous
failure (the server took the message, then the connection dropped) can be dropped
as a duplicate on the other side.

Every failure is a `DeliveryError` that names the channel, where it was going and
why, and says whether trying again later may help (`temporary`): SMTP 4xx
replies, HTTP 408/425/429/5xx, timeouts and lost connections are temporary;
5xx SMTP replies, other HTTP statuses, refused TLS certificates and
configuration errors are not. Passwords, webhook secrets and any credentials in
a webhook URL never appear in an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import smtplib
import ssl
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

MESSAGE_ID_DOMAIN = "portcullis"
SIGNATURE_HEADER = "X-Portcullis-Signature"
TIMESTAMP_HEADER = "X-Portcullis-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
ERROR_BODY_CHARS = 200

# A bare addr-spec: no display name, no list, nothing that could smuggle a second
# address or an SMTP command. Non-ASCII is allowed (SMTPUTF8 servers take it).
_ADDRESS = re.compile(r"[^\s\x00-\x1f\x7f@<>,;:\"()\[\]\\]+@[^\s\x00-\x1f\x7f@<>,;:\"()\[\]\\]+")
# Visible ASCII only: the id travels in a mail header and an HTTP header.
_NOTICE_ID = re.compile(r"[\x21-\x7e]{1,200}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
# RFC 5322 atext; '%' is left out because it is the escape character below.
_MSG_ID_SAFE = frozenset(string.ascii_letters + string.digits + "!#$&'*+-/=?^_`{|}~")
# Replies that mean "not now" rather than "never" (RFC 9110, RFC 8470, RFC 6585).
_HTTP_TEMPORARY = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A notice was not (or not wholly) delivered over one channel."""

    def __init__(
        self, channel: str, target: str, reason: str, *, temporary: bool = False, status: int | None = None
    ) -> None:
        super().__init__(f"{channel} delivery to {target} failed: {reason}")
        self.channel = channel
        self.target = target
        self.reason = reason
        self.temporary = temporary
        self.status = status  # the SMTP reply code or HTTP status, when the other side answered


@dataclass(frozen=True)
class Notice:
    """One expiry notice, ready to send on any channel."""

    notice_id: str
    subject: str
    text: str
    recipients: tuple[str, ...]
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        if not _NOTICE_ID.fullmatch(self.notice_id):
            raise ValueError(f"notice_id {self.notice_id!r}: must be 1-200 visible ASCII characters")
        if "\r" in self.subject or "\n" in self.subject:
            raise ValueError(f"notice {self.notice_id}: subject must be a single line")
        for address in self.recipients:
            if not _ADDRESS.fullmatch(address):
                raise ValueError(f"notice {self.notice_id}: recipient {address!r} is not a bare email address")


@dataclass(frozen=True)
class SmtpConfig:
    """An SMTP relay. `ssl` is implicit TLS (port 465); `starttls` upgrades a plain connection (587)."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    cafile: str | None = None  # trust anchors for a relay with a private CA; None = system store

    def __post_init__(self) -> None:
        if self.starttls and self.ssl:
            raise ValueError("SmtpConfig: starttls and ssl are exclusive (ssl is TLS from the first byte)")
        if not _ADDRESS.fullmatch(self.sender):
            raise ValueError(f"SmtpConfig.sender {self.sender!r} is not a bare email address")
        if (self.username is None) != (self.password is None):
            raise ValueError("SmtpConfig: username and password go together")
        if self.timeout <= 0:
            raise ValueError("SmtpConfig.timeout must be positive")


@dataclass(frozen=True)
class WebhookConfig:
    """A receiver URL; `secret` signs each body, `verify` is True, False or a CA file/directory."""

    url: str
    secret: bytes | None = field(default=None, repr=False)
    timeout: float = 10.0
    verify: bool | str = True

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"WebhookConfig.url: need an http(s) URL with a host, got scheme {parts.scheme!r}")
        if self.secret is not None and not self.secret:
            raise ValueError("WebhookConfig.secret: an empty key signs nothing; use None for no signature")
        if self.timeout <= 0:
            raise ValueError("WebhookConfig.timeout must be positive")


def message_id(notice_id: str) -> str:
    """The Message-ID for a notice: `<id@portcullis>`, the id percent-escaped into RFC 5322 dot-atom-text.

    Characters outside atext, '%' itself, and dots that would lead, trail or double
    become %XX of their UTF-8 bytes, so distinct notice ids keep distinct Message-IDs.
    """
    out: list[str] = []
    last = len(notice_id) - 1
    for i, ch in enumerate(notice_id):
        keep_dot = ch == "." and 0 < i < last and notice_id[i - 1] != "."
        if ch in _MSG_ID_SAFE or keep_dot:
            out.append(ch)
        else:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
    return f"<{''.join(out)}@{MESSAGE_ID_DOMAIN}>"


def send_email(cfg: SmtpConfig, notice: Notice, *, now: datetime | None = None) -> str:
    """Send the notice to all its recipients in one SMTP transaction; return the Message-ID."""
    target = f"{cfg.host}:{cfg.port}"
    if not notice.recipients:
        raise DeliveryError("email", target, f"notice {notice.notice_id} has no recipients")
    msg = _email(cfg, notice, now or datetime.now(UTC))
    context = _smtp_tls_context(cfg, target) if cfg.ssl or cfg.starttls else None

    def fail(reason: str, *, temporary: bool, status: int | None = None) -> DeliveryError:
        return DeliveryError("email", target, _scrub(reason, cfg), temporary=temporary, status=status)

    try:
        client = (
            smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout, context=context)
            if cfg.ssl
            else smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        )
        try:
            if cfg.starttls:
                client.starttls(context=context)
            if cfg.username is not None and cfg.password is not None:
                client.login(cfg.username, cfg.password)
            refused = client.send_message(msg, from_addr=cfg.sender, to_addrs=list(notice.recipients))
        finally:
            _hang_up(client)
    except smtplib.SMTPRecipientsRefused as exc:
        raise fail(_refusals(exc.recipients), temporary=_all_temporary(exc.recipients)) from None
    except smtplib.SMTPResponseException as exc:
        # Covers a refused greeting, sender, DATA or AUTH: the server's own words.
        code = exc.smtp_code
        raise fail(
            f"server answered {code} {_text(exc.smtp_error)}", temporary=400 <= code < 500, status=code
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise fail(f"server does not offer what the configuration needs: {exc}", temporary=False) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise fail(f"connection lost: {exc}", temporary=True) from None
    except smtplib.SMTPException as exc:
        raise fail(str(exc), temporary=False) from None
    except ssl.SSLCertVerificationError as exc:
        raise fail(f"TLS certificate not accepted: {exc.verify_message}", temporary=False) from None
    except TimeoutError:
        raise fail(f"no answer within {cfg.timeout:g}s", temporary=True) from None
    except OSError as exc:
        raise fail(f"cannot connect: {exc.strerror or exc}", temporary=True) from None
    if refused:
        # Some recipients have the message already: a retry would repeat it to them,
        # which the Message-ID lets their mail system recognise.
        delivered = ", ".join(r for r in notice.recipients if r not in refused)
        raise fail(f"{_refusals(refused)}; delivered to {delivered}", temporary=_all_temporary(refused))
    return str(msg["Message-ID"])


def post_webhook(cfg: WebhookConfig, notice: Notice, *, now: datetime | None = None) -> int:
    """POST the notice's payload as JSON; return the 2xx status the receiver answered."""
    target = _origin(cfg.url)
    try:
        body = json.dumps(
            notice.payload, ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise DeliveryError("webhook", target, f"payload of notice {notice.notice_id} is not JSON: {exc}") from None
    headers = {
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: notice.notice_id,
        TIMESTAMP_HEADER: str(int((now or datetime.now(UTC)).timestamp())),
    }
    if cfg.secret is not None:
        headers[SIGNATURE_HEADER] = _signature(cfg.secret, body)
    verify = _webhook_verify(cfg, target)
    try:
        # Redirects are not followed: the signed body would go somewhere nobody configured.
        with (
            httpx.Client(verify=verify, timeout=cfg.timeout, follow_redirects=False) as client,
            client.stream("POST", cfg.url, content=body, headers=headers) as response,
        ):
            status = response.status_code
            if response.is_success:
                return status
            excerpt = _excerpt(response)
    except httpx.TimeoutException:
        raise DeliveryError("webhook", target, f"no answer within {cfg.timeout:g}s", temporary=True) from None
    except httpx.TransportError as exc:
        refusal = _certificate_refusal(exc)
        if refusal is not None:
            reason = f"TLS certificate not accepted: {refusal.verify_message}"
            raise DeliveryError("webhook", target, reason) from None
        raise DeliveryError("webhook", target, f"cannot connect: {exc}", temporary=True) from None
    raise DeliveryError(
        "webhook",
        target,
        f"receiver answered {status}: {excerpt!r}",
        temporary=status in _HTTP_TEMPORARY or status >= 500,
        status=status,
    )


def verify_signature(secret: bytes, body: bytes, header: str) -> bool:
    """True when `header` is "sha256=<hex>" of HMAC-SHA256(secret, body); compared in constant time."""
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    return hmac.compare_digest(hmac.digest(secret, body, hashlib.sha256), bytes.fromhex(match[1]))


def backoff_delay(attempt: int, *, base: float = 60.0, cap: float = 6 * 3600.0) -> float:
    """Seconds to wait after the `attempt`-th failed delivery (1 = the first): min(cap, base * 2**(attempt - 1)).

    No jitter, so the caller can store next_attempt_at and tests can predict it;
    notices are few, so synchronised retries are no load worth spreading.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    if not (0 < base <= cap):
        raise ValueError(f"need 0 < base <= cap, got base={base}, cap={cap}")
    # The exponent is bounded so a long-failing notice cannot overflow a float.
    return min(cap, base * 2.0 ** min(attempt - 1, 1023))


def _email(cfg: SmtpConfig, notice: Notice, now: datetime) -> EmailMessage:
    # cte_type 7bit: non-ASCII text is sent quoted-printable, so a relay without
    # 8BITMIME still passes it unchanged.
    msg = EmailMessage(policy=SMTP_POLICY.clone(cte_type="7bit"))
    msg["Message-ID"] = message_id(notice.notice_id)
    msg["Date"] = format_datetime(now.astimezone(UTC))
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(notice.recipients)
    msg["Subject"] = notice.subject
    # RFC 3834: tells vacation responders and ticket systems not to answer a robot.
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(notice.text)
    return msg


def _hang_up(client: smtplib.SMTP) -> None:
    # Once DATA was accepted the message is the server's; a failed QUIT must not
    # turn a delivery into an error (and a retry into a duplicate).
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


def _smtp_tls_context(cfg: SmtpConfig, target: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cfg.cafile)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError("email", target, f"cannot load SmtpConfig.cafile {cfg.cafile}: {exc}") from None


def _webhook_verify(cfg: WebhookConfig, target: str) -> ssl.SSLContext | bool:
    if isinstance(cfg.verify, bool):
        return cfg.verify
    # httpx 0.28 deprecates a path for `verify`; it wants a context.
    try:
        if Path(cfg.verify).is_dir():
            return ssl.create_default_context(capath=cfg.verify)
        return ssl.create_default_context(cafile=cfg.verify)
    except (OSError, ssl.SSLError) as exc:
        raise DeliveryError("webhook", target, f"cannot load WebhookConfig.verify {cfg.verify}: {exc}") from None


def _certificate_refusal(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    # httpx wraps the ssl error (through httpcore) in a ConnectError; a certificate
    # that does not verify will not verify on retry either, so it is told apart.
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: exception chains can, rarely, loop
        if seen is None or isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _origin(url: str) -> str:
    # Only scheme and host:port go into errors: webhook URLs often carry their
    # token in the userinfo, the path or the query.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _excerpt(response: httpx.Response) -> str:
    # Read a little, not the whole body: a misbehaving receiver may answer with megabytes.
    raw = b""
    for chunk in response.iter_bytes():
        raw += chunk
        if len(raw) >= 4 * ERROR_BODY_CHARS:
            break
    return raw.decode("utf-8", errors="replace")[:ERROR_BODY_CHARS]


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else reply


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    listed = "; ".join(f"{rcpt} ({code} {_text(reply)})" for rcpt, (code, reply) in refused.items())
    return f"recipients refused: {listed}"


def _all_temporary(refused: dict[str, tuple[int, bytes]]) -> bool:
    return all(400 <= code < 500 for code, _ in refused.values())


def _scrub(reason: str, cfg: SmtpConfig) -> str:
    # smtplib never puts the password in an exception, but a server may echo the
    # AUTH line back in its reply; remove it and its base64 forms (LOGIN, PLAIN).
    if not cfg.password:
        return reason
    user = cfg.username or ""
    for secret in (
        cfg.password,
        base64.b64encode(cfg.password.encode()).decode(),
        base64.b64encode(f"\0{user}\0{cfg.password}".encode()).decode(),
    ):
        reason = reason.replace(secret, "***")
    return reason
