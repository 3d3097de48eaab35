"""Dual control (§27; DESIGN: key destruction and export need two custodians).

An operation is requested by a key administrator, approved by two distinct
custodians of that key (neither of them the requester: four eyes at least), and
only then executed; destruction also waits out a grace period after its
approval, during which it can be cancelled. Every step is a ledger record.
"""

from __future__ import annotations

import base64
import os
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select

from portcullis.access.grants import linked_person
from portcullis.core.context import Context
from portcullis.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.keys import lifecycle
from portcullis.keys.backends.base import Algorithm, Backend
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import (
    CryptoKey,
    Custody,
    KeyCustodian,
    KeyOperation,
    KeyState,
    KeyVersion,
    OperationStatus,
    VersionState,
)
from portcullis.keys.primitives import wrap
from portcullis.keys.register import key_by_name
from portcullis.ledger.service import record_change

REQUIRED = 2
DESTROY_GRACE = timedelta(days=7)
OPERATIONS = ("destroy", "export")


def operation_view(op: KeyOperation) -> dict[str, Any]:
    return {
        "id": op.id,
        "key_id": op.key_id,
        "operation": op.operation,
        "reason": op.reason,
        "requested_by": op.requested_by,
        "requested_at": op.requested_at,
        "approvals": op.approvals,
        "required": op.required,
        "status": op.status,
        "not_before": op.not_before,
        "done_at": op.done_at,
    }


def _person_of(ctx: Context) -> int:
    person = linked_person(ctx)
    if person is None:
        raise PermissionDenied(
            f"{ctx.principal.name} is not linked to a person in the register, so cannot be a requester or custodian"
        )
    return person.id


def request(ctx: Context, name: str, operation: str, reason: str, params: dict[str, Any] | None = None) -> KeyOperation:
    ctx.require(Permission.KEYS_ADMIN)
    if operation not in OPERATIONS:
        raise ValidationFailed("Unknown operation", [FieldError("operation", f"one of {', '.join(OPERATIONS)}")])
    if not reason.strip():
        raise ValidationFailed("A dual-control operation needs its reason", [FieldError("reason", "is required")])
    k = key_by_name(ctx, name)
    if operation == "destroy":
        why = lifecycle.refusal(KeyState(k.state), KeyState.DESTROYED)
        if why is not None:
            raise Conflict(f"Key {name!r} cannot be destroyed now: {why}")
    if operation == "export" and not k.extractable:
        raise Conflict(f"Key {name!r} was generated non-extractable: its material never leaves its backend")
    custodians = set(ctx.session.scalars(select(KeyCustodian.person_id).where(KeyCustodian.key_id == k.id)))
    requester = _person_of(ctx)
    if len(custodians - {requester}) < REQUIRED:
        raise Conflict(f"Key {name!r} has fewer than {REQUIRED} custodians besides the requester; name them first")
    op = KeyOperation(
        key_id=k.id,
        operation=operation,
        params=params or {},
        requested_by=requester,
        requested_at=ctx.now(),
        reason=reason.strip(),
        required=REQUIRED,
    )
    ctx.session.add(op)
    ctx.session.flush()
    record_change(ctx, f"key.{operation}_requested", "key_operation", op.id, None, operation_view(op), key=k.key)
    return op


def _load(ctx: Context, op_id: int) -> tuple[KeyOperation, CryptoKey]:
    op = ctx.session.get(KeyOperation, op_id)
    if op is None or op.key_id is None:
        raise NotFound(f"No key operation {op_id}")
    k = ctx.session.get(CryptoKey, op.key_id)
    assert k is not None
    return op, k


def approve(ctx: Context, op_id: int) -> KeyOperation:
    ctx.require(Permission.KEYS_CUSTODY)
    op, k = _load(ctx, op_id)
    if op.status != OperationStatus.PENDING.value:
        raise Conflict(f"Operation {op_id} is {op.status}, not waiting for approval")
    me = _person_of(ctx)
    custodians = set(ctx.session.scalars(select(KeyCustodian.person_id).where(KeyCustodian.key_id == k.id)))
    if me not in custodians:
        raise PermissionDenied(f"{ctx.principal.name} is not a custodian of key {k.key!r}")
    if me == op.requested_by:
        raise PermissionDenied("The requester of an operation cannot also approve it")
    if me in op.approvals:
        raise Conflict(f"{ctx.principal.name} has already approved operation {op_id}: a second custodian must")
    before = operation_view(op)
    op.approvals = [*op.approvals, me]
    if len(op.approvals) >= op.required:
        op.status = OperationStatus.APPROVED.value
        if op.operation == "destroy":
            op.not_before = ctx.now() + DESTROY_GRACE
    record_change(ctx, f"key.{op.operation}_approved", "key_operation", op.id, before, operation_view(op), key=k.key)
    return op


def cancel(ctx: Context, op_id: int, reason: str) -> KeyOperation:
    ctx.require(Permission.KEYS_ADMIN)
    op, k = _load(ctx, op_id)
    if op.status not in (OperationStatus.PENDING.value, OperationStatus.APPROVED.value):
        raise Conflict(f"Operation {op_id} is {op.status}")
    before = operation_view(op)
    op.status = OperationStatus.CANCELLED.value
    record_change(
        ctx,
        f"key.{op.operation}_cancelled",
        "key_operation",
        op.id,
        before,
        operation_view(op),
        key=k.key,
        reason=reason,
    )
    return op


def _ready(ctx: Context, op: KeyOperation, k: CryptoKey) -> None:
    if op.status in (OperationStatus.DONE.value, OperationStatus.CANCELLED.value):
        raise Conflict(f"Operation {op.id} on key {k.key!r} is {op.status}")
    if op.status != OperationStatus.APPROVED.value:
        have = len(op.approvals)
        raise Conflict(f"Operation {op.id} on key {k.key!r} has {have} of {op.required} custodian approvals")
    if op.not_before is not None and ctx.now() < op.not_before:
        raise Conflict(f"Operation {op.id} waits out its grace period until {op.not_before.isoformat()}")


