"""Input shapes for the inventory registers, shared by the API, CSV import and pages.

References to other records are by id here; CSV import resolves emails and
external ids to ids before building these.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from portcullis.core.lei import lei_problem
from portcullis.inventory.models import (
    AssetType,
    Criticality,
    Level,
    PersonKind,
    PersonStatus,
    SiteKind,
    ZoneKind,
)

Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
Required = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)
]


def _check_lei(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().upper()
    problem = lei_problem(value)
    if problem:
        raise ValueError(f"LEI {value!r} is not valid: {problem}")
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class OrganisationIn(_In):
    legal_name: Required
    lei: str | None = None
    competent_authority: Text = ""
    country: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^([A-Z]{2})?$")] = ""
    staff_count: int = Field(ge=0, le=10_000_000)
    risk_profile: Level = Level.MEDIUM
    complexity: Level = Level.MEDIUM

    _lei = field_validator("lei")(_check_lei)

    @field_validator("country", mode="before")
    @classmethod
    def _upper_country(cls, value: object) -> object:
        # Pattern constraints run before to_upper, so "lu" must be raised first.
        return value.upper() if isinstance(value, str) else value


class OverrideIn(_In):
    key: Required
    value: int = Field(ge=0)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=2000)]


class PersonIn(_In):
    external_id: ExternalId
    email: Email
    full_name: Required
    kind: PersonKind = PersonKind.EMPLOYEE
    department: Text = ""
    job_title: Text = ""
    manager_id: int | None = None
    status: PersonStatus = PersonStatus.JOINER
    start_date: date | None = None
    end_date: date | None = None
    key_function_holder: bool = False
    mfa_enrolled: bool = False
    idp_id: str | None = None
    badge_id: str | None = None

    @model_validator(mode="after")
    def _dates(self) -> PersonIn:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.status == PersonStatus.LEAVER and self.end_date is None:
            raise ValueError("a leaver needs an end_date")
        return self


class SiteIn(_In):
    external_id: ExternalId
    name: Required
    kind: SiteKind
    address: Text = ""
    owner_id: int | None = None


class ZoneIn(_In):
    external_id: ExternalId
    site_id: int
    name: Required
    kind: ZoneKind = ZoneKind.OTHER
    criticality: Criticality
    owner_id: int | None = None


class ProviderIn(_In):
    external_id: ExternalId
    name: Required
    lei: str | None = None
    services: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] = ""
    criticality: Criticality
    contract_start: date | None = None
    contract_end: date | None = None
    exit_plan: Annotated[str, StringConstraints(strip_whitespace=True, max_length=8000)] = ""
    contact_email: Email | None = None

    _lei = field_validator("lei")(_check_lei)

    @model_validator(mode="after")
    def _dates(self) -> ProviderIn:
        if self.contract_start and self.contract_end and self.contract_end < self.contract_start:
            raise ValueError("contract_end is before contract_start")
        return self


class AssetIn(_In):
    external_id: ExternalId
    name: Required
    type: AssetType
    criticality: Criticality
    owner_id: int | None = None
    business_function: Text = ""
    zone_id: int | None = None
    location: Text = ""
    provider_id: int | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=8000)] = ""
    tags: list[str] = Field(default_factory=list)
    depends_on: list[int] = Field(default_factory=list, description="ids of assets this one depends on")
