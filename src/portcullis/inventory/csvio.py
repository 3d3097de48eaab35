"""CSV import and export of the inventory registers: people, assets, zones, providers.

An import names every bad row by line and column, writes nothing unless the
whole file is good (all-or-nothing), and matches rows on external_id so that
importing the same file again changes nothing. Owners and managers are named by
email, sites, zones, providers and dependencies by external id. A column left
out of the header keeps the stored value; an empty cell clears it (an empty
kind/status/site_kind keeps the stored value, or the default for a new record).

An export has the same columns, so exporting and importing again reports every
row unchanged. Cells a spreadsheet would run as a formula get a leading
apostrophe, which import removes again.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from typing import Any

from portcullis.core.context import Context
from portcullis.core.errors import ErrorCollector, FieldError
from portcullis.core.permissions import Permission
from portcullis.inventory.csv_assets import AssetsImporter
from portcullis.inventory.csv_columns import (
    KINDS,
    SPECS,
    Column,
    check_kind,
    columns,
    format_cell,
    map_header,
    parse_cell,
    required_columns,
)
from portcullis.inventory.csv_people import PeopleImporter
from portcullis.inventory.csv_plan import CREATED, UNCHANGED, UPDATED, Importer, Row
from portcullis.inventory.csv_providers import ProvidersImporter
from portcullis.inventory.csv_read import RawTable, guard, read_table
from portcullis.inventory.csv_zones import ZonesImporter
from portcullis.ledger.service import record_change

__all__ = ["KINDS", "SPECS", "ImportReport", "columns", "export_csv", "required_columns", "run_import"]

_IMPORTERS: dict[str, type[Importer]] = {
    "people": PeopleImporter,
    "assets": AssetsImporter,
    "zones": ZonesImporter,
    "providers": ProvidersImporter,
}


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def committed(self) -> bool:
        return self.ok and not self.dry_run

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "committed": self.committed,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [e.as_dict() for e in sorted(self.errors, key=_error_order)],
        }


def _error_order(e: FieldError) -> tuple[int, str]:
    return (e.line or 0, e.field)


def _rows(table: RawTable, header: list[Column], errors: ErrorCollector) -> list[Row]:
    rows: list[Row] = []
    width = len(header)
    for record in table.records:
        if len(record.cells) != width:
            many = "many" if len(record.cells) > width else "few"
            errors.add(
                "row",
                f"too {many} cells: {len(record.cells)}, but the header has {width} columns "
                "(a comma inside a value needs double quotes around the value)",
                record.line,
            )
            continue
        row = Row(record.line, {})
        before = len(errors.errors)
        for col, cell in zip(header, record.cells, strict=True):
            present, value = parse_cell(col, cell, record.line, errors)
            if present:
                row.values[col.name] = value
        row.bad = len(errors.errors) > before
        rows.append(row)
    return rows


def run_import(ctx: Context, kind: str, data: bytes, *, dry_run: bool) -> ImportReport:
    """Check a CSV file of one register and, unless dry_run or anything is wrong, apply it.

    Bad content is reported, never raised; a service refusing a write that the
    checks let through raises, so the caller's transaction rolls back.
    """
    # Even a dry run needs write permission: its report tells which records exist.
    ctx.require(Permission.INVENTORY_WRITE)
    check_kind(kind)
    report = ImportReport(kind, dry_run)
    errors = ErrorCollector()
    table = read_table(data, errors)
    if table is not None:
        report.rows = len(table.records)
        header = map_header(kind, table.header, table.header_line, errors)
        if header is not None:
            rows = _rows(table, header, errors)
            importer = _IMPORTERS[kind](ctx)
            items = importer.plan(rows, errors)
            outcomes = [i.outcome for i in items]
            if not errors.errors and not dry_run:
                importer.write(items)
            if dry_run or not errors.errors:
                report.created = outcomes.count(CREATED)
                report.updated = outcomes.count(UPDATED)
                report.unchanged = outcomes.count(UNCHANGED)
    report.errors = sorted(errors.errors, key=_error_order)
    if report.committed and (report.created or report.updated):
        record_change(
            ctx,
            "inventory.imported",
            "inventory_import",
            kind,
            kind=kind,
            sha256=hashlib.sha256(data).hexdigest(),
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
        )
    return report


def export_csv(ctx: Context, kind: str) -> str:
    """The register as CSV with the import's columns; safe to open in a spreadsheet."""
    ctx.require(Permission.INVENTORY_READ)
    spec = check_kind(kind)
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([c.name for c in spec])
    for row in _IMPORTERS[kind](ctx).export_rows():
        writer.writerow([guard(format_cell(row.get(c.name))) for c in spec])
    return buf.getvalue()
