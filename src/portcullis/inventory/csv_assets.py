"""ICT assets: owners by email, zone and provider by external id, dependencies within the file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from portcullis.core.errors import ErrorCollector
from portcullis.inventory import service
from portcullis.inventory.csv_columns import SPECS
from portcullis.inventory.csv_plan import (
    Importer,
    Item,
    Pending,
    Ref,
    Row,
    build,
    classify,
    first_lines,
    overlay,
    placeholder,
    stored_model,
    write_items,
)
from portcullis.inventory.models import Asset, AssetDependency, Criticality, Person, Provider, Zone
from portcullis.inventory.schemas import AssetIn

SPEC = SPECS["assets"]
_COLUMNS = {
    "owner_id": "owner_email",
    "zone_id": "zone_external_id",
    "provider_id": "provider_external_id",
}


class AssetsImporter(Importer):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        s = self.ctx.session
        assets = list(s.scalars(select(Asset)))
        self.by_key = {a.external_id: a for a in assets}
        self.key_of = {a.id: a.external_id for a in assets}
        self.deps: dict[int, list[int]] = {}
        for d in s.scalars(select(AssetDependency)):
            self.deps.setdefault(d.asset_id, []).append(d.depends_on_id)
        people = list(s.scalars(select(Person)))
        self.person_by_email = {p.email.lower(): p.id for p in people}
        self.email_of = {p.id: p.email for p in people}
        zones = list(s.scalars(select(Zone)))
        self.zone_by_key = {z.external_id: z.id for z in zones}
        self.zone_key = {z.id: z.external_id for z in zones}
        providers = list(s.scalars(select(Provider)))
        self.provider_by_key = {p.external_id: p.id for p in providers}
        self.provider_key = {p.id: p.external_id for p in providers}

    def stored_fields(self, a: Asset) -> dict[str, Any]:
        return {
            "external_id": a.external_id,
            "name": a.name,
            "type": a.type,
            "criticality": a.criticality,
            "owner_id": a.owner_id,
            "business_function": a.business_function,
            "zone_id": a.zone_id,
            "location": a.location,
            "provider_id": a.provider_id,
            "description": a.description,
            "tags": list(a.tags or []),
            "depends_on": sorted(self.deps.get(a.id, [])),
        }

    def plan(self, rows: list[Row], errors: ErrorCollector) -> list[Item[Any]]:
        keys = first_lines(rows, "external_id", errors)
        items: list[Item[Any]] = []
        for row in rows:
            key = row.values.get("external_id")
            if not key or keys.get(key) != row.line:
                continue
            existing = self.by_key.get(key)
            stored_raw = self.stored_fields(existing) if existing else {}
            owner = self._lookup(row, "owner_email", self.person_by_email, "person with email", stored_raw, errors)
            zone = self._lookup(row, "zone_external_id", self.zone_by_key, "zone", stored_raw, errors)
            provider = self._lookup(row, "provider_external_id", self.provider_by_key, "provider", stored_raw, errors)
            deps, after = self._dependencies(row, key, keys, stored_raw, errors)
            if row.bad:
                continue
            raw = overlay(dict(stored_raw), row, SPEC)
            raw.update(owner_id=owner, zone_id=zone, provider_id=provider, depends_on=placeholder(deps))
            desired = build(AssetIn, raw, row.line, errors, _COLUMNS, [c.name for c in SPEC])
            if desired is None:
                continue
            if desired.criticality == Criticality.CRITICAL.value and desired.owner_id is None:
                errors.add("owner_email", "a critical asset needs an owner (§17 i)", row.line)
                continue
            stored = stored_model(AssetIn, stored_raw) if existing else None
            item: Item[AssetIn] = Item(row.line, key, existing.id if existing else None, desired, stored)
            item.refs["depends_on"] = deps
            item.after = after
            item.outcome = classify(item)
            items.append(item)
        return items

    def _lookup(
        self,
        row: Row,
        column: str,
        index: dict[str, int],
        label: str,
        stored_raw: dict[str, Any],
        errors: ErrorCollector,
    ) -> int | None:
        field = next(f for f, c in _COLUMNS.items() if c == column)
        if column not in row.values:
            found: int | None = stored_raw.get(field)
            return found
        value = row.values[column]
        if not value:
            return None
        rid = index.get(value.lower() if column == "owner_email" else value)
        if rid is None:
            hint = "; import people first" if column == "owner_email" else ""
            errors.add(column, f"no {label} {value!r} in the register{hint}", row.line)
            row.bad = True
        return rid

    def _dependencies(
        self, row: Row, key: str, in_file: dict[str, int], stored_raw: dict[str, Any], errors: ErrorCollector
    ) -> tuple[list[Ref], list[str]]:
        if "depends_on" not in row.values:
            return list(stored_raw.get("depends_on", [])), []
        refs: list[Ref] = []
        after: list[str] = []
        for dep in row.values["depends_on"]:
            if dep == key:
                errors.add("depends_on", "an asset cannot depend on itself", row.line)
                row.bad = True
            elif dep in self.by_key:
                refs.append(self.by_key[dep].id)
                after.append(dep)
            elif dep in in_file:
                refs.append(Pending(dep))
                after.append(dep)
            else:
                errors.add("depends_on", f"no asset {dep!r} in the register or in this file", row.line)
                row.bad = True
        return refs, after

    def write(self, items: list[Item[Any]]) -> None:
        ids = {k: a.id for k, a in self.by_key.items()}

        def create(data: AssetIn) -> int:
            return service.create_asset(self.ctx, data).id

        def update(aid: int, data: AssetIn) -> None:
            service.update_asset(self.ctx, aid, data)

        write_items(items, ids, create, update)

    def export_rows(self) -> list[dict[str, Any]]:
        out = []
        for a in sorted(self.by_key.values(), key=lambda a: a.external_id):
            row = self.stored_fields(a)
            row["owner_email"] = self.email_of.get(a.owner_id) if a.owner_id else None
            row["zone_external_id"] = self.zone_key.get(a.zone_id) if a.zone_id else None
            row["provider_external_id"] = self.provider_key.get(a.provider_id) if a.provider_id else None
            row["depends_on"] = sorted(self.key_of[d] for d in self.deps.get(a.id, []))
            out.append(row)
        return out
