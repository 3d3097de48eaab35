"""What each register page shows and asks for. Presentation only: the rules are in the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from portcullis.inventory.models import AssetType, Criticality, Level, PersonKind, PersonStatus, SiteKind, ZoneKind
from portcullis.inventory.schemas import AssetIn, OrganisationIn, OverrideIn, PersonIn, ProviderIn, SiteIn, ZoneIn


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text, email, textarea, choice, date, bool, ref, refs, tags
    required: bool = False
    choices: tuple[str, ...] = ()
    ref: str | None = None  # slug of the register a ref points into
    help: str = ""
    # Optional text the schema types as `str | None`: an empty box means "none".
    nullable: bool = False


def choice(name: str, label: str, enum: type[StrEnum], required: bool = False, help: str = "") -> Field:
    return Field(name, label, "choice", required, tuple(e.value for e in enum), help=help)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    link: bool = False  # the cell links to the record's page
    ref: tuple[str, str] | None = None  # (register slug, id key): the cell links to another record
    badge: bool = False


@dataclass(frozen=True)
class Register:
    slug: str
    title: str
    singular: str
    noun: str  # the service functions' suffix: list_<plural>, create_<noun>
    plural: str
    schema: type[BaseModel]
    fields: tuple[Field, ...]
    columns: tuple[Column, ...]
    filters: tuple[Field, ...]
    section: str
    label_attrs: tuple[str, ...] = ("name",)
    intro: str = ""
    tabs: tuple[tuple[str, str], ...] = field(default=())

    def label_of(self, obj: Any) -> str:
        parts = [str(getattr(obj, a)) for a in self.label_attrs if getattr(obj, a, None)]
        return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


CRIT = choice("criticality", "Criticality", Criticality, required=True)
Q = Field("q", "Search")
PREMISES_TABS = (("Sites", "/sites"), ("Zones", "/zones"))

PEOPLE = Register(
    slug="people",
    title="People",
    singular="person",
    noun="person",
    plural="people",
    schema=PersonIn,
    section="people",
    label_attrs=("full_name", "email"),
    intro="Employees, contractors and service accounts whose access Portcullis governs (§19, §21).",
    fields=(
        Field("external_id", "External id", required=True, help="The HR system's id; imports match on it."),
        Field("full_name", "Full name", required=True),
        Field("email", "Email", "email", required=True),
        choice("kind", "Kind", PersonKind),
        Field("department", "Department"),
        Field("job_title", "Job title"),
        Field("manager_id", "Manager", "ref", ref="people"),
        choice("status", "Status", PersonStatus),
        Field("start_date", "Start date", "date"),
        Field("end_date", "End date", "date", help="Required for a leaver."),
        Field("key_function_holder", "Holds a key function", "bool"),
        Field("mfa_enrolled", "MFA enrolled at the identity provider", "bool"),
        Field("idp_id", "Identity provider id", nullable=True),
        Field("badge_id", "Badge id", nullable=True),
    ),
    columns=(
        Column("full_name", "Name", link=True),
        Column("email", "Email"),
        Column("department", "Department"),
        Column("kind", "Kind"),
        Column("status", "Status", badge=True),
        Column("manager_email", "Manager", ref=("people", "manager_id")),
    ),
    filters=(
        Q,
        choice("status", "Status", PersonStatus),
        choice("kind", "Kind", PersonKind),
        Field("department", "Department"),
    ),
)

SITES = Register(
    slug="sites",
    title="Premises: sites",
    singular="site",
    noun="site",
    plural="sites",
    schema=SiteIn,
    section="premises",
    label_attrs=("name", "external_id"),
    intro="Offices and data centres where the firm's ICT assets and records are (§18).",
    tabs=PREMISES_TABS,
    fields=(
        Field("external_id", "External id", required=True),
        Field("name", "Name", required=True),
        choice("kind", "Kind", SiteKind, required=True),
        Field("address", "Address", "textarea"),
        Field("owner_id", "Owner", "ref", ref="people"),
    ),
    columns=(
        Column("name", "Name", link=True),
        Column("external_id", "External id"),
        Column("kind", "Kind"),
        Column("address", "Address"),
        Column("owner_email", "Owner", ref=("people", "owner_id")),
    ),
    filters=(Q, choice("kind", "Kind", SiteKind)),
)

ZONES = Register(
    slug="zones",
    title="Premises: zones",
    singular="zone",
    noun="zone",
    plural="zones",
    schema=ZoneIn,
    section="premises",
    label_attrs=("name", "external_id"),
    intro="Areas within a site with their own physical access: server rooms, safe rooms, cages (§18-20).",
    tabs=PREMISES_TABS,
    fields=(
        Field("external_id", "External id", required=True),
        Field("site_id", "Site", "ref", required=True, ref="sites"),
        Field("name", "Name", required=True),
        choice("kind", "Kind", ZoneKind),
        CRIT,
        Field("owner_id", "Owner", "ref", ref="people"),
    ),
    columns=(
        Column("name", "Name", link=True),
        Column("external_id", "External id"),
        Column("site_external_id", "Site", ref=("sites", "site_id")),
        Column("kind", "Kind"),
        Column("criticality", "Criticality", badge=True),
        Column("owner_email", "Owner", ref=("people", "owner_id")),
    ),
    filters=(Q, Field("site_id", "Site", "ref", ref="sites"), choice("criticality", "Criticality", Criticality)),
)

PROVIDERS = Register(
    slug="providers",
    title="ICT third-party providers",
    singular="provider",
    noun="provider",
    plural="providers",
    schema=ProviderIn,
    section="providers",
    label_attrs=("name", "external_id"),
    intro="ICT third-party service providers, their contracts and exit plans (§17 i-ii).",
    fields=(
        Field("external_id", "External id", required=True),
        Field("name", "Name", required=True),
        Field("lei", "LEI", nullable=True, help="20 characters; the check digits are verified."),
        CRIT,
        Field("services", "Services provided", "textarea"),
        Field("contract_start", "Contract start", "date"),
        Field("contract_end", "Contract end", "date"),
        Field("exit_plan", "Exit plan", "textarea"),
        Field("contact_email", "Contact email", "email", nullable=True),
    ),
    columns=(
        Column("name", "Name", link=True),
        Column("external_id", "External id"),
        Column("criticality", "Criticality", badge=True),
        Column("contract_end", "Contract end"),
        Column("contact_email", "Contact"),
    ),
    filters=(Q, choice("criticality", "Criticality", Criticality)),
)

ASSETS = Register(
    slug="assets",
    title="ICT assets",
    singular="asset",
    noun="asset",
    plural="assets",
    schema=AssetIn,
    section="assets",
    label_attrs=("name", "external_id"),
    intro="ICT assets with their criticality, owner and location (§17 i).",
    fields=(
        Field("external_id", "External id", required=True),
        Field("name", "Name", required=True),
        choice("type", "Type", AssetType, required=True),
        CRIT,
        Field("owner_id", "Owner", "ref", ref="people"),
        Field("business_function", "Business function"),
        Field("zone_id", "Zone", "ref", ref="zones"),
        Field("location", "Location", help="Where it is when not in one of the firm's zones, e.g. a cloud region."),
        Field("provider_id", "Provider", "ref", ref="providers"),
        Field("description", "Description", "textarea"),
        Field("tags", "Tags", "tags", help="Separated by commas."),
        Field("depends_on", "Depends on", "refs", ref="assets", help="Assets this one cannot work without."),
    ),
    columns=(
        Column("name", "Name", link=True),
        Column("external_id", "External id"),
        Column("type", "Type"),
        Column("criticality", "Criticality", badge=True),
        Column("owner_email", "Owner", ref=("people", "owner_id")),
        Column("zone_external_id", "Zone", ref=("zones", "zone_id")),
        Column("provider_external_id", "Provider", ref=("providers", "provider_id")),
    ),
    filters=(
        Q,
        choice("type", "Type", AssetType),
        choice("criticality", "Criticality", Criticality),
        Field("provider_id", "Provider", "ref", ref="providers"),
    ),
)

REGISTERS: dict[str, Register] = {r.slug: r for r in (PEOPLE, ASSETS, SITES, ZONES, PROVIDERS)}

# Not registers, but forms parsed the same way.
ORGANISATION = Register(
    slug="organisation",
    title="Organisation",
    singular="organisation profile",
    noun="organisation",
    plural="organisation",
    schema=OrganisationIn,
    section="organisation",
    fields=(
        Field("legal_name", "Legal name", required=True),
        Field("lei", "LEI", nullable=True, help="Legal Entity Identifier, 20 characters; check digits verified."),
        Field("competent_authority", "Competent authority"),
        Field("country", "Country", help="Two-letter ISO code, e.g. DE."),
        Field("staff_count", "Staff count", required=True),
        choice("risk_profile", "Risk profile", Level, required=True),
        choice("complexity", "Complexity of activities", Level, required=True),
    ),
    columns=(),
    filters=(),
)

OVERRIDE = Register(
    slug="organisation/overrides",
    title="Override",
    singular="override",
    noun="override",
    plural="overrides",
    schema=OverrideIn,
    section="organisation",
    fields=(
        Field("key", "Default", required=True),
        Field("value", "Value", required=True),
        Field("reason", "Reason", "textarea", required=True, help="Why the firm departs from the tier's default."),
    ),
    columns=(),
    filters=(),
)
