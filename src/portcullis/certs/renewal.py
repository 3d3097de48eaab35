"""Renewal (§30 "prompt renewal in advance of expiration"): ACME and the internal CA, then deployment.

The scheduler plans a renewal when a certificate reaches its renewal date (a
third of its lifetime left by default; the ACME server's ARI window when it
offers one) and then attempts it. Each attempt makes a new private key, obtains
the certificate (over the network, outside any database transaction), stores
it in the register in place of the old one (same owner, assets, renewal
settings; the old one "replaced"), writes it to its file targets and records
the new deployment. A failed attempt is kept with its error, retried with
back-off, recorded in the ledger and raised as a finding until a retry works:
never silent.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from portcullis.access.findings import open_finding, resolve_key
from portcullis.certs import acme_client, ca, checks, notify, sealing
from portcullis.certs.models import (
    AcmeAccount,
    CertAsset,
    Certificate,
    CertRenewal,
    CertStatus,
    DeploymentKind,
    RenewalMethod,
)
from portcullis.certs.register import Place, cert_view, get_certificate, record_found, short_name, store_chain
from portcullis.core.context import Context, Principal
from portcullis.core.errors import Conflict, PortcullisError
from portcullis.core.permissions import Permission
from portcullis.core.runtime import Runtime
from portcullis.ledger.service import record_change

FAILED = "cert_renewal_failed"
DEPLOY_FAILED = "cert_deploy_failed"
AUTOMATIC = (RenewalMethod.ACME.value, RenewalMethod.INTERNAL_CA.value)


@dataclass(frozen=True)
class Obtained:
    chain: list[x509.Certificate]
    key_pem: bytes


def _open_renewal(ctx: Context, c: Certificate, reason: str) -> CertRenewal:
    existing = ctx.session.scalar(
        select(CertRenewal).where(CertRenewal.cert_id == c.id, CertRenewal.status == "pending")
    )
    if existing is not None:
        return existing
    now = ctx.now()
    r = CertRenewal(cert_id=c.id, method=c.renewal_method, reason=reason, created_at=now, next_attempt_at=now)
    ctx.session.add(r)
    ctx.session.flush()
    record_change(
        ctx,
        "cert.renewal_due",
        "cert_renewal",
        r.id,
        None,
        {"certificate": c.fingerprint, "method": c.renewal_method, "reason": reason},
    )
    return r


def refresh_ari(rt: Runtime) -> dict[str, int]:
    """Ask each ACME certificate's server for its renewal window (RFC 9773) and keep it for plan_renewals.

    Over the network, so outside any transaction; a server without ARI (Pebble 2.4, many CAs) leaves the
    certificate on its own renewal date, and a server that does not answer is tried again on the next tick.
    """
    with rt.session() as s:
        stmt = select(Certificate.id, Certificate.der, Certificate.renewal, Certificate.not_after).where(
            Certificate.status == CertStatus.ACTIVE.value, Certificate.renewal_method == RenewalMethod.ACME.value
        )
        todo = [(cid, der, dict(cfg), end) for cid, der, cfg, end in s.execute(stmt)]
    now = rt.clock.now()
    asked = windows = 0
    for cid, der, cfg, not_after in todo:
        if not cfg.get("directory") or not_after <= now:
            continue  # RFC 9773: an expired certificate is renewed at once, not asked about
        asked += 1
        try:
            window = acme_client.renewal_window(str(cfg["directory"]), der, ca_bundle=cfg.get("ca_bundle"))
        except (acme_client.AcmeError, ValueError, OSError):
            continue
        if window is None:
            continue
        windows += 1
        value = [window[0].isoformat(), window[1].isoformat()]
        if cfg.get("ari_window") == value:
            continue
        with rt.work(Principal.system("certs.renewal")) as ctx:
            c = ctx.session.get(Certificate, cid)
            if c is None:
                continue
            c.renewal = {**c.renewal, "ari_window": value}
            record_change(
                ctx,
                "cert.ari_window",
                "certificate",
                c.id,
                {"ari_window": cfg.get("ari_window")},
                {"ari_window": value},
            )
    return {"asked": asked, "windows": windows}


def plan_renewals(ctx: Context) -> int:
    """Open a renewal for every automatically renewed certificate that has reached its renewal date."""
    now = ctx.now()
    facts = checks.renewal_facts(ctx)
    stmt = select(Certificate).where(
        Certificate.status == CertStatus.ACTIVE.value, Certificate.renewal_method.in_(AUTOMATIC)
    )
    made = 0
    for c in ctx.session.scalars(stmt.order_by(Certificate.id)):
        ari = c.renewal.get("ari_window")
        due = checks.renewal_due_at(c, facts)
        reason = f"renewal date {due:%Y-%m-%d} reached"
        if ari:
            # The ACME server's suggested window (RFC 9773) takes precedence over our own arithmetic.
            due = _parse_time(ari[0])
            reason = f"the ACME server's renewal window opened on {due:%Y-%m-%d}"
        if now >= due:
            before = ctx.session.scalar(
                select(CertRenewal.id).where(CertRenewal.cert_id == c.id, CertRenewal.status == "pending")
            )
            _open_renewal(ctx, c, reason)
            made += before is None
    return made


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def request_renewal(ctx: Context, ref: str | int, reason: str = "asked for") -> CertRenewal:
    ctx.require(Permission.CERTS_ADMIN)
    c = get_certificate(ctx, ref)
    if c.status != CertStatus.ACTIVE.value:
        raise Conflict(f"Certificate {short_name(c)} is {c.status}; only an active certificate is renewed")
    if c.renewal_method not in AUTOMATIC:
        raise Conflict(
            f"Certificate {short_name(c)} is renewed by hand (renewal method {c.renewal_method}); register it with "
            "the acme or internal_ca method to renew it here"
        )
    return _open_renewal(ctx, c, reason)


# --- obtaining ------------------------------------------------------------------------------


def _account(rt: Runtime, directory: str, contact: list[str]) -> acme_client.AcmeAccount:
    from portcullis.keys.service import keyring

    master = keyring(rt).master
    with rt.session() as s:
        row = s.scalar(select(AcmeAccount).where(AcmeAccount.directory == directory))
        if row is not None:
            pem = sealing.unseal(master, f"acme account {directory}", row.key_sealed)
            return acme_client.AcmeAccount.from_pem(pem, row.account_url)
    account = acme_client.AcmeAccount.generate()
    with rt.work(Principal.system("certs.renewal")) as ctx:
        row = AcmeAccount(
            directory=directory,
            key_sealed=sealing.seal(master, f"acme account {directory}", account.key_pem()),
            contact=contact,
            created_at=ctx.now(),
        )
        ctx.session.add(row)
        ctx.session.flush()
        record_change(ctx, "cert.acme_account_created", "acme_account", row.id, None, {"directory": directory})
    return account


def _save_account_url(rt: Runtime, directory: str, account: acme_client.AcmeAccount) -> None:
    with rt.session() as s:
        row = s.scalar(select(AcmeAccount).where(AcmeAccount.directory == directory))
        if row is not None and account.kid and row.account_url != account.kid:
            row.account_url = account.kid


def _obtain_acme(rt: Runtime, c: Certificate, responder: acme_client.Http01Responder | None) -> Obtained:
    cfg = c.renewal
    directory = str(cfg["directory"])
    domains = list(cfg.get("domains") or c.sans)
    if not domains:
        raise Conflict(f"Certificate {short_name(c)} names no domain to renew for")
    account = _account(rt, directory, list(cfg.get("contact", [])))
    own = responder is None
    if responder is None:
        responder = acme_client.Http01Responder(rt.settings.acme_http_host, rt.settings.acme_http_port)
        responder.start()
    try:
        replaces = None
        if cfg.get("ari_window"):
            try:
                replaces = acme_client.ari_cert_id(c.der)
            except ValueError:
                replaces = None
        issued = acme_client.issue(
            directory,
            account=account,
            domains=domains,
            key_type=str(cfg.get("key_type", "ec-p256")),
            responder=responder,
            ca_bundle=cfg.get("ca_bundle"),
            contact=list(cfg.get("contact", [])),
            replaces=replaces,
        )
    finally:
        if own:
            responder.stop()
        _save_account_url(rt, directory, account)
    return Obtained(x509.load_pem_x509_certificates(issued.chain_pem), issued.key_pem)


def _obtain_internal(ctx: Context, rt: Runtime, c: Certificate) -> tuple[Certificate, bytes]:
    from portcullis.keys.service import key_service

    key = ec.generate_private_key(ec.SECP256R1())
    days = max(1, (c.not_after - c.not_before).days)
    ca_key = str(c.renewal["ca"])
    as_admin = Context(ctx.session, Principal.system("certs.renewal"), ctx.clock, ctx.autosign)
    row = ca.issue(
        as_admin,
        key_service(rt),
        ca_key,
        public_key=key.public_key(),
        sans=list(c.sans),
        days=days,
        public_url=rt.settings.effective_public_url,
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return row, pem


# --- storing and deploying ------------------------------------------------------------------


def _succeed(ctx: Context, rt: Runtime, r: CertRenewal, old: Certificate, new: Certificate, key_pem: bytes) -> None:
    before_new = cert_view(new)
    new.status = CertStatus.ACTIVE.value
    new.owner_id = old.owner_id
    new.renewal_method = old.renewal_method
    new.renewal = {k: v for k, v in old.renewal.items() if k != "ari_window"}
    new.renew_at_fraction = old.renew_at_fraction
    new.notes = old.notes
    keep_key(rt, new, key_pem)
    links = list(ctx.session.scalars(select(CertAsset.asset_id).where(CertAsset.cert_id == old.id)))
    ctx.session.add_all(CertAsset(cert_id=new.id, asset_id=a) for a in links)
    before_old = cert_view(old)
    old.status = CertStatus.REPLACED.value
    old.replaced_by_id = new.id
    now = ctx.now()
    old.updated_at = new.updated_at = now
    r.status, r.new_cert_id, r.finished_at, r.last_error, r.next_attempt_at = "succeeded", new.id, now, None, None
    r.attempts += 1
    ctx.session.flush()
    record_change(ctx, "cert.replaced", "certificate", old.id, before_old, cert_view(old))
    record_change(
        ctx,
        "cert.renewed",
        "certificate",
        new.id,
        before_new,
        cert_view(new),
        replaces=old.fingerprint,
        method=r.method,
        attempts=r.attempts,
        assets=links,
    )
    resolve_key(ctx, f"{FAILED}:cert:{old.id}", f"renewed as {new.fingerprint[:16]}")


def _write(path: Path, data: bytes, mode: int) -> None:
    # Written beside the target and renamed over it: a reader never sees half a certificate or key.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def deploy(ctx: Context, rt: Runtime, c: Certificate) -> list[str]:
    """Write the certificate (with its chain) and its sealed key to the file targets; record each deployment."""
    from portcullis.keys.service import keyring

    targets = list(c.renewal.get("deploy", []))
    if not targets:
        return []
    if c.key_sealed is None:
        raise Conflict(f"Certificate {short_name(c)} has no key kept by Portcullis to deploy")
    key_pem = sealing.unseal(keyring(rt).master, f"certificate key {c.fingerprint}", c.key_sealed)
    chain_rows = [c]
    parent = ctx.session.get(Certificate, c.issuer_cert_id) if c.issuer_cert_id else None
    while parent is not None and not parent.self_signed and parent not in chain_rows:
        chain_rows.append(parent)
        parent = ctx.session.get(Certificate, parent.issuer_cert_id) if parent.issuer_cert_id else None
    chain = [x509.load_der_x509_certificate(row.der) for row in chain_rows]
    pem = b"".join(x.public_bytes(serialization.Encoding.PEM) for x in chain)
    written = []
    for t in targets:
        cert_path = Path(t["cert"])
        _write(cert_path, pem, 0o644)
        if t.get("key"):
            _write(Path(t["key"]), key_pem, 0o600)
        record_found(ctx, chain, Place(DeploymentKind.FILE, str(cert_path)))
        record_change(
            ctx,
            "cert.deployed",
            "certificate",
            c.id,
            None,
            {"fingerprint": c.fingerprint, "cert": str(cert_path), "key": t.get("key")},
        )
        written.append(str(cert_path))
    resolve_key(ctx, f"{DEPLOY_FAILED}:cert:{c.id}", "deployed")
    return written


def keep_key(rt: Runtime, c: Certificate, key_pem: bytes) -> None:
    """Keep a certificate's private key sealed, so that it can be deployed again."""
    from portcullis.keys.service import keyring

    c.key_sealed = sealing.seal(keyring(rt).master, f"certificate key {c.fingerprint}", key_pem)


