"""REST routes for the inventory registers and the organisation profile (§11, §17 i, §18)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from portcullis.accounts.deps import Actor, require
from portcullis.core.errors import NotFound
from portcullis.core.http import After, Limit, Page, page_of
from portcullis.core.permissions import Permission
from portcullis.inventory import service
from portcullis.inventory.models import AssetType, Criticality, PersonKind, PersonStatus, SiteKind
from portcullis.inventory.schemas import AssetIn, OrganisationIn, OverrideIn, PersonIn, ProviderIn, SiteIn, ZoneIn

router = APIRouter(tags=["inventory"])

Reader = Annotated[Actor, Depends(require(Permission.INVENTORY_READ))]
Writer = Annotated[Actor, Depends(require(Permission.INVENTORY_WRITE))]
OrgWriter = Annotated[Actor, Depends(require(Permission.ORGANISATION_WRITE))]


class OrganisationOut(BaseModel):
    id: int
    legal_name: str
    lei: str | None
    competent_authority: str
    country: str
    staff_count: int
    risk_profile: str
    complexity: str
    points: int
    tier: str
    updated_at: datetime


class DefaultOut(BaseModel):
    key: str
    value: int
    default: int
    tier: str
    overridden: bool
    reason: str | None
    set_by: str | None
    set_at: datetime | None


class PersonOut(BaseModel):
    id: int
    external_id: str
    email: str
    full_name: str
    kind: str
    department: str
    job_title: str
    manager_id: int | None
    manager_email: str | None
    status: str
    start_date: date | None
    end_date: date | None
    status_changed_at: datetime
    key_function_holder: bool
    mfa_enrolled: bool
    idp_id: str | None
    badge_id: str | None
    created_at: datetime
    updated_at: datetime


class SiteOut(BaseModel):
    id: int
    external_id: str
    name: str
    kind: str
    address: str
    owner_id: int | None
    owner_email: str | None
    created_at: datetime
    updated_at: datetime


class ZoneOut(BaseModel):
    id: int
    external_id: str
    site_id: int
    site_external_id: str | None
    name: str
    kind: str
    criticality: str
    owner_id: int | None
    owner_email: str | None
    created_at: datetime
    updated_at: datetime


class ProviderOut(BaseModel):
    id: int
    external_id: str
    name: str
    lei: str | None
    services: str
    criticality: str
    contract_start: date | None
    contract_end: date | None
    exit_plan: str
    contact_email: str | None
    created_at: datetime
    updated_at: datetime


class AssetOut(BaseModel):
    id: int
    external_id: str
    name: str
    type: str
    criticality: str
    owner_id: int | None
    owner_email: str | None
    business_function: str
    zone_id: int | None
    zone_external_id: str | None
    location: str
    provider_id: int | None
    provider_external_id: str | None
    description: str
    tags: list[str]
    depends_on: list[int]
    created_at: datetime
    updated_at: datetime






def _value(e: object) -> str | None:
    return None if e is None else str(getattr(e, "value", e))


# --- organisation ------------------------------------------------------------------


@router.get("/organisation", response_model=OrganisationOut)
def get_organisation(actor: Reader) -> OrganisationOut:
    with actor.work() as ctx:
        org = service.get_organisation(ctx)
        if org is None:
            raise NotFound("No organisation profile yet; PUT /organisation to create it")
        return OrganisationOut.model_validate(service.organisation_view(org))


@router.put("/organisation", response_model=OrganisationOut)
def put_organisation(body: OrganisationIn, actor: OrgWriter) -> OrganisationOut:
    with actor.work() as ctx:
        return OrganisationOut.model_validate(service.organisation_view(service.set_organisation(ctx, body)))


def _defaults(actor: Actor) -> list[DefaultOut]:
    with actor.work() as ctx:
        return [DefaultOut(key=k, **v) for k, v in service.effective_defaults(ctx).items()]


@router.get("/organisation/defaults", response_model=list[DefaultOut])
def get_defaults(actor: Reader) -> list[DefaultOut]:
    """The defaults of the proportionality tier (§11) and the firm's overrides."""
    return _defaults(actor)


@router.put("/organisation/overrides", response_model=list[DefaultOut])
def put_override(body: OverrideIn, actor: OrgWriter) -> list[DefaultOut]:
    with actor.work() as ctx:
        service.set_override(ctx, body)
    return _defaults(actor)


@router.delete("/organisation/overrides/{key}", response_model=list[DefaultOut])
def delete_override(
    key: str, reason: Annotated[str, Query(min_length=10, max_length=2000)], actor: OrgWriter
) -> list[DefaultOut]:
    with actor.work() as ctx:
        service.clear_override(ctx, key, reason)
    return _defaults(actor)


# --- people --------------------------------------------------------------------------


