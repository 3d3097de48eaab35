"""Inventory services: the only code that changes the registers.

CONTRACT (other modules are written against these signatures; keep them):
every writer takes a Context, calls ctx.require(Permission.INVENTORY_WRITE) (or
ORGANISATION_WRITE for the profile and overrides), validates references (an
unknown owner/manager/site/zone/provider id -> ValidationFailed naming the field),
refuses duplicates of external_id/email/idp_id/badge_id with Conflict naming the
field and value, writes, and calls ledger.service.record_change with the fields
before and after in the same transaction. Readers take a Context and require
INVENTORY_READ. `*_view` functions return plain dicts safe to show and export.

Every check runs before anything is added to the session, so a refused write
leaves neither a row nor an audit record. An update that changes nothing records
nothing, which keeps a repeated import from filling the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, ErrorCollector, FieldError, NotFound
from portcullis.core.http import paginate
from portcullis.core.permissions import Permission
from portcullis.inventory import proportionality
from portcullis.inventory.models import (
    Asset,
    AssetDependency,
    Criticality,
    Organisation,
    Person,
    Provider,
    Site,
    Zone,
)
from portcullis.inventory.proportionality import default_value, tier_of
from portcullis.inventory.schemas import (
    AssetIn,
    OrganisationIn,
    OverrideIn,
    PersonIn,
    ProviderIn,
    SiteIn,
    ZoneIn,
)
from portcullis.inventory.views import (
    asset_view,
    organisation_view,
    person_view,
    provider_view,
    site_view,
    zone_view,
)
from portcullis.ledger.service import record_change

__all__ = [
    "asset_view",
    "default_value",
    "organisation_view",
    "person_view",
    "provider_view",
    "site_view",
    "zone_view",
]

M = TypeVar("M", Person, Site, Zone, Provider, Asset)
Rows = tuple[list[Any], int, int | None]
_VOLATILE = ("updated_at",)


def _unchanged(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return {k: v for k, v in before.items() if k not in _VOLATILE} == {
        k: v for k, v in after.items() if k not in _VOLATILE
    }


def _get(ctx: Context, model: type[M], obj_id: int, label: str) -> M:
    ctx.require(Permission.INVENTORY_READ)
    return _load(ctx, model, obj_id, label)


def _load(ctx: Context, model: type[M], obj_id: int, label: str) -> M:
    # Writers load through here: a token scoped to writing need not also read.
    obj = ctx.session.get(model, obj_id)
    if obj is None:
        raise NotFound(f"No {label} with id {obj_id}")
    return obj


def _by_external_id(ctx: Context, model: type[M], external_id: str) -> M | None:
    ctx.require(Permission.INVENTORY_READ)
    col: InstrumentedAttribute[str] = model.external_id
    return ctx.session.scalars(select(model).where(col == external_id.strip())).one_or_none()


def _check_unique(
    ctx: Context, model: type[M], label: str, values: Mapping[str, str | None], own_id: int | None
) -> None:
    """Conflict naming every identifier already held by another record.

    Checked here rather than left to the unique index, whose error text differs
    between SQLite and PostgreSQL and would abort the transaction on the latter.
    """
    errors: list[FieldError] = []
    for field, value in values.items():
        if value is None:
            continue
        col: InstrumentedAttribute[Any] = getattr(model, field)
        cond: ColumnElement[bool] = func.lower(col) == value.lower() if field == "email" else col == value
        stmt = select(model.id).where(cond)
        if own_id is not None:
            stmt = stmt.where(model.id != own_id)
        if ctx.session.scalar(stmt) is not None:
            errors.append(FieldError(field, f"{value!r} is already used by another {label}"))
    if errors:
        raise Conflict(
            f"A {label} with {', '.join(f'{e.field} {values[e.field]!r}' for e in errors)} already exists", errors
        )


def _check_ref(
    ctx: Context, errs: ErrorCollector, model: type[Any], obj_id: int | None, field: str, label: str
) -> None:
    if obj_id is not None and ctx.session.get(model, obj_id) is None:
        errs.add(field, f"no {label} with id {obj_id}")


def _q(stmt: Select[Any], q: str | None, *cols: InstrumentedAttribute[str]) -> Select[Any]:
    if not q or not q.strip():
        return stmt
    needle = q.strip().lower()
    return stmt.where(or_(*(func.lower(c).contains(needle, autoescape=True) for c in cols)))


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


# --- organisation profile and proportionality (§11) -----------------------


def get_organisation(ctx: Context) -> Organisation | None:
    ctx.require(Permission.INVENTORY_READ)
    return ctx.session.scalars(select(Organisation).order_by(Organisation.id).limit(1)).one_or_none()


def set_organisation(ctx: Context, data: OrganisationIn) -> Organisation:
    ctx.require(Permission.ORGANISATION_WRITE)
    org = ctx.session.scalars(select(Organisation).order_by(Organisation.id).limit(1)).one_or_none()
    tier_before = tier_of(org).value
    before = organisation_view(org) if org else None
    fields = data.model_dump()
    if org is None:
        org = Organisation(**fields, updated_at=ctx.now())
        ctx.session.add(org)
        action = "organisation.created"
    else:
        for k, v in fields.items():
            setattr(org, k, v)
        action = "organisation.updated"
    ctx.session.flush()
    after = organisation_view(org)
    if before is not None and _unchanged(before, after):
        return org
    org.updated_at = ctx.now()
    ctx.session.flush()
    after = organisation_view(org)
    record_change(
        ctx, action, "organisation", org.id, before, after, tier_before=tier_before, tier_after=after["tier"]
    )
    return org


def effective_defaults(ctx: Context) -> dict[str, dict[str, Any]]:
    """{key: {"value", "default", "tier", "overridden", "reason", "set_by", "set_at"}}."""
    return proportionality.effective_defaults(ctx)


def set_override(ctx: Context, data: OverrideIn) -> None:
    proportionality.set_override(ctx, data)


def clear_override(ctx: Context, key: str, reason: str) -> None:
    proportionality.clear_override(ctx, key, reason)


# --- people ------------------------------------------------------------------


def _person_fields(data: PersonIn) -> dict[str, Any]:
    fields = data.model_dump()
    fields["idp_id"] = _blank_to_none(data.idp_id)
    fields["badge_id"] = _blank_to_none(data.badge_id)
    return fields


def _check_manager(ctx: Context, errs: ErrorCollector, manager_id: int | None, person_id: int | None) -> None:
    if manager_id is None:
        return
    if person_id is not None and manager_id == person_id:
        errs.add("manager_id", "a person cannot be their own manager")
        return
    if ctx.session.get(Person, manager_id) is None:
        errs.add("manager_id", f"no person with id {manager_id}")
        return
    if person_id is None:
        return  # a new person has no reports yet, so cannot close a loop
    seen: set[int] = set()
    current: int | None = manager_id
    while current is not None and current not in seen:
        seen.add(current)
        if current == person_id:
            errs.add("manager_id", f"person {manager_id} reports (directly or not) to this person: a cycle")
            return
        current = ctx.session.scalar(select(Person.manager_id).where(Person.id == current))


def _check_person(ctx: Context, fields: Mapping[str, Any], person_id: int | None) -> None:
    errs = ErrorCollector()
    _check_manager(ctx, errs, fields["manager_id"], person_id)
    errs.raise_if_any("The person cannot be saved")
    _check_unique(
        ctx,
        Person,
        "person",
        {k: fields[k] for k in ("external_id", "email", "idp_id", "badge_id")},
        person_id,
    )


def create_person(ctx: Context, data: PersonIn) -> Person:
    ctx.require(Permission.INVENTORY_WRITE)
    fields = _person_fields(data)
    _check_person(ctx, fields, None)
    now = ctx.now()
    person = Person(**fields, status_changed_at=now, created_at=now, updated_at=now)
    ctx.session.add(person)
    ctx.session.flush()
    record_change(ctx, "person.created", "person", person.id, None, person_view(person))
    return person


def update_person(ctx: Context, person_id: int, data: PersonIn) -> Person:
    ctx.require(Permission.INVENTORY_WRITE)
    person = _load(ctx, Person, person_id, "person")
    fields = _person_fields(data)
    _check_person(ctx, fields, person.id)
    before = person_view(person)
    status_changed = person.status != fields["status"]
    for k, v in fields.items():
        setattr(person, k, v)
    ctx.session.flush()
    if _unchanged(before, person_view(person)):
        return person
    now = ctx.now()
    if status_changed:
        person.status_changed_at = now
    person.updated_at = now
    ctx.session.flush()
    after = person_view(person)
    record_change(ctx, "person.updated", "person", person.id, before, after)
    for listener in PERSON_LISTENERS:
        listener(ctx, before, after)
    return person


# Called after every change to a person, in the same transaction, with the views
# before and after. Domains above the inventory register here: access revokes a
# leaver's grants the moment they become a leaver (§19, §22 "withdrawn").
PersonListener = Callable[[Context, dict[str, Any], dict[str, Any]], None]
PERSON_LISTENERS: list[PersonListener] = []


def get_person(ctx: Context, person_id: int) -> Person:
    return _get(ctx, Person, person_id, "person")


def find_person_by_email(ctx: Context, email: str) -> Person | None:
    ctx.require(Permission.INVENTORY_READ)
    return ctx.session.scalars(
        select(Person).where(func.lower(Person.email) == email.strip().lower())
    ).one_or_none()


def find_person_by_external_id(ctx: Context, external_id: str) -> Person | None:
    return _by_external_id(ctx, Person, external_id)


def list_people(
    ctx: Context,
    *,
    status: str | None = None,
    department: str | None = None,
    kind: str | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    ctx.require(Permission.INVENTORY_READ)
    stmt = select(Person)
    if status:
        stmt = stmt.where(Person.status == status)
    if department:
        stmt = stmt.where(Person.department == department)
    if kind:
        stmt = stmt.where(Person.kind == kind)
    stmt = _q(stmt, q, Person.full_name, Person.email, Person.external_id)
    return paginate(ctx.session, stmt, Person.id, after, limit)


# --- sites and zones ------------------------------------------------------------


def _check_site(ctx: Context, data: SiteIn, site_id: int | None) -> None:
    errs = ErrorCollector()
    _check_ref(ctx, errs, Person, data.owner_id, "owner_id", "person")
    errs.raise_if_any("The site cannot be saved")
    _check_unique(ctx, Site, "site", {"external_id": data.external_id}, site_id)


def create_site(ctx: Context, data: SiteIn) -> Site:
    ctx.require(Permission.INVENTORY_WRITE)
    _check_site(ctx, data, None)
    now = ctx.now()
    site = Site(**data.model_dump(), created_at=now, updated_at=now)
    ctx.session.add(site)
    ctx.session.flush()
    record_change(ctx, "site.created", "site", site.id, None, site_view(site))
    return site


def update_site(ctx: Context, site_id: int, data: SiteIn) -> Site:
    ctx.require(Permission.INVENTORY_WRITE)
    site = _load(ctx, Site, site_id, "site")
    _check_site(ctx, data, site.id)
    return _apply(ctx, site, data.model_dump(), site_view, "site")


def get_site(ctx: Context, site_id: int) -> Site:
    return _get(ctx, Site, site_id, "site")


def find_site_by_external_id(ctx: Context, external_id: str) -> Site | None:
    return _by_external_id(ctx, Site, external_id)


def list_sites(
    ctx: Context, *, kind: str | None = None, q: str | None = None, after: int | None = None, limit: int = 50
) -> Rows:
    ctx.require(Permission.INVENTORY_READ)
    stmt = select(Site)
    if kind:
        stmt = stmt.where(Site.kind == kind)
    stmt = _q(stmt, q, Site.name, Site.external_id, Site.address)
    return paginate(ctx.session, stmt, Site.id, after, limit)


def _check_zone(ctx: Context, data: ZoneIn, zone_id: int | None) -> None:
    errs = ErrorCollector()
    _check_ref(ctx, errs, Site, data.site_id, "site_id", "site")
    _check_ref(ctx, errs, Person, data.owner_id, "owner_id", "person")
    errs.raise_if_any("The zone cannot be saved")
    _check_unique(ctx, Zone, "zone", {"external_id": data.external_id}, zone_id)


def create_zone(ctx: Context, data: ZoneIn) -> Zone:
    ctx.require(Permission.INVENTORY_WRITE)
    _check_zone(ctx, data, None)
    now = ctx.now()
    zone = Zone(**data.model_dump(), created_at=now, updated_at=now)
    ctx.session.add(zone)
    ctx.session.flush()
    record_change(ctx, "zone.created", "zone", zone.id, None, zone_view(zone))
    return zone


def update_zone(ctx: Context, zone_id: int, data: ZoneIn) -> Zone:
    ctx.require(Permission.INVENTORY_WRITE)
    zone = _load(ctx, Zone, zone_id, "zone")
    _check_zone(ctx, data, zone.id)
    return _apply(ctx, zone, data.model_dump(), zone_view, "zone")


def get_zone(ctx: Context, zone_id: int) -> Zone:
    return _get(ctx, Zone, zone_id, "zone")


def find_zone_by_external_id(ctx: Context, external_id: str) -> Zone | None:
    return _by_external_id(ctx, Zone, external_id)


def list_zones(
    ctx: Context,
    *,
    site_id: int | None = None,
    criticality: str | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    ctx.require(Permission.INVENTORY_READ)
    stmt = select(Zone)
    if site_id is not None:
        stmt = stmt.where(Zone.site_id == site_id)
    if criticality:
        stmt = stmt.where(Zone.criticality == criticality)
    stmt = _q(stmt, q, Zone.name, Zone.external_id)
    return paginate(ctx.session, stmt, Zone.id, after, limit)


# --- providers and assets ----------------------------------------------------------


def _provider_fields(data: ProviderIn) -> dict[str, Any]:
    fields = data.model_dump()
    fields["contact_email"] = data.contact_email or ""
    return fields


def create_provider(ctx: Context, data: ProviderIn) -> Provider:
    ctx.require(Permission.INVENTORY_WRITE)
    _check_unique(ctx, Provider, "provider", {"external_id": data.external_id}, None)
    now = ctx.now()
    provider = Provider(**_provider_fields(data), created_at=now, updated_at=now)
    ctx.session.add(provider)
    ctx.session.flush()
    record_change(ctx, "provider.created", "provider", provider.id, None, provider_view(provider))
    return provider


def update_provider(ctx: Context, provider_id: int, data: ProviderIn) -> Provider:
    ctx.require(Permission.INVENTORY_WRITE)
    provider = _load(ctx, Provider, provider_id, "provider")
    _check_unique(ctx, Provider, "provider", {"external_id": data.external_id}, provider.id)
    return _apply(ctx, provider, _provider_fields(data), provider_view, "provider")


def get_provider(ctx: Context, provider_id: int) -> Provider:
    return _get(ctx, Provider, provider_id, "provider")


def find_provider_by_external_id(ctx: Context, external_id: str) -> Provider | None:
    return _by_external_id(ctx, Provider, external_id)


def list_providers(
    ctx: Context,
    *,
    criticality: str | None = None,
    contract_end_before: date | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    ctx.require(Permission.INVENTORY_READ)
    stmt = select(Provider)
    if criticality:
        stmt = stmt.where(Provider.criticality == criticality)
    if contract_end_before is not None:
        stmt = stmt.where(Provider.contract_end.is_not(None), Provider.contract_end < contract_end_before)
    stmt = _q(stmt, q, Provider.name, Provider.external_id, Provider.services)
    return paginate(ctx.session, stmt, Provider.id, after, limit)


def _asset_fields(data: AssetIn) -> dict[str, Any]:
    fields = data.model_dump(exclude={"depends_on"})
    tags: list[str] = []
    for t in data.tags:
        t = t.strip()
        if t and t not in tags:
            tags.append(t)
    fields["tags"] = tags
    return fields


def _check_asset(ctx: Context, data: AssetIn, asset_id: int | None) -> list[int]:
    errs = ErrorCollector()
    _check_ref(ctx, errs, Person, data.owner_id, "owner_id", "person")
    _check_ref(ctx, errs, Zone, data.zone_id, "zone_id", "zone")
    _check_ref(ctx, errs, Provider, data.provider_id, "provider_id", "provider")
    if data.criticality == Criticality.CRITICAL.value and data.owner_id is None:
        errs.add("owner_id", "a critical asset needs an owner (§17 i)")
    depends_on = sorted(set(data.depends_on))
    for dep in depends_on:
        if asset_id is not None and dep == asset_id:
            errs.add("depends_on", "an asset cannot depend on itself")
        elif ctx.session.get(Asset, dep) is None:
            errs.add("depends_on", f"no asset with id {dep}")
    errs.raise_if_any("The asset cannot be saved")
    _check_unique(ctx, Asset, "asset", {"external_id": data.external_id}, asset_id)
    return depends_on


def _set_dependencies(ctx: Context, asset_id: int, depends_on: list[int]) -> None:
    current = {
        d.depends_on_id: d
        for d in ctx.session.scalars(select(AssetDependency).where(AssetDependency.asset_id == asset_id))
    }
    for dep_id, row in current.items():
        if dep_id not in depends_on:
            ctx.session.delete(row)
    for dep_id in depends_on:
        if dep_id not in current:
            ctx.session.add(AssetDependency(asset_id=asset_id, depends_on_id=dep_id))
    ctx.session.flush()


def create_asset(ctx: Context, data: AssetIn) -> Asset:
    ctx.require(Permission.INVENTORY_WRITE)
    depends_on = _check_asset(ctx, data, None)
    now = ctx.now()
    asset = Asset(**_asset_fields(data), created_at=now, updated_at=now)
    ctx.session.add(asset)
    ctx.session.flush()
    _set_dependencies(ctx, asset.id, depends_on)
    record_change(ctx, "asset.created", "asset", asset.id, None, asset_view(asset))
    return asset


def update_asset(ctx: Context, asset_id: int, data: AssetIn) -> Asset:
    ctx.require(Permission.INVENTORY_WRITE)
    asset = _load(ctx, Asset, asset_id, "asset")
    depends_on = _check_asset(ctx, data, asset.id)
    before = asset_view(asset)
    for k, v in _asset_fields(data).items():
        setattr(asset, k, v)
    _set_dependencies(ctx, asset.id, depends_on)
    return _finish_update(ctx, asset, before, asset_view, "asset")


def get_asset(ctx: Context, asset_id: int) -> Asset:
    return _get(ctx, Asset, asset_id, "asset")


def find_asset_by_external_id(ctx: Context, external_id: str) -> Asset | None:
    return _by_external_id(ctx, Asset, external_id)


def list_assets(
    ctx: Context,
    *,
    type: str | None = None,
    criticality: str | None = None,
    owner_id: int | None = None,
    provider_id: int | None = None,
    zone_id: int | None = None,
    q: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Rows:
    ctx.require(Permission.INVENTORY_READ)
    stmt = select(Asset)
    if type:
        stmt = stmt.where(Asset.type == type)
    if criticality:
        stmt = stmt.where(Asset.criticality == criticality)
    if owner_id is not None:
        stmt = stmt.where(Asset.owner_id == owner_id)
    if provider_id is not None:
        stmt = stmt.where(Asset.provider_id == provider_id)
    if zone_id is not None:
        stmt = stmt.where(Asset.zone_id == zone_id)
    stmt = _q(stmt, q, Asset.name, Asset.external_id, Asset.business_function)
    return paginate(ctx.session, stmt, Asset.id, after, limit)


# --- shared update path ----------------------------------------------------------


def _apply(ctx: Context, obj: M, fields: Mapping[str, Any], view: Any, label: str) -> M:
    before = view(obj)
    for k, v in fields.items():
        setattr(obj, k, v)
    return _finish_update(ctx, obj, before, view, label)


def _finish_update(ctx: Context, obj: M, before: dict[str, Any], view: Any, label: str) -> M:
    ctx.session.flush()
    if _unchanged(before, view(obj)):
        return obj
    obj.updated_at = ctx.now()
    ctx.session.flush()
    record_change(ctx, f"{label}.updated", label, obj.id, before, view(obj))
    return obj
