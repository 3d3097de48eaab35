"""Portcullis's internal CA (§29-30): a CA whose key is a key in key management.

The CA's signing key is registered and generated in key management (a critical
key, with its ceremony); its sign policy names `system:certs.ca`, the principal
this module signs as, so the key service's state gating (a suspended or
compromised key signs nothing), usage counting and audit apply to every
certificate and CRL it signs. The CA certificate, everything it issues and its
revocations are in the certificate register; each CRL is kept and served at
/pki/<ca>.crl.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID
from pydantic import BaseModel, Field
from sqlalchemy import select

from portcullis.access.findings import open_finding, resolve_key
from portcullis.certs import internal_ca
from portcullis.certs.models import Certificate, CertStatus, InternalCa, RenewalMethod
from portcullis.certs.register import cert_view, get_certificate, short_name, store_chain
from portcullis.core.context import Context, Principal
from portcullis.core.errors import Conflict, FieldError, NotFound, PortcullisError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.keys.keyring import Sealed
from portcullis.keys.models import CryptoKey, KeyState, KeyVersion
from portcullis.keys.use import KeyService
from portcullis.ledger.service import record_change

SIGNER = "system:certs.ca"
CRL_FAILED = "cert_crl_failed"
CRL_DAYS = 7
# By the names the API and CLI document (key_compromise, superseded ...), not RFC 5280's camelCase values.
REASONS = {r.name: r for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl}


class CaIn(BaseModel):
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    crypto_key: str = Field(description="The signing key in key management (its sign policy names system:certs.ca)")
    common_name: str = Field(min_length=1)
    organisation: str = ""
    days: int = Field(default=3650, ge=1, le=36500)
    allowed_suffixes: list[str] = Field(default_factory=list, description="DNS suffixes it may certify; empty: any")


@dataclass
class KeySigner:
    """internal_ca.ExternalSigner over the key service: signs as system:certs.ca, refuses a rotated key."""

    ctx: Context
    keys: KeyService
    name: str
    algorithm: str
    version: int
    public_der: bytes

    def public_key(self) -> PublicKeyTypes:
        return serialization.load_der_public_key(self.public_der)

    def sign(self, data: bytes) -> bytes:
        as_ca = Context(self.ctx.session, Principal.system("certs.ca"), self.ctx.clock, self.ctx.autosign)
        version, signature = self.keys.sign(as_ca, self.name, data)
        if version != self.version:
            raise Conflict(
                f"Key {self.name!r} now signs with version {version}, not the version {self.version} the CA "
                "certificate names; a rotated CA key needs a new CA certificate"
            )
        return signature


def signer_for(ctx: Context, keys: KeyService, crypto_key: str, version: int | None = None) -> KeySigner:
    k = ctx.session.scalar(select(CryptoKey).where(CryptoKey.key == crypto_key))
    if k is None:
        raise ValidationFailed("No such key", [FieldError("crypto_key", f"no key {crypto_key!r} in the key register")])
    if k.state != KeyState.ACTIVE.value:
        raise Conflict(f"Key {crypto_key!r} is {k.state}: only an active key signs certificates")
    if SIGNER not in k.policy.get("sign", []):
        raise ValidationFailed(
            "The key may not sign for the CA",
            [FieldError("crypto_key", f"key {crypto_key!r}'s sign policy must name {SIGNER}")],
        )
    stmt = select(KeyVersion).where(KeyVersion.key_id == k.id).order_by(KeyVersion.version.desc())
    if version is not None:
        stmt = stmt.where(KeyVersion.version == version)
    v = ctx.session.scalars(stmt.limit(1)).first()
    if v is None or v.public_key is None:
        raise Conflict(f"Key {crypto_key!r} has no version {version or ''} with a public key")
    return KeySigner(ctx, keys, crypto_key, k.algorithm, v.version, v.public_key)


def _ca(ctx: Context, key: str) -> InternalCa:
    ca = ctx.session.scalar(select(InternalCa).where(InternalCa.key == key))
    if ca is None:
        raise NotFound(f"No internal CA {key!r}")
    return ca


def _ca_cert(ctx: Context, ca: InternalCa) -> tuple[Certificate, x509.Certificate]:
    row = ctx.session.get(Certificate, ca.cert_id) if ca.cert_id else None
    if row is None:
        raise Conflict(f"Internal CA {ca.key!r} has no CA certificate")
    return row, x509.load_der_x509_certificate(row.der)


def _signer(ctx: Context, keys: KeyService, ca: InternalCa, cert: x509.Certificate) -> KeySigner:
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signer = signer_for(ctx, keys, ca.crypto_key)
    if signer.public_der != spki:
        raise Conflict(
            f"Internal CA {ca.key!r}: key {ca.crypto_key!r} was rotated; its CA certificate is for an older version"
        )
    return signer


def ca_view(ca: InternalCa) -> dict[str, Any]:
    return {
        "key": ca.key,
        "crypto_key": ca.crypto_key,
        "cert_id": ca.cert_id,
        "crl_number": ca.crl_number,
        "crl_next_update": ca.crl_next_update,
        "allowed_suffixes": list(ca.allowed_suffixes),
    }


def create_ca(ctx: Context, keys: KeyService, data: CaIn) -> InternalCa:
    ctx.require(Permission.CERTS_ADMIN)
    if ctx.session.scalar(select(InternalCa.id).where(InternalCa.key == data.key)) is not None:
        raise Conflict(f"An internal CA named {data.key!r} exists")
    signer = signer_for(ctx, keys, data.crypto_key)
    now = ctx.now()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, data.common_name)]
    if data.organisation:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, data.organisation))
    try:
        cert = internal_ca.create_ca_certificate(
            signer,
            subject=x509.Name(attrs),
            not_before=now - timedelta(minutes=5),
            not_after=now + timedelta(days=data.days),
        )
    except internal_ca.CaError as exc:
        raise ValidationFailed("The CA cannot be created", [FieldError("crypto_key", str(exc))]) from exc
    ca = InternalCa(key=data.key, crypto_key=data.crypto_key, allowed_suffixes=data.allowed_suffixes, created_at=now)
    ctx.session.add(ca)
    ctx.session.flush()
    rows, _ = store_chain(ctx, [cert], f"internal_ca:{data.key}")
    row = rows[0]
    row.status = CertStatus.ACTIVE.value
    row.ca_id = ca.id
    ca.cert_id = row.id
    ctx.session.flush()
    record_change(ctx, "cert.ca_created", "internal_ca", ca.id, None, ca_view(ca), certificate=row.fingerprint)
    publish_crl(ctx, keys, data.key)
    return ca


def _allowed(ca: InternalCa) -> Any:
    suffixes = [s.lower().lstrip(".") for s in ca.allowed_suffixes]
    if not suffixes:
        return None
    return lambda name: any(name.lower() == s or name.lower().endswith("." + s) for s in suffixes)


def issue(
    ctx: Context,
    keys: KeyService,
    ca_key: str,
    *,
    public_key: CertificatePublicKeyTypes,
    sans: list[str],
    days: int,
    public_url: str,
    registered: dict[str, Any] | None = None,
) -> Certificate:
    """Issue a server certificate for `public_key` and `sans`; it enters the register as active."""
    ctx.require(Permission.CERTS_ADMIN)
    ca = _ca(ctx, ca_key)
    ca_row, ca_cert = _ca_cert(ctx, ca)
    allowed = _allowed(ca)
    refused = [n for n in sans if allowed is not None and not allowed(n)]
    if refused:
        raise ValidationFailed(
            f"Internal CA {ca_key!r} may not certify these names",
            [FieldError("sans", f"not under {', '.join(ca.allowed_suffixes)}: {', '.join(refused)}")],
        )
    now = ctx.now()
    not_after = min(now + timedelta(days=days), ca_cert.not_valid_after_utc)
    cn = sans[0] if sans else ""
    try:
        cert = internal_ca.issue_certificate(
            _signer(ctx, keys, ca, ca_cert),
            ca_cert,
            public_key=public_key,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([]),
            sans=sans,
            not_before=now - timedelta(minutes=5),
            not_after=not_after,
            crl_url=f"{public_url}/pki/{ca.key}.crl",
        )
    except internal_ca.CaError as exc:
        raise ValidationFailed("The certificate cannot be issued", [FieldError("sans", str(exc))]) from exc
    rows, _ = store_chain(ctx, [cert, ca_cert], f"internal_ca:{ca.key}")
    row = rows[0]
    row.status = CertStatus.ACTIVE.value
    row.ca_id = ca.id
    row.issuer_cert_id = ca_row.id
    row.renewal_method = RenewalMethod.INTERNAL_CA.value
    row.renewal = {"ca": ca.key, **(registered or {})}
    ctx.session.flush()
    record_change(ctx, "cert.issued", "certificate", row.id, None, cert_view(row), ca=ca.key)
    return row


def revoke(ctx: Context, keys: KeyService, ref: str | int, reason: str) -> Certificate:
    """Revoke a certificate the internal CA issued, and publish a new CRL at once."""
    ctx.require(Permission.CERTS_ADMIN)
    c = get_certificate(ctx, ref)
    if c.ca_id is None or c.is_ca:
        raise Conflict(f"Certificate {short_name(c)} was not issued by an internal CA; revoke it with its issuer")
    if reason not in REASONS:
        raise ValidationFailed("Unknown revocation reason", [FieldError("reason", f"one of {', '.join(REASONS)}")])
    if c.revoked_at is not None:
        raise Conflict(f"Certificate {short_name(c)} was revoked on {c.revoked_at:%Y-%m-%d}")
    before = cert_view(c)
    c.revoked_at = ctx.now()
    c.revocation_reason = reason
    c.status = CertStatus.REVOKED.value
    c.updated_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, "cert.revoked", "certificate", c.id, before, cert_view(c), reason=reason)
    ca = ctx.session.get(InternalCa, c.ca_id)
    assert ca is not None
    publish_crl(ctx, keys, ca.key)
    return c


def publish_crl(ctx: Context, keys: KeyService, ca_key: str) -> x509.CertificateRevocationList:
    """Sign a new CRL for the CA (a new number) and keep it for /pki/<ca>.crl."""
    ctx.require(Permission.CERTS_ADMIN)
    ca = _ca(ctx, ca_key)
    _, ca_cert = _ca_cert(ctx, ca)
    rows = ctx.session.scalars(
        select(Certificate).where(Certificate.ca_id == ca.id, Certificate.revoked_at.is_not(None))
    )
    revoked = [
        (int(c.serial_hex, 16), c.revoked_at, REASONS.get(c.revocation_reason or "unspecified"))
        for c in rows
        if c.revoked_at is not None
    ]
    now = ctx.now()
    # The number moves only once the CRL is signed: a refused signature (suspended key) must not leave a
    # number that no published CRL carries.
    try:
        crl = internal_ca.create_crl(
            _signer(ctx, keys, ca, ca_cert),
            ca_cert,
            revoked=revoked,
            this_update=now,
            next_update=now + timedelta(days=CRL_DAYS),
            crl_number=ca.crl_number + 1,
        )
    except internal_ca.CaError as exc:
        raise Conflict(f"Internal CA {ca_key!r} cannot sign its CRL: {exc}") from exc
    ca.crl_number += 1
    ca.crl_der = crl.public_bytes(serialization.Encoding.DER)
    ca.crl_next_update = now + timedelta(days=CRL_DAYS)
    ctx.session.flush()
    record_change(
        ctx,
        "cert.crl_published",
        "internal_ca",
        ca.id,
        None,
        {"ca": ca.key, "crl_number": ca.crl_number, "revoked": len(revoked), "next_update": ca.crl_next_update},
    )
    resolve_key(ctx, f"{CRL_FAILED}:ca:{ca.id}", f"CRL {ca.crl_number} published")
    return crl


def crl_der(ctx: Context, ca_key: str) -> bytes:
    """The CA's latest CRL; public (a CRL is meant to be fetched by anyone relying on the CA)."""
    ca = _ca(ctx, ca_key)
    if ca.crl_der is None:
        raise NotFound(f"Internal CA {ca_key!r} has not published a CRL")
    return ca.crl_der