@router.get("/people", response_model=Page[PersonOut])
def list_people(
    actor: Reader,
    status: PersonStatus | None = None,
    department: str | None = None,
    kind: PersonKind | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[PersonOut]:
    with actor.work() as ctx:
        result = service.list_people(
            ctx, status=_value(status), department=department, kind=_value(kind), q=q, after=after, limit=limit
        )
        return page_of(PersonOut, service.person_view, result)


@router.post("/people", response_model=PersonOut, status_code=201)
def create_person(body: PersonIn, actor: Writer) -> PersonOut:
    with actor.work() as ctx:
        return PersonOut.model_validate(service.person_view(service.create_person(ctx, body)))


@router.get("/people/{person_id}", response_model=PersonOut)
def get_person(person_id: int, actor: Reader) -> PersonOut:
    with actor.work() as ctx:
        return PersonOut.model_validate(service.person_view(service.get_person(ctx, person_id)))


@router.put("/people/{person_id}", response_model=PersonOut)
def update_person(person_id: int, body: PersonIn, actor: Writer) -> PersonOut:
    with actor.work() as ctx:
        return PersonOut.model_validate(service.person_view(service.update_person(ctx, person_id, body)))


# --- sites and zones ---------------------------------------------------------------------


@router.get("/sites", response_model=Page[SiteOut])
def list_sites(
    actor: Reader, kind: SiteKind | None = None, q: str | None = None, after: After = None, limit: Limit = 50
) -> Page[SiteOut]:
    with actor.work() as ctx:
        result = service.list_sites(ctx, kind=_value(kind), q=q, after=after, limit=limit)
        return page_of(SiteOut, service.site_view, result)


@router.post("/sites", response_model=SiteOut, status_code=201)
def create_site(body: SiteIn, actor: Writer) -> SiteOut:
    with actor.work() as ctx:
        return SiteOut.model_validate(service.site_view(service.create_site(ctx, body)))


@router.get("/sites/{site_id}", response_model=SiteOut)
def get_site(site_id: int, actor: Reader) -> SiteOut:
    with actor.work() as ctx:
        return SiteOut.model_validate(service.site_view(service.get_site(ctx, site_id)))


@router.put("/sites/{site_id}", response_model=SiteOut)
def update_site(site_id: int, body: SiteIn, actor: Writer) -> SiteOut:
    with actor.work() as ctx:
        return SiteOut.model_validate(service.site_view(service.update_site(ctx, site_id, body)))


@router.get("/zones", response_model=Page[ZoneOut])
def list_zones(
    actor: Reader,
    site_id: int | None = None,
    criticality: Criticality | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[ZoneOut]:
    with actor.work() as ctx:
        result = service.list_zones(
            ctx, site_id=site_id, criticality=_value(criticality), q=q, after=after, limit=limit
        )
        return page_of(ZoneOut, service.zone_view, result)


@router.post("/zones", response_model=ZoneOut, status_code=201)
def create_zone(body: ZoneIn, actor: Writer) -> ZoneOut:
    with actor.work() as ctx:
        return ZoneOut.model_validate(service.zone_view(service.create_zone(ctx, body)))


@router.get("/zones/{zone_id}", response_model=ZoneOut)
def get_zone(zone_id: int, actor: Reader) -> ZoneOut:
    with actor.work() as ctx:
        return ZoneOut.model_validate(service.zone_view(service.get_zone(ctx, zone_id)))


@router.put("/zones/{zone_id}", response_model=ZoneOut)
def update_zone(zone_id: int, body: ZoneIn, actor: Writer) -> ZoneOut:
    with actor.work() as ctx:
        return ZoneOut.model_validate(service.zone_view(service.update_zone(ctx, zone_id, body)))


# --- providers -----------------------------------------------------------------------------


@router.get("/providers", response_model=Page[ProviderOut])
def list_providers(
    actor: Reader,
    criticality: Criticality | None = None,
    contract_end_before: date | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[ProviderOut]:
    with actor.work() as ctx:
        result = service.list_providers(
            ctx,
            criticality=_value(criticality),
            contract_end_before=contract_end_before,
            q=q,
            after=after,
            limit=limit,
        )
        return page_of(ProviderOut, service.provider_view, result)


@router.post("/providers", response_model=ProviderOut, status_code=201)
def create_provider(body: ProviderIn, actor: Writer) -> ProviderOut:
    with actor.work() as ctx:
        return ProviderOut.model_validate(service.provider_view(service.create_provider(ctx, body)))


@router.get("/providers/{provider_id}", response_model=ProviderOut)
def get_provider(provider_id: int, actor: Reader) -> ProviderOut:
    with actor.work() as ctx:
        return ProviderOut.model_validate(service.provider_view(service.get_provider(ctx, provider_id)))


@router.put("/providers/{provider_id}", response_model=ProviderOut)
def update_provider(provider_id: int, body: ProviderIn, actor: Writer) -> ProviderOut:
    with actor.work() as ctx:
        return ProviderOut.model_validate(service.provider_view(service.update_provider(ctx, provider_id, body)))


# --- assets ------------------------------------------------------------------------------------


@router.get("/assets", response_model=Page[AssetOut])
def list_assets(
    actor: Reader,
    type: AssetType | None = None,
    criticality: Criticality | None = None,
    owner_id: int | None = None,
    provider_id: int | None = None,
    zone_id: int | None = None,
    q: str | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[AssetOut]:
    with actor.work() as ctx:
        result = service.list_assets(
            ctx,
            type=_value(type),
            criticality=_value(criticality),
            owner_id=owner_id,
            provider_id=provider_id,
            zone_id=zone_id,
            q=q,
            after=after,
            limit=limit,
        )
        return page_of(AssetOut, service.asset_view, result)


@router.post("/assets", response_model=AssetOut, status_code=201)
def create_asset(body: AssetIn, actor: Writer) -> AssetOut:
    with actor.work() as ctx:
        return AssetOut.model_validate(service.asset_view(service.create_asset(ctx, body)))


@router.get("/assets/{asset_id}", response_model=AssetOut)
def get_asset(asset_id: int, actor: Reader) -> AssetOut:
    with actor.work() as ctx:
        return AssetOut.model_validate(service.asset_view(service.get_asset(ctx, asset_id)))


@router.put("/assets/{asset_id}", response_model=AssetOut)
def update_asset(asset_id: int, body: AssetIn, actor: Writer) -> AssetOut:
    with actor.work() as ctx:
        return AssetOut.model_validate(service.asset_view(service.update_asset(ctx, asset_id, body)))
