"""REST routes for keys: the register, state changes, rotation, dual control, and use (bytes as base64)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from portcullis.accounts.deps import Actor, require
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.keys import dual
from portcullis.keys.cli import STATES
from portcullis.keys.register import (
    KeyIn,
    change_state,
    get_key,
    key_view,
    list_keys,
    register_key,
    rotate,
    versions_of,
)
from portcullis.keys.service import backends, key_service

router = APIRouter(tags=["keys"])
Reader = Annotated[Actor, Depends(require(Permission.KEYS_READ))]
Admin = Annotated[Actor, Depends(require(Permission.KEYS_ADMIN))]
Custodian = Annotated[Actor, Depends(require(Permission.KEYS_CUSTODY))]
User = Annotated[Actor, Depends(require(Permission.KEYS_USE))]


class VersionOut(BaseModel):
    version: int
    state: str
    uses: int
    created_at: datetime
    has_public_key: bool


class KeyOut(BaseModel):
    id: int
    key: str
    name: str
    purpose: str
    algorithm: str
    size_bits: int
    custody: str
    backend: str | None
    owner_id: int | None
    device_asset_id: int | None
    location: str
    critical: bool
    state: str
    created_at: datetime
    activated_at: datetime | None
    deactivated_at: datetime | None
    compromised_at: datetime | None
    destroyed_at: datetime | None
    crypto_period_days: int | None
    rotate_by: datetime | None
    min_encrypt_version: int
    min_decrypt_version: int
    policy: dict[str, list[str]]
    extractable: bool
    protection: dict[str, Any]
    predecessor_id: int | None
    versions: list[VersionOut] | None = None


class StateIn(BaseModel):
    action: str = Field(description="activate, suspend, reactivate, deactivate, compromise")
    reason: str


class ReasonIn(BaseModel):
    reason: str


class OperationOut(BaseModel):
    id: int
    key_id: int | None
    operation: str
    reason: str
    requested_by: int
    requested_at: datetime
    approvals: list[int]
    required: int
    status: str
    not_before: datetime | None
    done_at: datetime | None


class DataIn(BaseModel):
    data: str = Field(description="base64")
    aad: str = Field(default="", description="base64 additional authenticated data (encrypt, decrypt)")


class SignatureOut(BaseModel):
    version: int
    signature: str


class VerifyIn(BaseModel):
    data: str
    signature: str
    version: int


class BlobOut(BaseModel):
    data: str


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("Not base64", [FieldError(field, "must be base64")]) from None


@router.get("/keys", response_model=list[KeyOut], summary="The key register")
def keys_list(actor: Reader, state: str | None = None) -> list[dict[str, Any]]:
    with actor.work() as ctx:
        return [key_view(k) for k in list_keys(ctx, state)]


@router.get("/keys/{name}", response_model=KeyOut, summary="One key with its versions (never material)")
def keys_show(actor: Reader, name: str) -> dict[str, Any]:
    with actor.work() as ctx:
        k = get_key(ctx, name)
        return key_view(k, versions_of(ctx, k))


@router.post("/keys", response_model=KeyOut, status_code=201, summary="Register (and for internal keys generate)")
def keys_register(actor: Admin, data: KeyIn) -> dict[str, Any]:
    available = backends(actor.runtime) if data.custody.value == "internal" else {}
    with actor.work() as ctx:
        k = register_key(ctx, data, available.get(data.backend or ""))
        return key_view(k, versions_of(ctx, k))


@router.post("/keys/{name}/state", response_model=KeyOut, summary="Change a key's state")
def keys_state(actor: Admin, name: str, data: StateIn) -> dict[str, Any]:
    target = STATES.get(data.action)
    if target is None:
        raise ValidationFailed("Unknown action", [FieldError("action", f"one of {', '.join(STATES)}")])
    with actor.work() as ctx:
        view = key_view(change_state(ctx, name, target, data.reason))
    key_service(actor.runtime).forget(name)
    return view


@router.post("/keys/{name}/rotate", response_model=KeyOut, summary="Add a version")
def keys_rotate(actor: Admin, name: str, data: ReasonIn) -> dict[str, Any]:
    with actor.work() as ctx:
        rotate(ctx, name, backends(actor.runtime)["software"], data.reason)
        k = get_key(ctx, name)
        view = key_view(k, versions_of(ctx, k))
    key_service(actor.runtime).forget(name)
    return view


@router.post("/keys/{name}/destroy", response_model=OperationOut, status_code=201, summary="Request destruction")
def keys_destroy(actor: Admin, name: str, data: ReasonIn) -> dict[str, Any]:
    with actor.work() as ctx:
        return dual.operation_view(dual.request(ctx, name, "destroy", data.reason))


@router.post("/keys/operations/{op_id}/approve", response_model=OperationOut, summary="Approve as a custodian")
def keys_approve(actor: Custodian, op_id: int) -> dict[str, Any]:
    with actor.work() as ctx:
        return dual.operation_view(dual.approve(ctx, op_id))


@router.post("/keys/operations/{op_id}/execute", response_model=KeyOut, summary="Execute an approved destruction")
def keys_execute(actor: Admin, op_id: int) -> dict[str, Any]:
    with actor.work() as ctx:
        view = key_view(dual.execute_destroy(ctx, op_id, backends(actor.runtime)))
    key_service(actor.runtime).forget()
    return view


@router.post("/keys/{name}/sign", response_model=SignatureOut, summary="Sign with a key the policy lets you use")
def keys_sign(actor: User, name: str, data: DataIn) -> dict[str, Any]:
    service = key_service(actor.runtime)
    with actor.work() as ctx:
        version, signature = service.sign(ctx, name, _b64(data.data, "data"))
        service.flush(ctx)
    return {"version": version, "signature": base64.b64encode(signature).decode()}


@router.post("/keys/{name}/verify", summary="Verify a signature")
def keys_verify(actor: User, name: str, data: VerifyIn) -> dict[str, bool]:
    service = key_service(actor.runtime)
    with actor.work() as ctx:
        ok = service.verify(ctx, name, _b64(data.data, "data"), _b64(data.signature, "signature"), data.version)
        service.flush(ctx)
    return {"valid": ok}


@router.post("/keys/{name}/encrypt", response_model=BlobOut, summary="AES-GCM encrypt; the result names the version")
def keys_encrypt(actor: User, name: str, data: DataIn) -> dict[str, str]:
    service = key_service(actor.runtime)
    with actor.work() as ctx:
        blob = service.encrypt(ctx, name, _b64(data.data, "data"), _b64(data.aad, "aad"))
        service.flush(ctx)
    return {"data": base64.b64encode(blob).decode()}


@router.post("/keys/{name}/decrypt", response_model=BlobOut, summary="Decrypt what the key encrypted")
def keys_decrypt(actor: User, name: str, data: DataIn) -> dict[str, str]:
    service = key_service(actor.runtime)
    with actor.work() as ctx:
        plain = service.decrypt(ctx, name, _b64(data.data, "data"), _b64(data.aad, "aad"))
        service.flush(ctx)
    return {"data": base64.b64encode(plain).decode()}


class ShareIn(BaseModel):
    share: str = Field(description="One custodian's SLIP-39 share of the master key (never logged)")


@router.get("/keys/seal/status", summary="Whether the key service is sealed")
def seal_status(actor: Reader) -> dict[str, Any]:
    from portcullis.keys.service import keyring

    ring = keyring(actor.runtime)
    held = actor.runtime._unseal
    return {"sealed": ring.sealed, "shares_offered": len(held["by"]) if held else 0}


@router.post("/keys/seal/share", summary="Offer a custodian's share towards unsealing the key service")
def seal_share(actor: Custodian, data: ShareIn) -> dict[str, Any]:
    from portcullis.keys.service import keyring
    from portcullis.keys.unseal import offer_share

    with actor.work() as ctx:
        return offer_share(ctx, actor.runtime, keyring(actor.runtime), data.share)


class MinVersionIn(BaseModel):
    version: int
    reason: str


class ReplaceIn(BaseModel):
    cause: str = Field(description="lost, compromised or damaged")
    reason: str
    successor: str | None = None


class NoteIn(BaseModel):
    note: str


class ExportIn(BaseModel):
    reason: str
    recipient_pem: str | None = Field(default=None, description="The recipient's RSA public key (PEM, >= 3072 bits)")
    kek: str | None = Field(default=None, description="Or: a key-encryption key in the register shared with them")


@router.get("/keys/operations/pending", response_model=list[OperationOut], summary="Operations waiting")
def keys_operations(actor: Reader) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from portcullis.keys.models import KeyOperation, OperationStatus

    with actor.work() as ctx:
        rows = ctx.session.scalars(
            select(KeyOperation)
            .where(KeyOperation.status.in_([OperationStatus.PENDING.value, OperationStatus.APPROVED.value]))
            .order_by(KeyOperation.id)
        )
        return [dual.operation_view(op) for op in rows]


@router.post("/keys/{name}/min-decrypt-version", response_model=KeyOut, summary="Retire older versions")
def keys_min_decrypt(actor: Admin, name: str, data: MinVersionIn) -> dict[str, Any]:
    from portcullis.keys.register import set_min_decrypt_version

    with actor.work() as ctx:
        view = key_view(set_min_decrypt_version(ctx, name, data.version, data.reason))
    key_service(actor.runtime).forget(name)
    return view


@router.post("/keys/{name}/replace", status_code=201, summary="Replace a lost, compromised or damaged key (§28)")
def keys_replace(actor: Admin, name: str, data: ReplaceIn) -> dict[str, Any]:
    from portcullis.keys.replace import replace, replacement_view

    available = backends(actor.runtime)
    with actor.work() as ctx:
        k = get_key(ctx, name)
        rep = replace(ctx, name, data.cause, data.reason, available.get(k.backend or ""), data.successor)
        view = replacement_view(ctx, rep)
    key_service(actor.runtime).forget()
    return view


@router.get("/keys/replacements/all", summary="Replacements and their progress")
def keys_replacements(actor: Reader) -> list[dict[str, Any]]:
    from portcullis.keys.replace import list_replacements, replacement_view

    with actor.work() as ctx:
        return [replacement_view(ctx, r) for r in list_replacements(ctx)]


@router.post("/keys/replacements/tasks/{task_id}/done", summary="Mark a replacement task done")
def keys_task_done(actor: Admin, task_id: int, data: NoteIn) -> dict[str, Any]:
    from portcullis.keys.replace import complete_task, replacement_view

    with actor.work() as ctx:
        return replacement_view(ctx, complete_task(ctx, task_id, data.note))


@router.post("/keys/{name}/export", response_model=OperationOut, status_code=201, summary="Request an export")
def keys_export(actor: Admin, name: str, data: ExportIn) -> dict[str, Any]:
    if (data.recipient_pem is None) == (data.kek is None):
        raise ValidationFailed("Whom for", [FieldError("recipient_pem", "give recipient_pem or kek, one of them")])
    with actor.work() as ctx:
        if data.kek is not None:
            return dual.operation_view(dual.request_export_to_kek(ctx, name, data.reason, data.kek))
        return dual.operation_view(dual.request_export(ctx, name, data.reason, data.recipient_pem or ""))


@router.post("/keys/operations/{op_id}/export", summary="Execute an approved export: the wrapped key, once")
def keys_export_execute(actor: Admin, op_id: int) -> dict[str, Any]:
    from portcullis.keys.backends.software import SoftwareBackend

    software = backends(actor.runtime)["software"]
    assert isinstance(software, SoftwareBackend)
    available = backends(actor.runtime)
    with actor.work() as ctx:
        return dual.execute_export(ctx, op_id, software, available)


@router.post("/keys/backup/now", summary="A backup of every software-held key, sealed to the backup key")
def keys_backup(actor: Admin) -> dict[str, Any]:
    import json

    from portcullis.keys.backends.software import SoftwareBackend
    from portcullis.keys.backup import backup

    software = backends(actor.runtime)["software"]
    assert isinstance(software, SoftwareBackend)
    with actor.work() as ctx:
        document: dict[str, Any] = json.loads(backup(ctx, software))
    return document