# --- attempts -------------------------------------------------------------------------------


def _fail(rt: Runtime, rid: int, error: str) -> dict[str, Any]:
    with rt.work(Principal.system("certs.renewal")) as ctx:
        r = ctx.session.get(CertRenewal, rid)
        assert r is not None
        c = ctx.session.get(Certificate, r.cert_id)
        assert c is not None
        r.attempts += 1
        r.last_error = error
        r.next_attempt_at = ctx.now() + timedelta(seconds=notify.backoff_delay(r.attempts))
        ctx.session.flush()
        record_change(
            ctx,
            "cert.renewal_failed",
            "cert_renewal",
            r.id,
            None,
            {
                "certificate": c.fingerprint,
                "attempts": r.attempts,
                "error": error,
                "next_attempt_at": r.next_attempt_at,
            },
        )
        open_finding(
            ctx,
            key=f"{FAILED}:cert:{c.id}",
            kind=FAILED,
            severity="high",
            detail=f"Renewal of certificate {short_name(c)} ({r.method}) failed: {error}; retried with back-off",
            owner_id=c.owner_id,
            due_days=max(1, (c.not_after - ctx.now()).days),
        )
        return {"certificate": c.fingerprint, "ok": False, "attempts": r.attempts, "error": error}


def _drop(rt: Runtime, rid: int, why: str) -> dict[str, Any]:
    with rt.work(Principal.system("certs.renewal")) as ctx:
        r = ctx.session.get(CertRenewal, rid)
        assert r is not None
        r.status, r.last_error, r.next_attempt_at, r.finished_at = "failed", f"dropped: {why}", None, ctx.now()
        ctx.session.flush()
        record_change(ctx, "cert.renewal_dropped", "cert_renewal", r.id, None, {"reason": why})
        resolve_key(ctx, f"{FAILED}:cert:{r.cert_id}", f"renewal dropped: {why}")
    return {"renewal": rid, "ok": False, "error": f"dropped: {why}"}