def execute_destroy(ctx: Context, op_id: int, backends: dict[str, Backend]) -> CryptoKey:
    """Erase every version's material (metadata and history stay) and move the key to destroyed."""
    ctx.require(Permission.KEYS_ADMIN)
    op, k = _load(ctx, op_id)
    if op.operation != "destroy":
        raise Conflict(f"Operation {op_id} is a {op.operation}, not a destruction")
    _ready(ctx, op, k)
    now = ctx.now()
    if k.custody == Custody.INTERNAL.value:
        backend = backends.get(k.backend or "")
        if backend is None:
            raise Conflict(f"The {k.backend} backend holding key {k.key!r} is not available here")
        for v in ctx.session.scalars(select(KeyVersion).where(KeyVersion.key_id == k.id)):
            if v.ref is not None:
                backend.destroy(v.ref)
            v.ref, v.state, v.destroyed_at = None, VersionState.DESTROYED.value, now
    lifecycle.transition(ctx, k, KeyState.DESTROYED, op.reason)
    before = operation_view(op)
    op.status, op.done_at = OperationStatus.DONE.value, now
    record_change(ctx, "key.destroy_executed", "key_operation", op.id, before, operation_view(op), key=k.key)
    return k


def request_export_to_kek(ctx: Context, name: str, reason: str, kek: str) -> KeyOperation:
    """Request the transmission of an extractable key wrapped (RFC 5649) under a key-encryption key in the
    register (an AES-256 key shared with the recipient, e.g. through an earlier ceremony)."""
    ctx.require(Permission.KEYS_ADMIN)
    target = key_by_name(ctx, kek)
    if target.algorithm != Algorithm.AES_256.value or target.custody != "internal":
        raise ValidationFailed("Not a key-encryption key", [FieldError("kek", "an internal AES-256 key")])
    if target.state != KeyState.ACTIVE.value:
        raise Conflict(f"Key-encryption key {kek!r} is {target.state}")
    if kek == name:
        raise ValidationFailed("A key does not wrap itself", [FieldError("kek", "another key")])
    return request(ctx, name, "export", reason, {"kek": kek})


def request_export(ctx: Context, name: str, reason: str, recipient_pem: str) -> KeyOperation:
    """Request the transmission of an extractable key's current version, wrapped for a recipient's RSA key."""
    try:
        recipient = serialization.load_pem_public_key(recipient_pem.encode())
    except ValueError:
        raise ValidationFailed("Not a public key", [FieldError("recipient", "a PEM RSA public key")]) from None
    if not isinstance(recipient, rsa.RSAPublicKey) or recipient.key_size < 3072:
        raise ValidationFailed("Not usable", [FieldError("recipient", "an RSA public key of 3072 bits or more")])
    return request(ctx, name, "export", reason, {"recipient": recipient_pem})


def execute_export(
    ctx: Context, op_id: int, software: SoftwareBackend, backends: dict[str, Backend] | None = None
) -> dict[str, Any]:
    """The approved export: the material wrapped (RFC 5649) under a fresh key-encryption key, which is itself
    encrypted (RSA-OAEP, SHA-256) for the recipient. Returned once; the ledger records that it happened."""
    ctx.require(Permission.KEYS_ADMIN)
    backends = backends or {"software": software}
    op, k = _load(ctx, op_id)
    if op.operation != "export":
        raise Conflict(f"Operation {op_id} is a {op.operation}, not an export")
    _ready(ctx, op, k)
    if k.backend != "software":
        raise Conflict(f"Key {k.key!r} is held by {k.backend}: export it with the device's own wrapping")
    v = ctx.session.scalars(
        select(KeyVersion).where(KeyVersion.key_id == k.id).order_by(KeyVersion.version.desc()).limit(1)
    ).one()
    if v.ref is None:
        raise Conflict(f"Key {k.key!r} has no material left to export")
    material = software.material(Algorithm(k.algorithm), v.ref)
    package: dict[str, Any] = {"key": k.key, "algorithm": k.algorithm, "version": v.version}
    if "kek" in op.params:
        kek_key = key_by_name(ctx, str(op.params["kek"]))
        if kek_key.state != KeyState.ACTIVE.value:
            raise Conflict(f"Key-encryption key {kek_key.key!r} is {kek_key.state}")
        kek_version = ctx.session.scalars(
            select(KeyVersion).where(KeyVersion.key_id == kek_key.id).order_by(KeyVersion.version.desc()).limit(1)
        ).one()
        backend = backends.get(kek_key.backend or "")
        if backend is None or kek_version.ref is None:
            raise Conflict(f"Key-encryption key {kek_key.key!r} cannot wrap here")
        package.update(
            kek=kek_key.key,
            kek_version=kek_version.version,
            wrapped=base64.b64encode(backend.wrap(kek_version.ref, material)).decode(),
        )
    else:
        recipient = serialization.load_pem_public_key(str(op.params["recipient"]).encode())
        assert isinstance(recipient, rsa.RSAPublicKey)
        kek = os.urandom(32)
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        package.update(
            encrypted_kek=base64.b64encode(recipient.encrypt(kek, oaep)).decode(),
            wrapped=base64.b64encode(wrap(kek, material)).decode(),
        )
    before = operation_view(op)
    op.status, op.done_at = OperationStatus.DONE.value, ctx.now()
    record_change(
        ctx, "key.export_executed", "key_operation", op.id, before, operation_view(op), key=k.key, version=v.version
    )
    return package
