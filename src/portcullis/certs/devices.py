"""The register of certificate-storing devices (§29): HSMs, smart cards, tokens, servers, load balancers, clouds.

A device is linked to the ICT asset it is (when the inventory has it) and to
the places discovery finds certificates on it (`match`: a token label, an
endpoint host, a directory prefix ending in "*"). PKCS#11 tokens are read
directly: manufacturer, model, serial and objects come from the token itself.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from cryptography import x509
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select

from portcullis.certs.models import CertDeployment, CertDevice, DeploymentKind, DeviceKind
from portcullis.certs.register import Found, Place, covers, record_found
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, NotFound, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Asset
from portcullis.ledger.service import record_change

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


class TokenReader(Protocol):
    """What reading a token needs of keys.backends.pkcs11.Pkcs11Backend."""

    def token_info(self) -> dict[str, str]: ...

    def objects(self) -> list[Any]: ...

    def certificates(self) -> list[tuple[str, str, bytes]]: ...


class DeviceIn(BaseModel):
    key: str
    name: str
    kind: DeviceKind
    asset_external_id: str | None = None
    manufacturer: str = ""
    model: str = ""
    serial: str = ""
    location: str = ""
    match: list[str] = Field(default_factory=list, description="token labels, endpoint hosts, directory prefixes*")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _KEY.match(v):
            raise ValueError("lower-case letters, digits, '.', '_' and '-', starting with a letter or digit")
        return v


def device_view(d: CertDevice) -> dict[str, Any]:
    return {
        "id": d.id,
        "key": d.key,
        "name": d.name,
        "kind": d.kind,
        "asset_id": d.asset_id,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "serial": d.serial,
        "location": d.location,
        "match": list(d.match),
        "info": dict(d.info),
        "last_read_at": d.last_read_at,
    }


def get_device(ctx: Context, key: str) -> CertDevice:
    ctx.require(Permission.CERTS_READ)
    d = ctx.session.scalar(select(CertDevice).where(CertDevice.key == key))
    if d is None:
        raise NotFound(f"No certificate-storing device {key!r}")
    return d


def list_devices(ctx: Context) -> list[CertDevice]:
    ctx.require(Permission.CERTS_READ)
    return list(ctx.session.scalars(select(CertDevice).order_by(CertDevice.key)))


def _relink(ctx: Context, d: CertDevice) -> int:
    """Deployments at places the device's patterns cover, and with no device yet, are on this device."""
    linked = 0
    for dep in ctx.session.scalars(select(CertDeployment).where(CertDeployment.device_id.is_(None))):
        if any(covers(p, dep.kind, dep.location) for p in d.match):
            dep.device_id = d.id
            linked += 1
    return linked


def register_device(ctx: Context, data: DeviceIn) -> CertDevice:
    ctx.require(Permission.CERTS_ADMIN)
    s = ctx.session
    if s.scalar(select(CertDevice.id).where(CertDevice.key == data.key)) is not None:
        raise Conflict(f"A device named {data.key!r} is in the register")
    asset_id = None
    if data.asset_external_id:
        asset_id = s.scalar(select(Asset.id).where(Asset.external_id == data.asset_external_id))
        if asset_id is None:
            raise ValidationFailed(
                "The device cannot be registered",
                [FieldError("asset_external_id", f"no ICT asset with external id {data.asset_external_id!r}")],
            )
    now = ctx.now()
    d = CertDevice(
        key=data.key,
        name=data.name,
        kind=data.kind.value,
        asset_id=asset_id,
        manufacturer=data.manufacturer,
        model=data.model,
        serial=data.serial,
        location=data.location,
        match=data.match,
        info={},
        created_at=now,
        updated_at=now,
    )
    s.add(d)
    s.flush()
    linked = _relink(ctx, d)
    s.flush()
    record_change(ctx, "cert.device_registered", "cert_device", d.id, None, device_view(d), deployments_linked=linked)
    return d


def read_token(ctx: Context, device_key: str, reader: TokenReader) -> tuple[CertDevice, list[Found]]:
    """Read a PKCS#11 token into its device entry (identity, objects) and its certificates into the register."""
    ctx.require(Permission.CERTS_ADMIN)
    d = get_device(ctx, device_key)
    info = reader.token_info()
    objects = [o._asdict() if hasattr(o, "_asdict") else dict(o) for o in reader.objects()]
    before = device_view(d)
    d.manufacturer = info.get("manufacturer", "").strip()
    d.model = info.get("model", "").strip()
    d.serial = info.get("serial_number", "").strip()
    # Object lists name keys of every application on the token; labels and ids only, never values.
    d.info = {"token": info, "objects": objects}
    now = ctx.now()
    d.last_read_at = now
    d.updated_at = now
    label = info.get("label", "").strip()
    if label and label not in d.match:
        d.match = [*d.match, label]
    ctx.session.flush()
    record_change(ctx, "cert.device_read", "cert_device", d.id, before, device_view(d))
    found = []
    for obj_label, id_hex, der in reader.certificates():
        cert = x509.load_der_x509_certificate(der)
        place = Place(DeploymentKind.PKCS11, f"{label}/{obj_label or id_hex}", d.id)
        found.append(record_found(ctx, [cert], place))
    return d, found
