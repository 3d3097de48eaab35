"""Inventory services: the only code that changes the registers.

CONTRACT (other modules are written against these signatures; keep them):
every writer takes a Context, calls ctx.require(Permission.INVENTORY_WRITE) (or
ORGANISATION_WRITE for the profile and overrides), validates references (an
unknown owner/manager/site/zone/provider id -> ValidationFailed naming the field),
refuses duplicates of external_id/email/idp_id/badge_id with Conflict naming the
field and value, writes, and calls ledger.service.record_change with the fields
before and after in the same transaction. Readers take a Context and require
INVENTORY_READ. `*_view` functions return plain dicts safe to show and export.
"""

from __future__ import annotations

from typing import Any

from portcullis.core.context import Context
from portcullis.inventory.models import Asset, Organisation, Person, Provider, Site, Zone
from portcullis.inventory.schemas import (
    AssetIn,
    OrganisationIn,
    OverrideIn,
    PersonIn,
    ProviderIn,
    SiteIn,
    ZoneIn,
)

# --- organisation profile and proportionality (§11) -----------------------


def get_organisation(ctx: Context) -> Organisation | None:
    raise NotImplementedError


def set_organisation(ctx: Context, data: OrganisationIn) -> Organisation:
    raise NotImplementedError


def effective_defaults(ctx: Context) -> dict[str, dict[str, Any]]:
    """{key: {"value", "default", "tier", "overridden", "reason", "set_by", "set_at"}}."""
    raise NotImplementedError


def set_override(ctx: Context, data: OverrideIn) -> None:
    raise NotImplementedError


def clear_override(ctx: Context, key: str, reason: str) -> None:
    raise NotImplementedError


# --- people ------------------------------------------------------------------


def create_person(ctx: Context, data: PersonIn) -> Person:
    raise NotImplementedError


def update_person(ctx: Context, person_id: int, data: PersonIn) -> Person:
    raise NotImplementedError


def get_person(ctx: Context, person_id: int) -> Person:
    raise NotImplementedError


def person_view(p: Person) -> dict[str, Any]:
    raise NotImplementedError


# --- sites and zones ------------------------------------------------------------


def create_site(ctx: Context, data: SiteIn) -> Site:
    raise NotImplementedError


def update_site(ctx: Context, site_id: int, data: SiteIn) -> Site:
    raise NotImplementedError


def create_zone(ctx: Context, data: ZoneIn) -> Zone:
    raise NotImplementedError


def update_zone(ctx: Context, zone_id: int, data: ZoneIn) -> Zone:
    raise NotImplementedError


# --- providers and assets ----------------------------------------------------------


def create_provider(ctx: Context, data: ProviderIn) -> Provider:
    raise NotImplementedError


def update_provider(ctx: Context, provider_id: int, data: ProviderIn) -> Provider:
    raise NotImplementedError


def create_asset(ctx: Context, data: AssetIn) -> Asset:
    raise NotImplementedError


def update_asset(ctx: Context, asset_id: int, data: AssetIn) -> Asset:
    raise NotImplementedError
