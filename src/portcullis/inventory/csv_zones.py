"""Zones of the premises (§18), each in a site; a site the register lacks is created from the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from portcullis.core.errors import ErrorCollector
from portcullis.inventory import service
from portcullis.inventory.csv_columns import SPECS
from portcullis.inventory.csv_plan import (
    UNCHANGED,
    UPDATED,
    Importer,
    Item,
    Pending,
    Row,
    build,
    classify,
    first_lines,
    overlay,
    placeholder,
    stored_model,
    write_items,
)
from portcullis.inventory.models import Person, Site, Zone
from portcullis.inventory.schemas import SiteIn, ZoneIn

SPEC = SPECS["zones"]
_COLUMNS = {"site_id": "site_external_id", "owner_id": "owner_email"}
_SITE_COLUMNS = {"external_id": "site_external_id", "name": "site_name", "kind": "site_kind"}


def zone_fields(z: Zone) -> dict[str, Any]:
    return {
        "external_id": z.external_id,
        "site_id": z.site_id,
        "name": z.name,
        "kind": z.kind,
        "criticality": z.criticality,
        "owner_id": z.owner_id,
    }


def site_fields(s: Site) -> dict[str, Any]:
    return {
        "external_id": s.external_id,
        "name": s.name,
        "kind": s.kind,
        "address": s.address,
        "owner_id": s.owner_id,
    }


@dataclass
class _SitePlan:
    key: str
    first_line: int
    given: dict[str, tuple[str, int]] = field(default_factory=dict)  # site field -> (value, line)
    item: Item[SiteIn] | None = None


class ZonesImporter(Importer):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        s = self.ctx.session
        self.by_key = {z.external_id: z for z in s.scalars(select(Zone))}
        sites = list(s.scalars(select(Site)))
        self.site_by_key = {x.external_id: x for x in sites}
        self.site_by_id = {x.id: x for x in sites}
        people = list(s.scalars(select(Person)))
        self.person_by_email = {p.email.lower(): p.id for p in people}
        self.email_of = {p.id: p.email for p in people}
        self.sites: list[Item[SiteIn]] = []

    def plan(self, rows: list[Row], errors: ErrorCollector) -> list[Item[Any]]:
        keys = first_lines(rows, "external_id", errors)
        sites = self._plan_sites(rows, errors)
        items: list[Item[Any]] = []
        for row in rows:
            key = row.values.get("external_id")
            if not key or keys.get(key) != row.line:
                continue
            existing = self.by_key.get(key)
            stored_raw = zone_fields(existing) if existing else {}
            owner = self._owner(row, stored_raw, errors)
            site = sites.get(row.values.get("site_external_id") or "")
            if row.bad or site is None or site.item is None:
                continue
            site_ref = Pending(site.key) if site.item.existing_id is None else site.item.existing_id
            raw = overlay(dict(stored_raw), row, SPEC)
            raw.update(site_id=placeholder(site_ref), owner_id=owner)
            desired = build(ZoneIn, raw, row.line, errors, _COLUMNS, [c.name for c in SPEC])
            if desired is None:
                continue
            stored = stored_model(ZoneIn, stored_raw) if existing else None
            item: Item[ZoneIn] = Item(row.line, key, existing.id if existing else None, desired, stored)
            item.refs["site_id"] = site_ref
            item.outcome = classify(item)
            if item.outcome == UNCHANGED and site.item.outcome != UNCHANGED:
                item.outcome = UPDATED  # the row's site columns change its site
            items.append(item)
        return items

    def _owner(self, row: Row, stored_raw: dict[str, Any], errors: ErrorCollector) -> int | None:
        if "owner_email" not in row.values:
            owner: int | None = stored_raw.get("owner_id")
            return owner
        email = row.values["owner_email"]
        if not email:
            return None
        pid = self.person_by_email.get(email.lower())
        if pid is None:
            errors.add("owner_email", f"no person with email {email!r} in the register; import people first", row.line)
            row.bad = True
        return pid

    def _plan_sites(self, rows: list[Row], errors: ErrorCollector) -> dict[str, _SitePlan]:
        """One plan per site the file names: the columns of every row naming it must agree."""
        plans: dict[str, _SitePlan] = {}
        for row in rows:
            key = row.values.get("site_external_id")
            if not key:
                continue
            plan = plans.setdefault(key, _SitePlan(key, row.line))
            for fld in ("name", "kind"):
                value = row.values.get(_SITE_COLUMNS[fld])
                if not value:
                    continue
                seen = plan.given.get(fld)
                if seen is None:
                    plan.given[fld] = (value, row.line)
                elif seen[0] != value:
                    errors.add(
                        _SITE_COLUMNS[fld],
                        f"{value!r} differs from {seen[0]!r} on line {seen[1]} for site {key!r}",
                        row.line,
                    )
                    row.bad = True
        for plan in plans.values():
            self._plan_site(plan, rows, errors)
        self.sites = [p.item for p in plans.values() if p.item is not None]
        return plans

    def _plan_site(self, plan: _SitePlan, rows: list[Row], errors: ErrorCollector) -> None:
        existing = self.site_by_key.get(plan.key)
        if existing is None:
            missing = [f for f in ("name", "kind") if f not in plan.given]
            if missing:
                for row in rows:
                    if row.values.get("site_external_id") != plan.key:
                        continue
                    for f in missing:
                        errors.add(
                            _SITE_COLUMNS[f],
                            f"site {plan.key!r} is not in the register: give its {_SITE_COLUMNS[f]} to create it",
                            row.line,
                        )
                    row.bad = True
                return
        raw = site_fields(existing) if existing else {"external_id": plan.key}
        line = plan.first_line
        for f, (value, at) in plan.given.items():
            raw[f] = value
            line = at
        desired = build(SiteIn, raw, line, errors, _SITE_COLUMNS, list(_SITE_COLUMNS.values()))
        if desired is None:
            return
        stored = stored_model(SiteIn, site_fields(existing)) if existing else None
        item: Item[SiteIn] = Item(line, plan.key, existing.id if existing else None, desired, stored)
        item.outcome = classify(item)
        plan.item = item

    def write(self, items: list[Item[Any]]) -> None:
        site_ids = {k: s.id for k, s in self.site_by_key.items()}

        def create_site(data: SiteIn) -> int:
            return service.create_site(self.ctx, data).id

        def update_site(sid: int, data: SiteIn) -> None:
            service.update_site(self.ctx, sid, data)

        write_items(self.sites, site_ids, create_site, update_site)
        # Zones refer to sites, not to each other: the site ids are what they wait for.
        for item in items:
            if item.outcome != UNCHANGED:
                item.desired = item.desired.model_copy(update={"site_id": self._site_id(item, site_ids)})
                item.refs = {}

        def create_zone(data: ZoneIn) -> int:
            return service.create_zone(self.ctx, data).id

        def update_zone(zid: int, data: ZoneIn) -> None:
            service.update_zone(self.ctx, zid, data)

        write_items(items, {}, create_zone, update_zone)

    @staticmethod
    def _site_id(item: Item[Any], site_ids: dict[str, int]) -> int:
        ref = item.refs.get("site_id")
        if isinstance(ref, Pending):
            return site_ids[ref.key]
        assert isinstance(ref, int)
        return ref

    def export_rows(self) -> list[dict[str, Any]]:
        out = []
        for z in sorted(self.by_key.values(), key=lambda z: z.external_id):
            row = zone_fields(z)
            site = self.site_by_id[z.site_id]
            row.update(site_external_id=site.external_id, site_name=site.name, site_kind=site.kind)
            row["owner_email"] = self.email_of.get(z.owner_id) if z.owner_id else None
            out.append(row)
        return out
