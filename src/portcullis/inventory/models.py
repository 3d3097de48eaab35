"""Inventory registers: organisation profile, people, ICT assets, premises and zones,
ICT third-party providers (§11, §17 i, §18, §21)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class Level(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Criticality(StrEnum):
    # DORA's vocabulary: a critical or important function, or neither.
    CRITICAL = "critical"
    IMPORTANT = "important"
    OTHER = "other"


class PersonKind(StrEnum):
    EMPLOYEE = "employee"
    CONTRACTOR = "contractor"
    SERVICE_ACCOUNT = "service_account"


class PersonStatus(StrEnum):
    JOINER = "joiner"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    LEAVER = "leaver"


class AssetType(StrEnum):
    APPLICATION = "application"
    SERVER = "server"
    DATABASE = "database"
    NETWORK_DEVICE = "network_device"
    CLOUD_ACCOUNT = "cloud_account"
    HSM = "hsm"
    WALLET = "wallet"
    SAAS = "saas"
    ENDPOINT = "endpoint"
    STORAGE = "storage"
    OTHER = "other"


class SiteKind(StrEnum):
    OFFICE = "office"
    DATA_CENTRE = "data_centre"
    COLOCATION = "colocation"


class ZoneKind(StrEnum):
    SERVER_ROOM = "server_room"
    SAFE_ROOM = "safe_room"
    COMMS_ROOM = "comms_room"
    OFFICE_AREA = "office_area"
    RECEPTION = "reception"
    CAGE = "cage"
    OTHER = "other"


class Organisation(Base):
    """The firm itself; a single row. Its profile sets the proportionality tier (§11)."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(300))
    lei: Mapped[str | None] = mapped_column(String(20), default=None)
    competent_authority: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    staff_count: Mapped[int] = mapped_column(default=0)
    risk_profile: Mapped[str] = mapped_column(String(10), default=Level.MEDIUM.value)
    complexity: Mapped[str] = mapped_column(String(10), default=Level.MEDIUM.value)
    updated_at: Mapped[datetime]


class ProportionalityOverride(Base):
    """A default of the tier replaced by the firm, with the reason it gave (§11)."""

    __tablename__ = "proportionality_override"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    value: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    set_by: Mapped[str] = mapped_column(String(320))
    set_at: Mapped[datetime]


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The HR system's id: what imports match on, so importing twice changes nothing.
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default=PersonKind.EMPLOYEE.value)
    department: Mapped[str] = mapped_column(String(200), default="")
    job_title: Mapped[str] = mapped_column(String(200), default="")
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default=PersonStatus.JOINER.value)
    start_date: Mapped[date | None] = mapped_column(Date, default=None)
    end_date: Mapped[date | None] = mapped_column(Date, default=None)
    status_changed_at: Mapped[datetime]
    key_function_holder: Mapped[bool] = mapped_column(default=False)
    # MFA enrolled at the firm's identity provider: required for privileged and
    # remote-administration access (§22, §24). Fed by the IdP (SCIM) or HR files.
    mfa_enrolled: Mapped[bool] = mapped_column(default=False)
    idp_id: Mapped[str | None] = mapped_column(String(200), unique=True, default=None)
    badge_id: Mapped[str | None] = mapped_column(String(100), unique=True, default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Site(Base):
    __tablename__ = "site"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Zone(Base):
    __tablename__ = "zone"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("site.id"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    criticality: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Provider(Base):
    """An ICT third-party service provider (§17 i-ii)."""

    __tablename__ = "provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lei: Mapped[str | None] = mapped_column(String(20), default=None)
    services: Mapped[str] = mapped_column(Text, default="")
    criticality: Mapped[str] = mapped_column(String(10))
    contract_start: Mapped[date | None] = mapped_column(Date, default=None)
    contract_end: Mapped[date | None] = mapped_column(Date, default=None)
    exit_plan: Mapped[str] = mapped_column(Text, default="")
    contact_email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Asset(Base):
    """An ICT asset (DORA Art. 3(7))."""

    __tablename__ = "asset"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(20))
    criticality: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    business_function: Mapped[str] = mapped_column(String(300), default="")
    # Where it physically is, when it is on the firm's premises...
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zone.id"), default=None)
    # ...or a free description (a cloud region, "staff laptops").
    location: Mapped[str] = mapped_column(String(300), default="")
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), default=None)
    description: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AssetDependency(Base):
    """asset depends on depends_on: an outage or compromise of the latter reaches the former."""

    __tablename__ = "asset_dependency"

    asset_id: Mapped[int] = mapped_column(ForeignKey("asset.id", ondelete="CASCADE"), primary_key=True)
    depends_on_id: Mapped[int] = mapped_column(ForeignKey("asset.id", ondelete="CASCADE"), primary_key=True)
