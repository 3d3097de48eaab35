"""Plain-dict views of the registers: what pages, the API, exports and the ledger show.

A person is named by id and email wherever they appear, so a reader of an export
or an audit record does not need the database to know who was meant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from portcullis.inventory.models import (
    Asset,
    AssetDependency,
    Organisation,
    Person,
    Provider,
    Site,
    Zone,
)
from portcullis.inventory.proportionality import points, tier_of


def _session(obj: object) -> Session:
    s = object_session(obj)
    if s is None:
        raise RuntimeError("a view needs an object attached to a session")
    return s


def _email(session: Session, person_id: int | None) -> str | None:
    if person_id is None:
        return None
    return session.scalar(select(Person.email).where(Person.id == person_id))


def organisation_view(org: Organisation) -> dict[str, Any]:
    return {
        "id": org.id,
        "legal_name": org.legal_name,
        "lei": org.lei,
        "competent_authority": org.competent_authority,
        "country": org.country,
        "staff_count": org.staff_count,
        "risk_profile": org.risk_profile,
        "complexity": org.complexity,
        "points": points(org.staff_count, org.risk_profile, org.complexity),
        "tier": tier_of(org).value,
        "updated_at": org.updated_at,
    }


def person_view(p: Person) -> dict[str, Any]:
    s = _session(p)
    return {
        "id": p.id,
        "external_id": p.external_id,
        "email": p.email,
        "full_name": p.full_name,
        "kind": p.kind,
        "department": p.department,
        "job_title": p.job_title,
        "manager_id": p.manager_id,
        "manager_email": _email(s, p.manager_id),
        "status": p.status,
        "start_date": p.start_date,
        "end_date": p.end_date,
        "status_changed_at": p.status_changed_at,
        "key_function_holder": p.key_function_holder,
        "mfa_enrolled": p.mfa_enrolled,
        "idp_id": p.idp_id,
        "badge_id": p.badge_id,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def site_view(site: Site) -> dict[str, Any]:
    s = _session(site)
    return {
        "id": site.id,
        "external_id": site.external_id,
        "name": site.name,
        "kind": site.kind,
        "address": site.address,
        "owner_id": site.owner_id,
        "owner_email": _email(s, site.owner_id),
        "created_at": site.created_at,
        "updated_at": site.updated_at,
    }


def zone_view(zone: Zone) -> dict[str, Any]:
    s = _session(zone)
    return {
        "id": zone.id,
        "external_id": zone.external_id,
        "site_id": zone.site_id,
        "site_external_id": s.scalar(select(Site.external_id).where(Site.id == zone.site_id)),
        "name": zone.name,
        "kind": zone.kind,
        "criticality": zone.criticality,
        "owner_id": zone.owner_id,
        "owner_email": _email(s, zone.owner_id),
        "created_at": zone.created_at,
        "updated_at": zone.updated_at,
    }


def provider_view(provider: Provider) -> dict[str, Any]:
    return {
        "id": provider.id,
        "external_id": provider.external_id,
        "name": provider.name,
        "lei": provider.lei,
        "services": provider.services,
        "criticality": provider.criticality,
        "contract_start": provider.contract_start,
        "contract_end": provider.contract_end,
        "exit_plan": provider.exit_plan,
        "contact_email": provider.contact_email or None,
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    }


def depends_on_ids(session: Session, asset_id: int) -> list[int]:
    return list(
        session.scalars(
            select(AssetDependency.depends_on_id)
            .where(AssetDependency.asset_id == asset_id)
            .order_by(AssetDependency.depends_on_id)
        )
    )


def asset_view(asset: Asset) -> dict[str, Any]:
    s = _session(asset)
    return {
        "id": asset.id,
        "external_id": asset.external_id,
        "name": asset.name,
        "type": asset.type,
        "criticality": asset.criticality,
        "owner_id": asset.owner_id,
        "owner_email": _email(s, asset.owner_id),
        "business_function": asset.business_function,
        "zone_id": asset.zone_id,
        "zone_external_id": s.scalar(select(Zone.external_id).where(Zone.id == asset.zone_id))
        if asset.zone_id is not None
        else None,
        "location": asset.location,
        "provider_id": asset.provider_id,
        "provider_external_id": s.scalar(select(Provider.external_id).where(Provider.id == asset.provider_id))
        if asset.provider_id is not None
        else None,
        "description": asset.description,
        "tags": list(asset.tags or []),
        "depends_on": depends_on_ids(s, asset.id),
        "created_at": asset.created_at,
        "updated_at": asset.updated_at,
    }
