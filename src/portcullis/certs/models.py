"""Certificate and certificate-storing device register tables (§29, §30).

A certificate is one row however many places it is found in: the SHA-256
fingerprint of its DER is the identity, and every place it was seen (a TLS
endpoint, a file, a token, a device) is a deployment. A certificate found by
discovery and not yet owned by anyone is in the register all the same, with
status "unregistered" and a finding, so nothing discovered is lost.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class CertStatus(StrEnum):
    UNREGISTERED = "unregistered"  # found by discovery, nobody has taken it into the register yet
    ACTIVE = "active"
    REPLACED = "replaced"  # a renewal superseded it
    REVOKED = "revoked"
    RETIRED = "retired"  # no longer relied on


class RenewalMethod(StrEnum):
    ACME = "acme"
    INTERNAL_CA = "internal_ca"
    MANUAL = "manual"


class DeploymentKind(StrEnum):
    ENDPOINT = "endpoint"  # host:port[/sni]
    FILE = "file"
    PKCS11 = "pkcs11"  # token label / object
    DEVICE = "device"  # declared by hand: a load balancer, a cloud service ...


class DeviceKind(StrEnum):
    HSM = "hsm"
    SMART_CARD = "smart_card"
    TOKEN = "token"  # noqa: S105 - a hardware token, not a secret
    SERVER = "server"
    LOAD_BALANCER = "load_balancer"
    CLOUD_SERVICE = "cloud_service"
    OTHER = "other"


class Certificate(Base):
    __tablename__ = "certificate"
    __table_args__ = (Index("ix_certificate_not_after", "not_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the DER, lower-case hex
    subject: Mapped[str] = mapped_column(Text)
    common_name: Mapped[str | None] = mapped_column(String(300), default=None)
    sans: Mapped[list[str]] = mapped_column(JSON, default=list)
    issuer: Mapped[str] = mapped_column(Text)
    serial_hex: Mapped[str] = mapped_column(String(80))
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    key_type: Mapped[str] = mapped_column(String(20))
    key_bits: Mapped[int]
    signature_algorithm: Mapped[str] = mapped_column(String(80))
    is_ca: Mapped[bool] = mapped_column(default=False)
    self_signed: Mapped[bool] = mapped_column(default=False)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    # The issuing certificate when it is in the register too (chains are stored as links, each certificate once).
    issuer_cert_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default=CertStatus.UNREGISTERED.value)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    renewal_method: Mapped[str] = mapped_column(String(20), default=RenewalMethod.MANUAL.value)
    # Method details: {"directory": ..., "domains": [...], "key_type": ...} for ACME, {"ca": ...} for the internal CA,
    # and {"deploy": [{"kind": "file", "cert": path, "key": path}]} for where a renewed certificate goes.
    renewal: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Renew when this fraction of the lifetime remains; None: the default for the linked assets' criticality.
    renew_at_fraction: Mapped[float | None] = mapped_column(default=None)
    # Issued by Portcullis's internal CA (for its CRL), and revocation when it was.
    ca_id: Mapped[int | None] = mapped_column(ForeignKey("internal_ca.id"), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revocation_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"), default=None)
    # A renewed certificate's private key, sealed under the master key, so a failed deployment can be retried.
    key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CertAsset(Base):
    """An ICT asset that relies on the certificate; its criticality sets the renewal policy (§29 "critical")."""

    __tablename__ = "cert_asset"

    cert_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"), primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id"), primary_key=True)


class CertDevice(Base):
    """A certificate-storing device (§29): an HSM, a smart card or token, a server, a load balancer, a cloud service."""

    __tablename__ = "cert_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), default=None)
    manufacturer: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    serial: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(Text, default="")
    # Where discovery finds it: a PKCS#11 token label, an endpoint host, a directory; matched to deployments.
    match: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What a PKCS#11 read found (token info, objects), refreshed on every read.
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_read_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CertDeployment(Base):
    """A place a certificate was found or put. `current` is false once another certificate took the place."""

    __tablename__ = "cert_deployment"
    __table_args__ = (
        UniqueConstraint("cert_id", "kind", "location", name="uq_cert_deployment_place"),
        Index("ix_cert_deployment_location", "kind", "location", "current"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cert_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"))
    kind: Mapped[str] = mapped_column(String(20))
    location: Mapped[str] = mapped_column(String(1000))
    device_id: Mapped[int | None] = mapped_column(ForeignKey("cert_device.id"), default=None)
    current: Mapped[bool] = mapped_column(default=True)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class CertNotice(Base):
    """One expiry notice: unique per certificate, threshold and channel, so it is sent once."""

    __tablename__ = "cert_notice"
    __table_args__ = (UniqueConstraint("cert_id", "threshold", "channel", name="uq_cert_notice_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cert_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"))
    threshold: Mapped[str] = mapped_column(String(20))  # "30d", "15d", "2d", "365d", "180d", "overdue"
    channel: Mapped[str] = mapped_column(String(20))  # email, webhook
    target: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class CertRenewal(Base):
    """A renewal attempt series for one certificate: retried with back-off, visible until it succeeds."""

    __tablename__ = "cert_renewal"
    __table_args__ = (Index("ix_cert_renewal_cert", "cert_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cert_id: Mapped[int] = mapped_column(ForeignKey("certificate.id"))
    method: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, succeeded, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    new_cert_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id"), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class InternalCa(Base):
    """Portcullis's own CA: its key is a key in key management; it issues, revokes and publishes a CRL."""

    __tablename__ = "internal_ca"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    crypto_key: Mapped[str] = mapped_column(String(100))  # crypto_key.key of the signing key
    # No foreign key: certificate.ca_id points here already, and SQLite cannot add the second one of a cycle later.
    cert_id: Mapped[int | None] = mapped_column(default=None)
    crl_number: Mapped[int] = mapped_column(default=0)
    crl_der: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    crl_next_update: Mapped[datetime | None] = mapped_column(default=None)
    allowed_suffixes: Mapped[list[str]] = mapped_column(JSON, default=list)  # names it may certify
    created_at: Mapped[datetime]


class AcmeAccount(Base):
    """An ACME account per directory; its key sealed under the master key."""

    __tablename__ = "acme_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    directory: Mapped[str] = mapped_column(String(500), unique=True)
    account_url: Mapped[str | None] = mapped_column(String(500), default=None)
    key_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    contact: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
