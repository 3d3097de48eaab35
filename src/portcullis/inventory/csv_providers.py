"""ICT third-party service providers (§17 i-ii): no references, matched on external_id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from portcullis.core.errors import ErrorCollector
from portcullis.inventory import service
from portcullis.inventory.csv_columns import SPECS
from portcullis.inventory.csv_plan import (
    Importer,
    Item,
    Row,
    build,
    classify,
    first_lines,
    overlay,
    stored_model,
    write_items,
)
from portcullis.inventory.models import Provider
from portcullis.inventory.schemas import ProviderIn

SPEC = SPECS["providers"]


def stored_fields(p: Provider) -> dict[str, Any]:
    return {
        "external_id": p.external_id,
        "name": p.name,
        "lei": p.lei,
        "services": p.services,
        "criticality": p.criticality,
        "contract_start": p.contract_start,
        "contract_end": p.contract_end,
        "exit_plan": p.exit_plan,
        # Stored as "" when absent; the schema's email type wants None.
        "contact_email": p.contact_email or None,
    }


class ProvidersImporter(Importer):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.by_key = {p.external_id: p for p in self.ctx.session.scalars(select(Provider))}

    def plan(self, rows: list[Row], errors: ErrorCollector) -> list[Item[Any]]:
        keys = first_lines(rows, "external_id", errors)
        items: list[Item[Any]] = []
        for row in rows:
            key = row.values.get("external_id")
            if not key or keys.get(key) != row.line or row.bad:
                continue
            existing = self.by_key.get(key)
            raw = overlay(stored_fields(existing) if existing else {}, row, SPEC)
            desired = build(ProviderIn, raw, row.line, errors, {}, [c.name for c in SPEC])
            if desired is None:
                continue
            stored = stored_model(ProviderIn, stored_fields(existing)) if existing else None
            item: Item[ProviderIn] = Item(row.line, key, existing.id if existing else None, desired, stored)
            item.outcome = classify(item)
            items.append(item)
        return items

    def write(self, items: list[Item[Any]]) -> None:
        def create(data: ProviderIn) -> int:
            return service.create_provider(self.ctx, data).id

        def update(pid: int, data: ProviderIn) -> None:
            service.update_provider(self.ctx, pid, data)

        write_items(items, {}, create, update)

    def export_rows(self) -> list[dict[str, Any]]:
        return [stored_fields(p) for p in sorted(self.by_key.values(), key=lambda p: p.external_id)]
