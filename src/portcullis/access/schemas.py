"""Input shapes for access governance, shared by the API, CSV and pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from portcullis.access.models import ApproverKind

Key = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Course = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class EntitlementIn(_In):
    key: Key
    name: Name
    description: Text = ""
    asset_id: int | None = None
    zone_id: int | None = None
    privileged: bool = False
    remote_admin: bool = False
    required_training: list[Course] = Field(default_factory=list)
    max_duration_days: int | None = Field(default=None, ge=1, le=3650)
    approvers: list[ApproverKind] = Field(default_factory=lambda: [ApproverKind.OWNER])
    min_approvals: int | None = Field(default=None, ge=1, le=10)
    scope: Text = ""
    active: bool = True

    @model_validator(mode="after")
    def _one_target(self) -> EntitlementIn:
        if (self.asset_id is None) == (self.zone_id is None):
            raise ValueError("an entitlement is on exactly one ICT asset (asset_id) or one zone (zone_id)")
        if not self.approvers:
            raise ValueError("name at least one kind of approver")
        return self


class AccessRoleIn(_In):
    key: Key
    name: Name
    description: Text = ""
    departments: list[Name] = Field(default_factory=list)
    person_kinds: list[Name] = Field(default_factory=list)
    required_training: list[Course] = Field(default_factory=list)
    entitlement_ids: list[int] = Field(default_factory=list)


class SodRuleIn(_In):
    name: Name
    left_entitlement_id: int | None = None
    left_role_id: int | None = None
    right_entitlement_id: int | None = None
    right_role_id: int | None = None
    reason: Text = ""

    @model_validator(mode="after")
    def _sides(self) -> SodRuleIn:
        if (self.left_entitlement_id is None) == (self.left_role_id is None):
            raise ValueError("the left side is one entitlement or one role")
        if (self.right_entitlement_id is None) == (self.right_role_id is None):
            raise ValueError("the right side is one entitlement or one role")
        return self


class TrainingRecordIn(_In):
    person_id: int
    course: Course
    completed_at: datetime
    expires_at: datetime | None = None


class RequestIn(_In):
    subject_id: int = Field(description="the person who would hold the access")
    entitlement_id: int | None = None
    role_id: int | None = None
    justification: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=4000)]
    duration_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _what(self) -> RequestIn:
        if (self.entitlement_id is None) == (self.role_id is None):
            raise ValueError("ask for one entitlement or one role")
        return self


class DecisionIn(_In):
    approve: bool
    comment: Text = ""


class GroupMappingIn(_In):
    system: Name
    group_name: Name
    entitlement_id: int
