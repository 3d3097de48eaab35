"""Expiry notices (§30), each sent once per certificate, threshold and channel.

Planning and delivery are apart. Planning (in the scheduler's unit of work)
inserts a `cert_notice` row for the notice due now; the unique constraint on
(certificate, threshold, channel) is what makes it once. Delivery claims a
pending row in its own short transaction (pending -> sending), sends outside
any transaction, and records the outcome: sent, or a failed attempt retried
with back-off and visible on the row, in the ledger and, once retries run out,
as a finding. A process killed between sending and recording leaves the row
"sending"; it is retried after the claim lapses, and the Message-ID and the
webhook's Idempotency-Key (the notice's id) let the receiver drop the repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from portcullis.access.findings import open_finding
from portcullis.certs import notify, policy
from portcullis.certs.models import Certificate, CertNotice, CertStatus
from portcullis.certs.register import short_name
from portcullis.core.context import Context, Principal
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.inventory.models import Person
from portcullis.ledger.service import record_change

EMAIL = "email"
WEBHOOK = "webhook"
MAX_ATTEMPTS = 8
CLAIM = timedelta(minutes=10)


@dataclass(frozen=True)
class Channels:
    smtp: notify.SmtpConfig | None
    webhook: notify.WebhookConfig | None
    always: tuple[str, ...]


def channels(settings: Settings) -> Channels:
    smtp = None
    if settings.smtp_host:
        smtp = notify.SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value() or None,
        )
    hook = None
    if settings.cert_webhook_url:
        secret = settings.cert_webhook_secret.get_secret_value().encode() or None
        hook = notify.WebhookConfig(url=settings.cert_webhook_url, secret=secret)
    always = tuple(a.strip().lower() for a in settings.cert_notify_to.split(",") if a.strip())
    return Channels(smtp, hook, always)


def _recipients(ctx: Context, c: Certificate, threshold: str, always: tuple[str, ...]) -> list[str]:
    out = list(always)
    owner = ctx.session.get(Person, c.owner_id) if c.owner_id else None
    if owner is not None:
        out.append(owner.email)
        # Escalation: once a certificate is overdue its owner's manager hears of it too.
        if threshold == policy.OVERDUE and owner.manager_id:
            manager = ctx.session.get(Person, owner.manager_id)
            if manager is not None:
                out.append(manager.email)
    return sorted(set(out))


def _webhook_target(url: str) -> str:
    # Webhook URLs often carry their token in the userinfo, path or query; the notice row and the
    # ledger (which is append-only) keep only scheme and host:port, as notify's errors do.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def plan_notices(ctx: Context, chans: Channels) -> int:
    """Insert the notices due now that do not exist yet; returns how many."""
    now = ctx.now()
    s = ctx.session
    # Unpacked, not Result.tuples(): SQLAlchemy 2.1 deprecates that, and warnings are errors under test.
    have = {
        (cid, th, ch) for cid, th, ch in s.execute(select(CertNotice.cert_id, CertNotice.threshold, CertNotice.channel))
    }
    certs = s.scalars(select(Certificate).where(Certificate.status == CertStatus.ACTIVE.value).order_by(Certificate.id))
    made = 0
    for c in certs:
        threshold = policy.notice_due(c.not_after, now, c.is_ca)
        if threshold is None:
            continue
        targets: list[tuple[str, str]] = []
        emails = _recipients(ctx, c, threshold, chans.always)
        if chans.smtp is not None and emails:
            targets.append((EMAIL, ",".join(emails)))
        if chans.webhook is not None:
            targets.append((WEBHOOK, _webhook_target(chans.webhook.url)))
        for channel, target in targets:
            if (c.id, threshold, channel) in have:
                continue
            n = CertNotice(
                cert_id=c.id, threshold=threshold, channel=channel, target=target, created_at=now, next_attempt_at=now
            )
            s.add(n)
            s.flush()
            made += 1
            record_change(
                ctx,
                "cert.notice_due",
                "cert_notice",
                n.id,
                None,
                {"certificate": c.fingerprint, "threshold": threshold, "channel": channel, "target": target},
            )
    return made


def notice_id(c: Certificate, n: CertNotice) -> str:
    return f"cert-{c.fingerprint[:32]}-{n.threshold}-{n.channel}"


def _message(c: Certificate, n: CertNotice, now: datetime) -> notify.Notice:
    left = policy.days_left(c.not_after, now)
    name = short_name(c)
    if n.threshold == policy.OVERDUE:
        subject = f"[Portcullis] OVERDUE: certificate {name} expired on {c.not_after:%Y-%m-%d}"
    else:
        subject = f"[Portcullis] Certificate {name} expires in {left} days ({c.not_after:%Y-%m-%d})"
    text = (
        f"{subject.removeprefix('[Portcullis] ')}\n\n"
        f"Subject: {c.subject}\nNames: {', '.join(c.sans) or '(none)'}\nIssuer: {c.issuer}\n"
        f"Serial: {c.serial_hex}\nSHA-256 fingerprint: {c.fingerprint}\nRenewal: {c.renewal_method}\n"
        f"Notice: {n.threshold}\n\nRenew it before it expires (ESMA guidelines on MiCA Art. 14(1)(d), para. 30).\n"
    )
    payload: dict[str, Any] = {
        "type": "certificate.expiry",
        "notice": n.threshold,
        "certificate": {
            "fingerprint": c.fingerprint,
            "subject": c.subject,
            "sans": list(c.sans),
            "issuer": c.issuer,
            "serial": c.serial_hex,
            "not_after": c.not_after.isoformat(),
            "days_left": left,
            "renewal_method": c.renewal_method,
        },
    }
    return notify.Notice(
        notice_id=notice_id(c, n),
        subject=subject,
        text=text,
        recipients=tuple(n.target.split(",")) if n.channel == EMAIL else (),
        payload=payload,
    )


def _claim(rt: Runtime, notice_id_: int) -> bool:
    now = rt.clock.now()
    with rt.session() as s:
        done = s.execute(
            update(CertNotice)
            .where(
                CertNotice.id == notice_id_,
                # Checked again here, not only in _due: another worker may have failed and
                # rescheduled the row since it was listed, and its back-off must hold.
                CertNotice.status.in_(("pending", "sending")),
                CertNotice.next_attempt_at <= now,
            )
            .values(status="sending", next_attempt_at=now + CLAIM)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def _due(rt: Runtime) -> list[int]:
    now = rt.clock.now()
    with rt.session() as s:
        stmt = select(CertNotice.id).where(
            CertNotice.status.in_(("pending", "sending")), CertNotice.next_attempt_at <= now
        )
        return list(s.scalars(stmt.order_by(CertNotice.id)))


def _send(chans: Channels, message: notify.Notice, channel: str) -> None:
    if channel == EMAIL:
        if chans.smtp is None:
            raise notify.DeliveryError(EMAIL, "-", "no SMTP relay is configured (PORTCULLIS_SMTP_HOST)")
        notify.send_email(chans.smtp, message)
    else:
        if chans.webhook is None:
            raise notify.DeliveryError(WEBHOOK, "-", "no webhook is configured (PORTCULLIS_CERT_WEBHOOK_URL)")
        notify.post_webhook(chans.webhook, message)


def deliver_notices(rt: Runtime, chans: Channels) -> dict[str, int]:
    """Send every due notice once; failures are kept for retry with back-off."""
    sent = failed = 0
    for nid in _due(rt):
        if not _claim(rt, nid):
            continue  # another worker has it
        with rt.work(Principal.system("certs.notices")) as ctx0:
            s = ctx0.session
            n = s.get(CertNotice, nid)
            assert n is not None
            c = s.get(Certificate, n.cert_id)
            assert c is not None
            channel, mid, name = n.channel, notice_id(c, n), short_name(c)
            if c.status != CertStatus.ACTIVE.value:
                # Renewed, retired or revoked since the notice was planned: nobody needs telling any more.
                n.status, n.next_attempt_at, n.last_error = "cancelled", None, f"certificate is {c.status}"
                record_change(ctx0, "cert.notice_cancelled", "cert_notice", n.id, None, {"notice_id": mid})
                continue
            error: str | None = None
            try:
                message = _message(c, n, rt.clock.now())
            except ValueError as exc:
                # A recipient that is not a bare address (PORTCULLIS_CERT_NOTIFY_TO, a person's email) is a
                # failed attempt like any other: visible on the row, retried, and a finding in the end;
                # not an exception that leaves the row "sending" and ends the scheduler's tick.
                error = f"{channel} notice {mid} not sent: {exc}"
        if error is None:
            try:
                _send(chans, message, channel)
            except notify.DeliveryError as exc:
                error = str(exc)
        with rt.work(Principal.system("certs.notices")) as ctx:
            n = ctx.session.get(CertNotice, nid)
            assert n is not None
            n.attempts += 1
            if error is None:
                n.status, n.sent_at, n.last_error, n.next_attempt_at = "sent", ctx.now(), None, None
                sent += 1
                record_change(
                    ctx,
                    "cert.notice_sent",
                    "cert_notice",
                    n.id,
                    None,
                    {"notice_id": mid, "channel": channel, "target": n.target, "attempts": n.attempts},
                )
                continue
            failed += 1
            n.last_error = error
            if n.attempts >= MAX_ATTEMPTS:
                n.status, n.next_attempt_at = "failed", None
                open_finding(
                    ctx,
                    key=f"cert_notice_failed:notice:{n.id}",
                    kind="cert_notice_failed",
                    severity="high",
                    detail=f"The {n.threshold} {channel} notice for certificate {name} could not be "
                    f"delivered after {n.attempts} attempts: {error}",
                )
            else:
                n.status = "pending"
                n.next_attempt_at = ctx.now() + timedelta(seconds=notify.backoff_delay(n.attempts))
            record_change(
                ctx,
                "cert.notice_failed",
                "cert_notice",
                n.id,
                None,
                {
                    "notice_id": mid,
                    "channel": channel,
                    "attempts": n.attempts,
                    "error": error,
                    "next_attempt_at": n.next_attempt_at,
                },
            )
    return {"sent": sent, "failed": failed}