def attempt(rt: Runtime, rid: int, responder: acme_client.Http01Responder | None = None) -> dict[str, Any]:
    """One attempt of one renewal; the outcome is recorded either way."""
    with rt.session() as s:
        r = s.get(CertRenewal, rid)
        if r is None or r.status != "pending":
            return {"renewal": rid, "ok": False, "error": "not pending"}
        c = s.get(Certificate, r.cert_id)
        assert c is not None
        s.expunge(c)
        method = r.method
    if c.status != CertStatus.ACTIVE.value:
        # Retired or revoked while its renewal waited (a retry in back-off): renewing it would bring it back.
        return _drop(rt, rid, f"certificate {short_name(c)} is {c.status}")
    try:
        if method == RenewalMethod.ACME.value:
            got = _obtain_acme(rt, c, responder)
            with rt.work(Principal.system("certs.renewal")) as ctx:
                rows, _ = store_chain(ctx, got.chain, f"acme:{c.renewal.get('directory')}")
                _finish(ctx, rt, rid, rows[0], got.key_pem)
                new_fp = rows[0].fingerprint
        else:
            with rt.work(Principal.system("certs.renewal")) as ctx:
                row, key_pem = _obtain_internal(ctx, rt, c)
                _finish(ctx, rt, rid, row, key_pem)
                new_fp = row.fingerprint
    except (acme_client.AcmeError, PortcullisError, OSError, ValueError, KeyError) as exc:
        return _fail(rt, rid, f"{type(exc).__name__}: {exc}")
    deployed = _deploy_after(rt, new_fp)
    return {"certificate": c.fingerprint, "ok": True, "new": new_fp, "deployed": deployed}


