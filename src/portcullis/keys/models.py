"""Key register and key service tables (§17 vi, §26-28).

A key is registered whether its material is inside Portcullis (custody
"internal": held by a backend, used through the key service) or outside it
(custody "external": a hardware wallet, a cloud KMS, a provider's HSM, an SSH host
key), so the register covers every key the firm relies on. A key's state follows
NIST SP 800-57 Part 1; every transition is a row here and a ledger record.
Internal keys have versions: rotation adds one, and minimum versions say which
may still encrypt and which may still decrypt.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class KeyState(StrEnum):
    PRE_ACTIVATION = "pre_activation"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DEACTIVATED = "deactivated"
    COMPROMISED = "compromised"
    DESTROYED = "destroyed"


class Custody(StrEnum):
    INTERNAL = "internal"
    EXTERNAL = "external"


class VersionState(StrEnum):
    ACTIVE = "active"  # may be used as the key's policy and minimum versions allow
    ARCHIVED = "archived"  # kept only to decrypt or verify (§27 archive)
    DESTROYED = "destroyed"  # material erased


class CryptoKey(Base):
    __tablename__ = "crypto_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(Text)
    algorithm: Mapped[str] = mapped_column(String(30))
    size_bits: Mapped[int]
    custody: Mapped[str] = mapped_column(String(10))
    backend: Mapped[str | None] = mapped_column(String(20), default=None)  # internal keys: software, pkcs11
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    # Where the material lives: a device registered as an ICT asset (an HSM, a hardware wallet), or words.
    device_asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), default=None)
    location: Mapped[str] = mapped_column(Text, default="")
    critical: Mapped[bool] = mapped_column(default=False)  # generation needs a ceremony; loss is §28
    state: Mapped[str] = mapped_column(String(20), default=KeyState.PRE_ACTIVATION.value)
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None] = mapped_column(default=None)
    deactivated_at: Mapped[datetime | None] = mapped_column(default=None)
    # Kept after destruction: a destroyed key that had been compromised stays known as such (NIST "destroyed
    # compromised"), so what it protected is still known to be exposed.
    compromised_at: Mapped[datetime | None] = mapped_column(default=None)
    destroyed_at: Mapped[datetime | None] = mapped_column(default=None)
    crypto_period_days: Mapped[int | None] = mapped_column(default=None)
    rotate_by: Mapped[datetime | None] = mapped_column(default=None)
    min_encrypt_version: Mapped[int] = mapped_column(default=1)
    min_decrypt_version: Mapped[int] = mapped_column(default=1)
    # Who may do what: {"sign": ["role:security_officer", "user:12", "system:ledger"], "decrypt": [...]}.
    policy: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    extractable: Mapped[bool] = mapped_column(default=False)  # material may leave wrapped (backup, transmit)
    protection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    predecessor_id: Mapped[int | None] = mapped_column(ForeignKey("crypto_key.id"), default=None)
    updated_at: Mapped[datetime]


class KeyCustodian(Base):
    __tablename__ = "key_custodian"

    key_id: Mapped[int] = mapped_column(ForeignKey("crypto_key.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)


class KeyAsset(Base):
    """An ICT asset that relies on the key: what a compromise or loss puts at risk (§28)."""

    __tablename__ = "key_asset"

    key_id: Mapped[int] = mapped_column(ForeignKey("crypto_key.id"), primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id"), primary_key=True)


class KeyVersion(Base):
    __tablename__ = "key_version"
    __table_args__ = (UniqueConstraint("key_id", "version", name="uq_key_version_key_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("crypto_key.id"))
    version: Mapped[int]
    # Software backend: the material sealed under the master key; PKCS#11: the token objects' CKA_ID.
    ref: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    public_key: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    state: Mapped[str] = mapped_column(String(20), default=VersionState.ACTIVE.value)
    uses: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    destroyed_at: Mapped[datetime | None] = mapped_column(default=None)


class KeyTransition(Base):
    __tablename__ = "key_transition"
    __table_args__ = (Index("ix_key_transition_key", "key_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("crypto_key.id"))
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200))


class OperationStatus(StrEnum):
    PENDING = "pending"  # waiting for custodians
    APPROVED = "approved"  # enough custodians; waiting for its grace period, if any
    DONE = "done"
    CANCELLED = "cancelled"


class KeyOperation(Base):
    """An operation under dual control (§27, DESIGN: destruction, export, master-key operations need two custodians)."""

    __tablename__ = "key_operation"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int | None] = mapped_column(ForeignKey("crypto_key.id"), default=None)
    operation: Mapped[str] = mapped_column(String(30))  # destroy, export, ...
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by: Mapped[int] = mapped_column(ForeignKey("person.id"))
    requested_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text)
    approvals: Mapped[list[int]] = mapped_column(JSON, default=list)  # person ids of the custodians who approved
    required: Mapped[int] = mapped_column(default=2)
    status: Mapped[str] = mapped_column(String(20), default=OperationStatus.PENDING.value)
    not_before: Mapped[datetime | None] = mapped_column(default=None)  # the grace period's end
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class Ceremony(Base):
    """Who was present and who approved when a master key or a critical key was generated."""

    __tablename__ = "key_ceremony"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # master_key, critical_key
    key_id: Mapped[int | None] = mapped_column(ForeignKey("crypto_key.id"), default=None)
    held_at: Mapped[datetime]
    present: Mapped[list[int]] = mapped_column(JSON, default=list)  # person ids
    approvers: Mapped[list[int]] = mapped_column(JSON, default=list)  # person ids
    notes: Mapped[str] = mapped_column(Text, default="")


class Replacement(Base):
    """One lost, compromised or damaged key replaced by its successor (§28), with a task per dependant."""

    __tablename__ = "key_replacement"

    id: Mapped[int] = mapped_column(primary_key=True)
    old_key_id: Mapped[int] = mapped_column(ForeignKey("crypto_key.id"))
    new_key_id: Mapped[int] = mapped_column(ForeignKey("crypto_key.id"))
    cause: Mapped[str] = mapped_column(String(20))  # lost, compromised, damaged
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class ReplacementTask(Base):
    __tablename__ = "key_replacement_task"

    id: Mapped[int] = mapped_column(primary_key=True)
    replacement_id: Mapped[int] = mapped_column(ForeignKey("key_replacement.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))  # asset, ciphertexts, grant, certificate
    ref: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="open")
    done_at: Mapped[datetime | None] = mapped_column(default=None)
