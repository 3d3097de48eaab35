"""Access governance tables (§19, §21, §22, §24, §25).

An entitlement is one right on one ICT asset (logical) or zone (physical). People
get entitlements through grants: ad hoc, time-bound grants from approved
requests, or standing grants from a role. Findings record what the policy checks
and the reconciliation found wrong, each with an owner and a due date.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from portcullis.core.db import Base


class TargetKind(StrEnum):
    ASSET = "asset"  # logical access (§21)
    ZONE = "zone"  # physical access (§19)


class ApproverKind(StrEnum):
    OWNER = "owner"  # of the asset or zone
    MANAGER = "manager"  # of the person who would hold the access
    SECURITY_OFFICER = "security_officer"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # not decided in time
    CANCELLED = "cancelled"


class GrantKind(StrEnum):
    TIME_BOUND = "time_bound"  # ad hoc, from a request (§19 "on an ad-hoc basis")
    STANDING = "standing"  # from a role


class GrantStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class FindingStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Entitlement(Base):
    __tablename__ = "entitlement"
    __table_args__ = (
        CheckConstraint(
            "(asset_id IS NOT NULL AND zone_id IS NULL) OR (asset_id IS NULL AND zone_id IS NOT NULL)",
            name="one_target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("asset.id"), default=None)
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zone.id"), default=None)
    privileged: Mapped[bool] = mapped_column(default=False)
    remote_admin: Mapped[bool] = mapped_column(default=False)
    # Training course codes a holder must have, current (§19, §21 "appropriately trained").
    required_training: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_duration_days: Mapped[int | None] = mapped_column(default=None)
    # Who must approve, and how many distinct approvers; None: the tier's default
    # for privileged access, else 1.
    approvers: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_approvals: Mapped[int | None] = mapped_column(default=None)
    # For service accounts and applications: the minimum the service needs (§21 last sentence).
    scope: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AccessRole(Base):
    """A bundle of entitlements held standing by those eligible (role-based access, §22)."""

    __tablename__ = "access_role"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Eligibility: empty lists mean "any".
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    person_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    required_training: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The identity provider's own identifier for the role (SCIM Group externalId), while it names one.
    external_id: Mapped[str | None] = mapped_column(String(300), default=None, index=True)
    # A retired role is granted no more and is out of the identity provider's view; its history stays.
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RoleMembership(Base):
    """A person holds a role from `since` until `ended_at`: the reason their standing grants exist (§22)."""

    __tablename__ = "role_membership"
    __table_args__ = (
        # At most one open membership per person and role, whatever races the services lose.
        Index(
            "uq_role_membership_open",
            "person_id",
            "role_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_role_membership_role", "role_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    role_id: Mapped[int] = mapped_column(ForeignKey("access_role.id"))
    # Where the membership came from: "scim" (the identity provider) or "manual" (an access admin).
    source: Mapped[str] = mapped_column(String(20), default="manual")
    since: Mapped[datetime]
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str] = mapped_column(Text, default="")


class RoleEntitlement(Base):
    __tablename__ = "role_entitlement"

    role_id: Mapped[int] = mapped_column(ForeignKey("access_role.id", ondelete="CASCADE"), primary_key=True)
    entitlement_id: Mapped[int] = mapped_column(ForeignKey("entitlement.id"), primary_key=True)


class SodRule(Base):
    """Separation of duties: one person must not hold both sides (entitlements or roles)."""

    __tablename__ = "sod_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    left_entitlement_id: Mapped[int | None] = mapped_column(ForeignKey("entitlement.id"), default=None)
    left_role_id: Mapped[int | None] = mapped_column(ForeignKey("access_role.id"), default=None)
    right_entitlement_id: Mapped[int | None] = mapped_column(ForeignKey("entitlement.id"), default=None)
    right_role_id: Mapped[int | None] = mapped_column(ForeignKey("access_role.id"), default=None)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class AccessRequest(Base):
    __tablename__ = "access_request"
    __table_args__ = (Index("ix_access_request_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Who asked (a person; may differ from the subject) and for whom.
    requester_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    subject_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    entitlement_id: Mapped[int | None] = mapped_column(ForeignKey("entitlement.id"), default=None)
    role_id: Mapped[int | None] = mapped_column(ForeignKey("access_role.id"), default=None)
    justification: Mapped[str] = mapped_column(Text)
    duration_days: Mapped[int | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(20), default=RequestStatus.PENDING.value)
    # Approvals needed and from whom, fixed when the request is made.
    required_approvals: Mapped[int] = mapped_column(default=1)
    approver_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    # The decision deadline; separate from the grant's duration, which starts at approval.
    decide_by: Mapped[datetime]
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    # Bumped on every decision: concurrent approvals race on it, and only one wins.
    version: Mapped[int] = mapped_column(default=0)


class Approval(Base):
    __tablename__ = "approval"
    __table_args__ = (UniqueConstraint("request_id", "approver_id", name="uq_approval_request_approver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_request.id"), index=True)
    approver_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    # Which approver kind this decision counts for (owner, manager, security_officer).
    acting_as: Mapped[str] = mapped_column(String(30))
    approve: Mapped[bool]
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class Grant(Base):
    __tablename__ = "access_grant"
    __table_args__ = (
        Index("ix_access_grant_person_status", "person_id", "status"),
        # A request makes at most one grant per entitlement (a role request makes one per entitlement of
        # the role): the last line of defence against concurrent approvals granting twice.
        UniqueConstraint("request_id", "entitlement_id", name="uq_access_grant_request_entitlement"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    entitlement_id: Mapped[int] = mapped_column(ForeignKey("entitlement.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("access_request.id"), default=None, index=True)
    role_id: Mapped[int | None] = mapped_column(ForeignKey("access_role.id"), default=None)
    status: Mapped[str] = mapped_column(String(20), default=GrantStatus.ACTIVE.value)
    starts_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str] = mapped_column(Text, default="")
    # Set by reconciliation when the access is seen in the target system.
    provisioned_at: Mapped[datetime | None] = mapped_column(default=None)
    # Set from access events (§22 least privilege, reviews).
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class Finding(Base):
    """Something wrong, found by a check: who must act on it, and by when."""

    __tablename__ = "finding"
    __table_args__ = (
        # One open finding per thing wrong: checks run daily and must not pile up duplicates.
        Index("ix_finding_open_key", "key", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable identity of what is wrong, e.g. "training_missing:grant:42:AML-101".
    key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(50), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("access_grant.id"), default=None)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("target_account.id"), default=None)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    due_on: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default=FindingStatus.OPEN.value)
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution: Mapped[str] = mapped_column(Text, default="")


class TargetAccount(Base):
    """An account that really exists in a target system (LDAP, an export), for reconciliation (§21, §25)."""

    __tablename__ = "target_account"
    __table_args__ = (UniqueConstraint("system", "account_name", name="uq_target_account_system_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(100))
    account_name: Mapped[str] = mapped_column(String(300))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), default=None)
    active: Mapped[bool] = mapped_column(default=True)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class GroupMapping(Base):
    """Membership of `group` in `system` is what entitlement `entitlement_id` looks like there."""

    __tablename__ = "group_mapping"
    __table_args__ = (UniqueConstraint("system", "group_name", name="uq_group_mapping_system_group"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(100))
    group_name: Mapped[str] = mapped_column(String(300))
    entitlement_id: Mapped[int] = mapped_column(ForeignKey("entitlement.id"))


class TrainingRecord(Base):
    """A person's completion of a training course; lapses at expires_at (§13, §19, §21)."""

    __tablename__ = "training_record"
    __table_args__ = (Index("ix_training_record_person_course", "person_id", "course"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    course: Mapped[str] = mapped_column(String(100))
    completed_at: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
