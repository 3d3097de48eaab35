"""REST routes for certificates: the register, devices, discovery, expiry, renewal, the internal CA, CRLs."""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from portcullis.accounts.deps import Actor, require
from portcullis.certs import ca, checks, devices, discovery, files, renewal
from portcullis.certs.register import (
    CertIn,
    cert_view,
    certificate_detail,
    get_certificate,
    import_certificates,
    page_certificates,
    register_certificate,
    retire_certificate,
)
from portcullis.core.context import Context, Principal
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.keys.service import key_service

router = APIRouter(tags=["certificates"])
public = APIRouter(tags=["pki"])
Reader = Annotated[Actor, Depends(require(Permission.CERTS_READ))]
Admin = Annotated[Actor, Depends(require(Permission.CERTS_ADMIN))]


def _detail(ctx: Context, ref: str) -> dict[str, Any]:
    view = certificate_detail(ctx, ref)
    view["pem"] = base64.encodebytes(get_certificate(ctx, ref).der).decode()
    return view


@router.get("/certs", summary="The certificate register (keyset pages)")
def certs_list(
    actor: Reader,
    status: str | None = None,
    expiring_within_days: int | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    with actor.work() as ctx:
        before = ctx.now() + timedelta(days=expiring_within_days) if expiring_within_days is not None else None
        rows, total, nxt = page_certificates(
            ctx, status=status, expiring_before=before, search=q, after=after, limit=limit
        )
        return {"items": [cert_view(c) for c in rows], "total": total, "next_after": nxt}


@router.get("/certs/expiring", summary="Certificates in use expiring within `days`, with their renewal date")
def certs_expiring(actor: Reader, days: int = 30) -> list[dict[str, Any]]:
    with actor.work() as ctx:
        return [{**cert_view(c), "renewal_due": due} for c, due in checks.expiring(ctx, days)]


@router.get("/certs/{ref}", summary="One certificate: deployments, assets, renewals")
def certs_show(actor: Reader, ref: str) -> dict[str, Any]:
    with actor.work() as ctx:
        return _detail(ctx, ref)


@router.put("/certs/{ref}", summary="Take a certificate into the register, or change its entry")
def certs_register(actor: Admin, ref: str, data: CertIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return cert_view(register_certificate(ctx, ref, data))


class ImportIn(BaseModel):
    file_base64: str = Field(description="PEM, DER, PKCS#7 or PKCS#12 bytes, base64")
    file_name: str = "upload"
    passphrase: str | None = Field(default=None, description="For PKCS#12; never stored or logged")
    entry: CertIn = Field(default_factory=CertIn)


@router.post("/certs", status_code=201, summary="Register a certificate from a file's bytes")
def certs_import(actor: Admin, data: ImportIn) -> dict[str, Any]:
    try:
        raw = base64.b64decode(data.file_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("Not base64", [FieldError("file_base64", "is not valid base64")]) from None
    try:
        chain = files.load_certificates(
            raw, source=data.file_name, passphrase=data.passphrase.encode() if data.passphrase else None
        )
    except files.CertFileError as e:
        raise ValidationFailed(str(e), [FieldError("file_base64", str(e))]) from None
    with actor.work() as ctx:
        return cert_view(import_certificates(ctx, chain, data.file_name, data.entry))


class ReasonIn(BaseModel):
    reason: str


@router.post("/certs/{ref}/retire", summary="No longer relied on")
def certs_retire(actor: Admin, ref: str, data: ReasonIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return cert_view(retire_certificate(ctx, ref, data.reason))


@router.post("/certs/{ref}/renew", summary="Renew now (ACME or internal CA), deploy, update the register")
def certs_renew(actor: Admin, ref: str) -> dict[str, Any]:
    with actor.work() as ctx:
        rid = renewal.request_renewal(ctx, ref).id
    return renewal.run_renewals(actor.runtime, only=rid)[0]


class ScanIn(BaseModel):
    targets: list[str] = Field(default_factory=list, description="host[:port][@sni], [v6]:port, CIDR[:ports]")
    ports: list[int] = Field(default_factory=lambda: [443])
    concurrency: int = Field(default=200, ge=1, le=2000)
    timeout: float = Field(default=5.0, gt=0, le=60)


@router.post("/certs/scan", summary="Discover certificates on TLS endpoints")
def certs_scan(actor: Admin, data: ScanIn) -> dict[str, Any]:
    report = discovery.scan_endpoints(
        actor.runtime,
        actor.principal,
        data.targets,
        ports=data.ports,
        concurrency=data.concurrency,
        timeout=data.timeout,
    )
    return report.as_dict()


@router.post("/certs/check", summary="Run the certificate pass now")
def certs_check(actor: Admin) -> dict[str, int]:
    with actor.work() as ctx:
        return checks.certificate_pass(ctx)


@router.get("/cert-devices", summary="The register of certificate-storing devices")
def devices_list(actor: Reader) -> list[dict[str, Any]]:
    with actor.work() as ctx:
        return [devices.device_view(d) for d in devices.list_devices(ctx)]


@router.post("/cert-devices", status_code=201, summary="Register a certificate-storing device")
def devices_add(actor: Admin, data: devices.DeviceIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return devices.device_view(devices.register_device(ctx, data))


@router.get("/cert-cas", summary="Internal CAs")
def cas_list(actor: Reader) -> list[dict[str, Any]]:
    with actor.work() as ctx:
        return [ca.ca_view(x) for x in ca.list_cas(ctx)]


@router.post("/cert-cas", status_code=201, summary="Create an internal CA on a key from key management")
def cas_create(actor: Admin, data: ca.CaIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return ca.ca_view(ca.create_ca(ctx, key_service(actor.runtime), data))


class RevokeIn(BaseModel):
    reason: str = Field(description="unspecified, key_compromise, superseded, cessation_of_operation ...")


@router.post("/certs/{ref}/revoke", summary="Revoke a certificate the internal CA issued; publishes a CRL")
def certs_revoke(actor: Admin, ref: str, data: RevokeIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return cert_view(ca.revoke(ctx, key_service(actor.runtime), ref, data.reason))


@public.get("/pki/{name}.crl", summary="An internal CA's latest CRL (DER); public, as CRLs are")
def crl(request: Request, name: str) -> Response:
    rt = request.app.state.runtime
    with rt.work(Principal.system("pki")) as ctx:
        der = ca.crl_der(ctx, name)
    return Response(der, media_type="application/pkix-crl")