def _finish(ctx: Context, rt: Runtime, rid: int, new: Certificate, key_pem: bytes) -> None:
    r = ctx.session.get(CertRenewal, rid)
    assert r is not None
    old = ctx.session.get(Certificate, r.cert_id)
    assert old is not None
    _succeed(ctx, rt, r, old, new, key_pem)


def _deploy_after(rt: Runtime, fingerprint: str) -> list[str] | str:
    try:
        with rt.work(Principal.system("certs.renewal")) as ctx:
            c = ctx.session.scalar(select(Certificate).where(Certificate.fingerprint == fingerprint))
            assert c is not None
            return deploy(ctx, rt, c)
    except (PortcullisError, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        with rt.work(Principal.system("certs.renewal")) as ctx:
            c = ctx.session.scalar(select(Certificate).where(Certificate.fingerprint == fingerprint))
            assert c is not None
            record_change(ctx, "cert.deploy_failed", "certificate", c.id, None, {"error": error})
            open_finding(
                ctx,
                key=f"{DEPLOY_FAILED}:cert:{c.id}",
                kind=DEPLOY_FAILED,
                severity="high",
                detail=f"Renewed certificate {short_name(c)} could not be deployed: {error}; "
                "retry with portcullis certs deploy",
                owner_id=c.owner_id,
            )
        return f"failed: {error}"


def run_renewals(
    rt: Runtime, *, responder: acme_client.Http01Responder | None = None, only: int | None = None
) -> list[dict[str, Any]]:
    """Attempt every pending renewal whose next attempt is due (or just `only`)."""
    now = rt.clock.now()
    with rt.session() as s:
        stmt = select(CertRenewal.id).where(CertRenewal.status == "pending")
        stmt = (
            stmt.where(CertRenewal.id == only) if only is not None else stmt.where(CertRenewal.next_attempt_at <= now)
        )
        due = list(s.scalars(stmt.order_by(CertRenewal.id)))
    return [attempt(rt, rid, responder) for rid in due]
