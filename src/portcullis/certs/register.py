"""The certificate register (§29): what was found where, and what the firm has taken into its register.

Discovery (discovery.py) and renewal (renewal.py) call `record_found` with the
chain they saw and the place they saw it; a certificate is one row by its
fingerprint, each place one deployment. A certificate nobody has registered
stays "unregistered" with a finding until someone registers it (owner, ICT
assets, renewal method) or retires it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from portcullis.access.findings import open_finding, resolve_key
from portcullis.certs import x509info
from portcullis.certs.models import (
    CertAsset,
    CertDeployment,
    CertDevice,
    Certificate,
    CertRenewal,
    CertStatus,
    DeploymentKind,
    RenewalMethod,
)
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Asset, Person
from portcullis.ledger.service import record_change

UNREGISTERED = "cert_unregistered"


@dataclass(frozen=True)
class Place:
    """Where a chain was seen: an endpoint "host:port[/sni]", a file path, a token "label/object"."""

    kind: DeploymentKind
    location: str
    device_id: int | None = None


@dataclass
class Found:
    """What recording one chain did: the leaf's row, whether it is new, and a changed endpoint's previous leaf."""

    leaf: Certificate
    new: list[Certificate] = field(default_factory=list)
    replaced: Certificate | None = None


def cert_view(c: Certificate) -> dict[str, Any]:
    return {
        "id": c.id,
        "fingerprint": c.fingerprint,
        "subject": c.subject,
        "common_name": c.common_name,
        "sans": list(c.sans),
        "issuer": c.issuer,
        "serial": c.serial_hex,
        "not_before": c.not_before,
        "not_after": c.not_after,
        "key_type": c.key_type,
        "key_bits": c.key_bits,
        "signature_algorithm": c.signature_algorithm,
        "is_ca": c.is_ca,
        "self_signed": c.self_signed,
        "issuer_cert_id": c.issuer_cert_id,
        "status": c.status,
        "owner_id": c.owner_id,
        "renewal_method": c.renewal_method,
        "renewal": dict(c.renewal),
        "renew_at_fraction": c.renew_at_fraction,
        "ca_id": c.ca_id,
        "revoked_at": c.revoked_at,
        "revocation_reason": c.revocation_reason,
        "replaced_by_id": c.replaced_by_id,
        "notes": c.notes,
        "first_seen_at": c.first_seen_at,
        "last_seen_at": c.last_seen_at,
    }


def _short(c: Certificate) -> str:
    name = c.common_name or (c.sans[0] if c.sans else c.subject) or c.fingerprint[:16]
    return f"{name} ({c.fingerprint[:16]})"


def _row(info: x509info.CertInfo, now: datetime) -> Certificate:
    return Certificate(
        fingerprint=info.fingerprint_sha256,
        subject=info.subject,
        common_name=info.subject_cn,
        sans=list(info.sans),
        issuer=info.issuer,
        serial_hex=info.serial_hex,
        not_before=info.not_before,
        not_after=info.not_after,
        key_type=info.key_type,
        key_bits=info.key_bits,
        signature_algorithm=info.signature_algorithm,
        is_ca=info.is_ca,
        self_signed=info.self_signed,
        der=info.der,
        status=CertStatus.UNREGISTERED.value,
        renewal={},
        first_seen_at=now,
        last_seen_at=now,
        created_at=now,
        updated_at=now,
    )


def by_fingerprint(ctx: Context, fingerprint: str) -> Certificate | None:
    return ctx.session.scalar(select(Certificate).where(Certificate.fingerprint == fingerprint.lower()))


def get_certificate(ctx: Context, ref: str | int) -> Certificate:
    """A certificate by id, by fingerprint, or by a fingerprint prefix of at least 8 hex digits (unique)."""
    ctx.require(Permission.CERTS_READ)
    if isinstance(ref, int) or (ref.isdigit() and len(ref) < 8):
        c = ctx.session.get(Certificate, int(ref))
        if c is None:
            raise NotFound(f"No certificate with id {ref}")
        return c
    ref = ref.lower().replace(":", "")
    if len(ref) < 8:
        raise NotFound(f"Give at least 8 hex digits of the fingerprint, not {ref!r}")
    found = list(ctx.session.scalars(select(Certificate).where(Certificate.fingerprint.startswith(ref)).limit(2)))
    if not found:
        raise NotFound(f"No certificate whose fingerprint starts with {ref}")
    if len(found) > 1:
        raise Conflict(f"More than one certificate's fingerprint starts with {ref}; give more digits")
    return found[0]


def store_chain(
    ctx: Context, chain: Sequence[x509.Certificate], source: str
) -> tuple[list[Certificate], list[Certificate]]:
    """Each certificate of the chain as a row (existing or new), leaf first, issuers linked; and the new ones."""
    now = ctx.now()
    rows: list[Certificate] = []
    new: list[Certificate] = []
    for cert in chain:
        info = x509info.describe(cert)
        row = by_fingerprint(ctx, info.fingerprint_sha256)
        if row is None:
            row = _row(info, now)
            ctx.session.add(row)
            ctx.session.flush()
            new.append(row)
            record_change(ctx, "cert.discovered", "certificate", row.id, None, cert_view(row), source=source)
        else:
            row.last_seen_at = now
        rows.append(row)
    # Link each certificate to its issuer among the ones given with it (a file's order is not always a chain's).
    by_subject = {r.subject: r for r in rows if r.is_ca}
    for child in rows:
        parent = by_subject.get(child.issuer)
        if child.issuer_cert_id is None and parent is not None and parent.id != child.id:
            child.issuer_cert_id = parent.id
    return rows, new


def record_found(ctx: Context, chain: Sequence[x509.Certificate], place: Place) -> Found:
    """Record a chain seen at `place`: certificates by fingerprint, the leaf's deployment, an endpoint's change."""
    ctx.require(Permission.CERTS_ADMIN)
    if not chain:
        raise ValueError("an empty chain records nothing")
    rows, new = store_chain(ctx, chain, f"{place.kind.value}:{place.location}")
    leaf = rows[0]
    now = ctx.now()
    s = ctx.session
    previous = list(
        s.scalars(
            select(CertDeployment).where(
                CertDeployment.kind == place.kind.value,
                CertDeployment.location == place.location,
                CertDeployment.current.is_(True),
                CertDeployment.cert_id != leaf.id,
            )
        )
    )
    replaced = None
    for dep in previous:
        # The place now holds another certificate: the old deployment ends, and the change is on the record.
        dep.current = False
        old = s.get(Certificate, dep.cert_id)
        replaced = old
        record_change(
            ctx,
            "cert.deployment_changed",
            "cert_deployment",
            dep.id,
            {"location": dep.location, "fingerprint": old.fingerprint if old else None},
            {"location": place.location, "fingerprint": leaf.fingerprint},
            kind=place.kind.value,
        )
    here = s.scalar(
        select(CertDeployment).where(
            CertDeployment.cert_id == leaf.id,
            CertDeployment.kind == place.kind.value,
            CertDeployment.location == place.location,
        )
    )
    if here is None:
        here = CertDeployment(
            cert_id=leaf.id,
            kind=place.kind.value,
            location=place.location,
            device_id=place.device_id if place.device_id is not None else _device_for(ctx, place),
            current=True,
            first_seen_at=now,
            last_seen_at=now,
        )
        s.add(here)
        s.flush()
        record_change(
            ctx,
            "cert.deployment_found",
            "cert_deployment",
            here.id,
            None,
            {
                "fingerprint": leaf.fingerprint,
                "kind": here.kind,
                "location": here.location,
                "device_id": here.device_id,
            },
        )
    else:
        here.last_seen_at = now
        if not here.current:
            here.current = True
            record_change(
                ctx, "cert.deployment_found", "cert_deployment", here.id, {"current": False}, {"current": True}
            )
    if leaf.status == CertStatus.UNREGISTERED.value:
        _unregistered_finding(ctx, leaf)
    s.flush()
    return Found(leaf=leaf, new=new, replaced=replaced)


def _unregistered_finding(ctx: Context, c: Certificate) -> None:
    open_finding(
        ctx,
        key=f"{UNREGISTERED}:cert:{c.id}",
        kind=UNREGISTERED,
        severity="medium",
        detail=f"Certificate {_short(c)} was found by discovery and is not in the register (§29)",
    )


def endpoint_names(location: str) -> tuple[str, str]:
    """An endpoint deployment "host:port[/sni]" as (host, sni); sni is "" when none was sent."""
    hostport, _, sni = location.partition("/")
    return hostport.rsplit(":", 1)[0].strip("[]"), sni


def covers(pattern: str, kind: str, location: str) -> bool:
    """Whether a device's match pattern names a place: exactly, as a prefix ending in "*", or an endpoint's host."""
    if location == pattern or (pattern.endswith("*") and location.startswith(pattern[:-1])):
        return True
    return kind == DeploymentKind.ENDPOINT.value and pattern in endpoint_names(location)


def _device_for(ctx: Context, place: Place) -> int | None:
    """The registered device whose match patterns cover the place (a token label, a host, a directory)."""
    for d in ctx.session.scalars(select(CertDevice).order_by(CertDevice.id)):
        if any(covers(p, place.kind.value, place.location) for p in d.match):
            return d.id
    return None


class CertIn(BaseModel):
    """What taking a certificate into the register says about it."""

    owner_email: str | None = None
    asset_external_ids: list[str] = Field(default_factory=list, description="ICT assets that rely on it")
    renewal_method: RenewalMethod = RenewalMethod.MANUAL
    renewal: dict[str, Any] = Field(default_factory=dict)
    renew_at_fraction: float | None = Field(default=None, gt=0, lt=1)
    notes: str = ""

    @field_validator("renewal")
    @classmethod
    def _renewal(cls, v: dict[str, Any]) -> dict[str, Any]:
        for i, target in enumerate(v.get("deploy", [])):
            if target.get("kind") != "file" or not target.get("cert"):
                raise ValueError(f"deploy[{i}]: a deployment target is {{'kind': 'file', 'cert': path, 'key': path}}")
        return v


def _assets(ctx: Context, ids: list[str], errors: list[FieldError]) -> list[int]:
    out = []
    for i, ext in enumerate(ids):
        aid = ctx.session.scalar(select(Asset.id).where(Asset.external_id == ext))
        if aid is None:
            errors.append(FieldError(f"asset_external_ids[{i}]", f"no ICT asset with external id {ext!r}"))
        else:
            out.append(aid)
    return out


def _owner(ctx: Context, email: str | None, errors: list[FieldError]) -> int | None:
    if not email:
        return None
    pid = ctx.session.scalar(select(Person.id).where(Person.email == email.lower()))
    if pid is None:
        errors.append(FieldError("owner_email", f"no person with email {email!r}"))
    return pid


def _check_method(data: CertIn, errors: list[FieldError]) -> None:
    if data.renewal_method is RenewalMethod.ACME and not data.renewal.get("directory"):
        errors.append(FieldError("renewal.directory", "ACME renewal needs the ACME directory URL"))
    if data.renewal_method is RenewalMethod.INTERNAL_CA and not data.renewal.get("ca"):
        errors.append(FieldError("renewal.ca", "internal-CA renewal names the internal CA"))


def register_certificate(ctx: Context, ref: str | int, data: CertIn) -> Certificate:
    """Take a certificate (found by discovery or imported) into the register, or change what the register says."""
    ctx.require(Permission.CERTS_ADMIN)
    c = get_certificate(ctx, ref)
    errors: list[FieldError] = []
    owner = _owner(ctx, data.owner_email, errors)
    assets = _assets(ctx, data.asset_external_ids, errors)
    _check_method(data, errors)
    if errors:
        raise ValidationFailed(f"Certificate {_short(c)} cannot be registered", errors)
    before = cert_view(c)
    before_assets = sorted(ctx.session.scalars(select(CertAsset.asset_id).where(CertAsset.cert_id == c.id)))
    c.owner_id = owner
    c.renewal_method = data.renewal_method.value
    c.renewal = data.renewal
    c.renew_at_fraction = data.renew_at_fraction
    c.notes = data.notes
    if c.status == CertStatus.UNREGISTERED.value:
        c.status = CertStatus.ACTIVE.value
    c.updated_at = ctx.now()
    for link in ctx.session.scalars(select(CertAsset).where(CertAsset.cert_id == c.id)):
        ctx.session.delete(link)
    ctx.session.flush()
    ctx.session.add_all(CertAsset(cert_id=c.id, asset_id=a) for a in sorted(set(assets)))
    ctx.session.flush()
    record_change(
        ctx,
        "cert.registered" if before["status"] == CertStatus.UNREGISTERED.value else "cert.updated",
        "certificate",
        c.id,
        before,
        cert_view(c),
        assets_before=before_assets,
        assets=sorted(set(assets)),
    )
    resolve_key(ctx, f"{UNREGISTERED}:cert:{c.id}", "taken into the register")
    return c


def import_certificates(ctx: Context, chain: Sequence[x509.Certificate], source: str, data: CertIn) -> Certificate:
    """Register a certificate given as a file (its chain after it): stored, then registered, in one change."""
    ctx.require(Permission.CERTS_ADMIN)
    if not chain:
        raise ValidationFailed("No certificate to import", [FieldError("file", "holds no certificate")])
    rows, _ = store_chain(ctx, chain, source)
    return register_certificate(ctx, rows[0].id, data)


def retire_certificate(ctx: Context, ref: str | int, reason: str) -> Certificate:
    ctx.require(Permission.CERTS_ADMIN)
    c = get_certificate(ctx, ref)
    if not reason.strip():
        raise ValidationFailed("Say why the certificate is retired", [FieldError("reason", "must not be empty")])
    if c.status in (CertStatus.RETIRED.value, CertStatus.REVOKED.value):
        raise Conflict(f"Certificate {_short(c)} is already {c.status}")
    before = cert_view(c)
    c.status = CertStatus.RETIRED.value
    c.updated_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, "cert.retired", "certificate", c.id, before, cert_view(c), reason=reason)
    resolve_key(ctx, f"{UNREGISTERED}:cert:{c.id}", "retired")
    return c


def assets_of(ctx: Context, c: Certificate) -> list[Asset]:
    stmt = select(Asset).join(CertAsset, CertAsset.asset_id == Asset.id).where(CertAsset.cert_id == c.id)
    return list(ctx.session.scalars(stmt.order_by(Asset.external_id)))


def deployments_of(ctx: Context, c: Certificate) -> list[CertDeployment]:
    stmt = select(CertDeployment).where(CertDeployment.cert_id == c.id).order_by(CertDeployment.id)
    return list(ctx.session.scalars(stmt))


def renewals_of(ctx: Context, c: Certificate) -> list[CertRenewal]:
    stmt = select(CertRenewal).where(CertRenewal.cert_id == c.id).order_by(CertRenewal.id.desc())
    return list(ctx.session.scalars(stmt))


def certificate_detail(ctx: Context, ref: str | int) -> dict[str, Any]:
    """One certificate with what relies on it, where it is and its renewals: the API's and the CLI's view."""
    c = get_certificate(ctx, ref)
    view = cert_view(c)
    view["assets"] = [a.external_id for a in assets_of(ctx, c)]
    view["deployments"] = [
        {
            "kind": d.kind,
            "location": d.location,
            "device_id": d.device_id,
            "current": d.current,
            "first_seen_at": d.first_seen_at,
            "last_seen_at": d.last_seen_at,
        }
        for d in deployments_of(ctx, c)
    ]
    view["renewals"] = [
        {
            "id": r.id,
            "method": r.method,
            "status": r.status,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "next_attempt_at": r.next_attempt_at,
            "new_cert_id": r.new_cert_id,
        }
        for r in renewals_of(ctx, c)
    ]
    return view


def chain_of(ctx: Context, c: Certificate) -> list[Certificate]:
    """The certificate and its issuers as far as the register knows them (cycles cut)."""
    out = [c]
    seen = {c.id}
    while out[-1].issuer_cert_id is not None and out[-1].issuer_cert_id not in seen:
        parent = ctx.session.get(Certificate, out[-1].issuer_cert_id)
        if parent is None:
            break
        seen.add(parent.id)
        out.append(parent)
    return out


def short_name(c: Certificate) -> str:
    return _short(c)


def _listing(status: str | None, expiring_before: datetime | None, search: str | None) -> Any:
    stmt = select(Certificate)
    if status:
        stmt = stmt.where(Certificate.status == status)
    if expiring_before is not None:
        stmt = stmt.where(Certificate.not_after <= expiring_before)
    if search:
        like = f"%{search.lower()}%"
        stmt = stmt.where(
            Certificate.subject.ilike(like)
            | Certificate.issuer.ilike(like)
            | Certificate.fingerprint.startswith(search.lower())
        )
    return stmt


def list_certificates(
    ctx: Context, *, status: str | None = None, expiring_before: datetime | None = None, search: str | None = None
) -> list[Certificate]:
    """The whole register (for the CLI and exports), soonest expiry first."""
    ctx.require(Permission.CERTS_READ)
    stmt = _listing(status, expiring_before, search).order_by(Certificate.not_after, Certificate.id)
    return list(ctx.session.scalars(stmt))


def page_certificates(
    ctx: Context,
    *,
    status: str | None = None,
    expiring_before: datetime | None = None,
    search: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Certificate], int, int | None]:
    """One keyset page of the register (API and pages)."""
    ctx.require(Permission.CERTS_READ)
    return paginate(ctx.session, _listing(status, expiring_before, search), Certificate.id, after, limit)