def crl_refresh_due(ctx: Context, keys: KeyService) -> list[str]:
    """Re-sign CRLs that reach their next update within a day, so relying parties never see a stale one."""
    soon = ctx.now() + timedelta(days=1)
    due = ctx.session.scalars(
        select(InternalCa.key).where((InternalCa.crl_next_update.is_(None)) | (InternalCa.crl_next_update <= soon))
    )
    done = []
    for key in list(due):
        try:
            publish_crl(ctx, keys, key)
        except Sealed:
            raise
        except PortcullisError as exc:
            # One CA whose key may not sign (suspended, rotated) must not stop the other CAs, nor the rest of
            # the scheduler's unit of work; its stale CRL is a finding until a CRL is signed again.
            ca = _ca(ctx, key)
            stale = f"{ca.crl_next_update:%Y-%m-%d %H:%M} UTC" if ca.crl_next_update else "now"
            open_finding(
                ctx,
                key=f"{CRL_FAILED}:ca:{ca.id}",
                kind=CRL_FAILED,
                severity="high",
                detail=f"Internal CA {key!r} could not re-sign its CRL (stale from {stale}): {exc}",
                due_days=1,
            )
            continue
        done.append(key)
    return done


def list_cas(ctx: Context) -> list[InternalCa]:
    ctx.require(Permission.CERTS_READ)
    return list(ctx.session.scalars(select(InternalCa).order_by(InternalCa.key)))
