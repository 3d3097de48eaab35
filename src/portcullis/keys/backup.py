"""Back up software-held keys and restore them into a fresh installation (§27 backing up, retrieving; §28).

A backup is sealed to a backup recipient: an X25519 key pair made in a ceremony,
whose private half is split at once into SLIP-39 shares, one per custodian, and
never stored. Backups then need no custodian (they use the public half), while a
restore needs enough of them to bring their shares. Each key version's material
is wrapped (RFC 5649) under a key derived for that one backup, so a backup file
holds no material in the clear, and metadata and state travel with it: restored
keys keep their names, versions, states and policies, so what they protected
before decrypts and verifies after.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import JSON, LargeBinary, String, select
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.context import Context
from portcullis.core.db import Base
from portcullis.core.errors import Conflict, FieldError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.keys import shares
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import Ceremony, CryptoKey, Custody, KeyState, KeyVersion, VersionState
from portcullis.keys.primitives import unwrap, wrap
from portcullis.ledger.service import record_change

FORMAT = "portcullis-key-backup/1"


class BackupRecipient(Base):
    __tablename__ = "key_backup_recipient"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # raw X25519
    threshold: Mapped[int]
    count: Mapped[int]
    custodians: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    fingerprint: Mapped[str] = mapped_column(String(64))


def _fingerprint(public: bytes) -> str:
    h = hashes.Hash(hashes.SHA256())
    h.update(public)
    return h.finalize().hex()


def create_recipient(ctx: Context, custodian_ids: list[int], threshold: int, present: list[int]) -> list[str]:
    """A new backup recipient; returns the shares of its private half, one per custodian, shown once."""
    ctx.require(Permission.KEYS_ADMIN)
    if len(set(custodian_ids)) != len(custodian_ids) or not 1 <= threshold <= len(custodian_ids):
        raise ValidationFailed(
            "The backup key's shares", [FieldError("threshold", f"between 1 and {len(custodian_ids)} distinct")]
        )
    if len(set(present)) < 2:
        raise ValidationFailed("A backup key is made before two people", [FieldError("present", "at least two")])
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    mnemonics = shares.split(raw, threshold, len(custodian_ids))
    row = BackupRecipient(
        public_key=public,
        threshold=threshold,
        count=len(custodian_ids),
        custodians=custodian_ids,
        created_at=ctx.now(),
        fingerprint=_fingerprint(public),
    )
    ctx.session.add(row)
    ctx.session.flush()
    c = Ceremony(kind="backup_key", held_at=ctx.now(), present=sorted(set(present)), approvers=[])
    ctx.session.add(c)
    ctx.session.flush()
    record_change(
        ctx,
        "key.backup_recipient_created",
        "key_backup_recipient",
        row.id,
        None,
        {
            "fingerprint": row.fingerprint,
            "threshold": threshold,
            "count": row.count,
            "custodians": custodian_ids,
            "ceremony": c.id,
        },
    )
    return mnemonics


def _kek(shared: bytes, salt: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt, b"portcullis key backup v1").derive(shared)


def backup(ctx: Context, software: SoftwareBackend) -> bytes:
    """Every software-held key version not destroyed, wrapped for the latest backup recipient, as JSON bytes."""
    ctx.require(Permission.KEYS_ADMIN)
    s = ctx.session
    recipient = s.scalars(select(BackupRecipient).order_by(BackupRecipient.id.desc()).limit(1)).one_or_none()
    if recipient is None:
        raise Conflict("No backup key: create one first (portcullis keys backup-key), with its custodians present")
    ephemeral = X25519PrivateKey.generate()
    salt = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kek = _kek(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient.public_key)), salt)
    keys: list[dict[str, Any]] = []
    for k in s.scalars(
        select(CryptoKey)
        .where(CryptoKey.custody == Custody.INTERNAL.value, CryptoKey.backend == "software")
        .order_by(CryptoKey.id)
    ):
        algorithm = Algorithm(k.algorithm)
        versions = []
        for v in s.scalars(select(KeyVersion).where(KeyVersion.key_id == k.id).order_by(KeyVersion.version)):
            if v.ref is None:
                continue
            material = software.material(algorithm, v.ref)
            versions.append({"version": v.version, "state": v.state, "wrapped": _b64(wrap(kek, material))})
        keys.append(
            {
                "key": k.key,
                "name": k.name,
                "purpose": k.purpose,
                "algorithm": k.algorithm,
                "state": k.state,
                "critical": k.critical,
                "policy": k.policy,
                "extractable": k.extractable,
                "min_encrypt_version": k.min_encrypt_version,
                "min_decrypt_version": k.min_decrypt_version,
                "crypto_period_days": k.crypto_period_days,
                "location": k.location,
                "versions": versions,
            }
        )
    doc = {
        "format": FORMAT,
        "created_at": ctx.now().isoformat(),
        "recipient": recipient.fingerprint,
        "ephemeral_public": _b64(salt),
        "keys": keys,
    }
    record_change(
        ctx,
        "key.backup",
        "key_backup_recipient",
        recipient.id,
        None,
        {"keys": [k["key"] for k in keys], "versions": sum(len(k["versions"]) for k in keys)},
    )
    return json.dumps(doc, indent=1).encode()


def restore(ctx: Context, software: SoftwareBackend, data: bytes, mnemonics: list[str]) -> list[str]:
    """Bring a backup's keys into this installation (which must not hold keys of the same names)."""
    ctx.require(Permission.KEYS_ADMIN)
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ValidationFailed(f"Not a key backup: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValidationFailed("Not a key backup", [FieldError("format", f"expected {FORMAT}")])
    try:
        raw = shares.combine(mnemonics)
    except shares.ShareError as e:
        raise ValidationFailed(f"The backup key's shares do not combine: {e}") from None
    private = X25519PrivateKey.from_private_bytes(raw)
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if _fingerprint(public) != doc.get("recipient"):
        raise Conflict("These shares make a different backup key than the one this backup was made for")
    salt = base64.b64decode(doc["ephemeral_public"])
    kek = _kek(private.exchange(X25519PublicKey.from_public_bytes(salt)), salt)
    now = ctx.now()
    restored = []
    for item in doc["keys"]:
        if ctx.session.scalar(select(CryptoKey.id).where(CryptoKey.key == item["key"])) is not None:
            raise Conflict(f"Key {item['key']!r} is already in this register; restore into a fresh installation")
        algorithm = Algorithm(item["algorithm"])
        k = CryptoKey(
            key=item["key"],
            name=item["name"],
            purpose=item["purpose"],
            algorithm=algorithm.value,
            size_bits=algorithm.bits,
            custody=Custody.INTERNAL.value,
            backend="software",
            critical=item["critical"],
            state=item["state"],
            policy=item["policy"],
            extractable=item["extractable"],
            min_encrypt_version=item["min_encrypt_version"],
            min_decrypt_version=item["min_decrypt_version"],
            crypto_period_days=item["crypto_period_days"],
            location=item["location"],
            activated_at=now if item["state"] != KeyState.PRE_ACTIVATION.value else None,
            created_at=now,
            updated_at=now,
            protection={"restored_from_backup": doc["created_at"]},
        )
        ctx.session.add(k)
        ctx.session.flush()
        for v in item["versions"]:
            made = software.import_material(algorithm, unwrap(kek, base64.b64decode(v["wrapped"])))
            ctx.session.add(
                KeyVersion(
                    key_id=k.id,
                    version=v["version"],
                    ref=made.ref,
                    public_key=made.public_key,
                    state=v["state"] or VersionState.ACTIVE.value,
                    created_at=now,
                )
            )
        record_change(
            ctx,
            "key.restored",
            "crypto_key",
            k.id,
            None,
            {"key": k.key, "state": k.state},
            backup=doc["created_at"],
            versions=[v["version"] for v in item["versions"]],
        )
        restored.append(k.key)
    return restored


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()
