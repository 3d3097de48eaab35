"""What points at a record: the links a register page shows under it.

A provider's supported assets (§17 i-ii), a zone's assets and a site's zones
(§18), a person's reports and what they own, an asset's dependants.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from portcullis.core.context import Context
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Asset, AssetDependency, Person, Site, Zone

LIMIT = 200


@dataclass(frozen=True)
class Link:
    slug: str
    id: int
    label: str


@dataclass(frozen=True)
class Related:
    title: str
    links: list[Link]


def _links(ctx: Context, model: type, slug: str, label: InstrumentedAttribute[str], where: object) -> list[Link]:
    q = select(model.id, label).where(where).order_by(label).limit(LIMIT)  # type: ignore[attr-defined, arg-type]
    return [Link(slug, i, name) for i, name in ctx.session.execute(q)]


def related(ctx: Context, kind: str, item_id: int) -> list[Related]:
    """Callers have already loaded the record itself (and so know it exists)."""
    ctx.require(Permission.INVENTORY_READ)

    def assets(where: object) -> list[Link]:
        return _links(ctx, Asset, "assets", Asset.name, where)

    if kind == "providers":
        return [Related("ICT assets it supports", assets(Asset.provider_id == item_id))]
    if kind == "zones":
        return [Related("ICT assets located here", assets(Asset.zone_id == item_id))]
    if kind == "sites":
        return [Related("Zones", _links(ctx, Zone, "zones", Zone.name, Zone.site_id == item_id))]
    if kind == "people":
        return [
            Related("Reports", _links(ctx, Person, "people", Person.full_name, Person.manager_id == item_id)),
            Related("ICT assets owned", assets(Asset.owner_id == item_id)),
            Related("Zones owned", _links(ctx, Zone, "zones", Zone.name, Zone.owner_id == item_id)),
            Related("Sites owned", _links(ctx, Site, "sites", Site.name, Site.owner_id == item_id)),
        ]
    if kind == "assets":
        dependants = select(AssetDependency.asset_id).where(AssetDependency.depends_on_id == item_id)
        return [Related("ICT assets that depend on it", assets(Asset.id.in_(dependants)))]
    return []
