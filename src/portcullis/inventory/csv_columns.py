"""The columns of each register's CSV file, and what a cell may hold.

One table per register serves import, export and documentation alike, so the
three cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from typing import Any

from portcullis.core.errors import ErrorCollector, FieldError, ValidationFailed
from portcullis.inventory.csv_read import clean
from portcullis.inventory.models import AssetType, Criticality, PersonKind, PersonStatus, SiteKind, ZoneKind

KINDS = ("people", "assets", "zones", "providers")
LIST_SEPARATOR = ";"
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0", ""}


class Cell(Enum):
    TEXT = "text"  # empty -> ""
    OPTIONAL = "optional"  # empty -> None
    ENUM = "enum"  # empty -> left out, so the stored value or the default stays
    DATE = "date"
    BOOL = "bool"
    LIST = "list"
    REF = "ref"  # an email or an external id, resolved by the importer
    REFS = "refs"


@dataclass(frozen=True)
class Column:
    name: str
    cell: Cell = Cell.TEXT
    required: bool = False
    choices: type[StrEnum] | None = None
    # The schema field the value goes to; references, which the importer resolves, have none.
    field: str | None = None


def _c(
    name: str,
    cell: Cell = Cell.TEXT,
    required: bool = False,
    choices: type[StrEnum] | None = None,
    in_schema: bool = True,
) -> Column:
    field = name if in_schema and cell not in (Cell.REF, Cell.REFS) else None
    return Column(name, cell, required, choices, field)


SPECS: dict[str, tuple[Column, ...]] = {
    "people": (
        _c("external_id", required=True),
        _c("email", required=True),
        _c("full_name", required=True),
        _c("kind", Cell.ENUM, choices=PersonKind),
        _c("department"),
        _c("job_title"),
        _c("manager_email", Cell.REF),
        _c("status", Cell.ENUM, choices=PersonStatus),
        _c("start_date", Cell.DATE),
        _c("end_date", Cell.DATE),
        _c("key_function_holder", Cell.BOOL),
        _c("mfa_enrolled", Cell.BOOL),
        _c("idp_id", Cell.OPTIONAL),
        _c("badge_id", Cell.OPTIONAL),
    ),
    "assets": (
        _c("external_id", required=True),
        _c("name", required=True),
        _c("type", Cell.ENUM, required=True, choices=AssetType),
        _c("criticality", Cell.ENUM, required=True, choices=Criticality),
        _c("owner_email", Cell.REF),
        _c("business_function"),
        _c("zone_external_id", Cell.REF),
        _c("location"),
        _c("provider_external_id", Cell.REF),
        _c("description"),
        _c("tags", Cell.LIST),
        _c("depends_on", Cell.REFS),
    ),
    "zones": (
        _c("external_id", required=True),
        _c("name", required=True),
        _c("site_external_id", Cell.REF, required=True),
        # Describe the zone's site, so that a site the register lacks can be created.
        _c("site_name", Cell.OPTIONAL, in_schema=False),
        _c("site_kind", Cell.ENUM, choices=SiteKind, in_schema=False),
        _c("kind", Cell.ENUM, choices=ZoneKind),
        _c("criticality", Cell.ENUM, required=True, choices=Criticality),
        _c("owner_email", Cell.REF),
    ),
    "providers": (
        _c("external_id", required=True),
        _c("name", required=True),
        _c("lei", Cell.OPTIONAL),
        _c("services"),
        _c("criticality", Cell.ENUM, required=True, choices=Criticality),
        _c("contract_start", Cell.DATE),
        _c("contract_end", Cell.DATE),
        _c("exit_plan"),
        _c("contact_email", Cell.OPTIONAL),
    ),
}


def check_kind(kind: str) -> tuple[Column, ...]:
    spec = SPECS.get(kind)
    if spec is None:
        raise ValidationFailed(
            f"Unknown register {kind!r}", [FieldError("kind", f"{kind!r} is not one of: {', '.join(KINDS)}")]
        )
    return spec


def columns(kind: str) -> list[str]:
    return [c.name for c in check_kind(kind)]


def required_columns(kind: str) -> list[str]:
    return [c.name for c in check_kind(kind) if c.required]


def map_header(kind: str, header: list[str], line: int, errors: ErrorCollector) -> list[Column] | None:
    """The column of each header cell, or None after naming every wrong or missing column."""
    spec = {c.name: c for c in check_kind(kind)}
    expected = ", ".join(f"{c.name}*" if c.required else c.name for c in spec.values())
    found: list[Column] = []
    seen: set[str] = set()
    ok = True
    for position, raw in enumerate(header, start=1):
        name = clean(raw).lower()
        col = spec.get(name)
        if col is None:
            what = f"unknown column {name!r}" if name else f"column {position} has no name"
            errors.add(name or f"column {position}", f"{what}; the {kind} columns are: {expected}", line)
            ok = False
        elif name in seen:
            errors.add(name, f"column {name!r} appears twice in the header", line)
            ok = False
        else:
            seen.add(name)
            found.append(col)
    for name, col in spec.items():
        if col.required and name not in seen:
            errors.add(name, f"required column {name!r} is missing; the {kind} columns are: {expected}", line)
            ok = False
    return found if ok else None


def parse_cell(col: Column, raw: str, line: int, errors: ErrorCollector) -> tuple[bool, Any]:
    """(present, value): present is False when the cell leaves the stored value as it is."""
    value = clean(raw)
    if col.required and not value:
        errors.add(col.name, f"{col.name} is required", line)
        return False, None
    if col.cell is Cell.TEXT:
        return True, value
    if col.cell is Cell.OPTIONAL:
        return True, value or None
    if col.cell is Cell.ENUM:
        if not value:
            return False, None
        assert col.choices is not None
        allowed = [m.value for m in col.choices]
        if value.lower() not in allowed:
            errors.add(col.name, f"{value!r} is not allowed; use one of: {', '.join(allowed)}", line)
            return False, None
        return True, value.lower()
    if col.cell is Cell.DATE:
        if not value:
            return True, None
        try:
            if not _ISO_DATE.match(value):
                raise ValueError(value)
            return True, date.fromisoformat(value)
        except ValueError:
            errors.add(col.name, f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31", line)
            return False, None
    if col.cell is Cell.BOOL:
        word = value.lower()
        if word in _TRUE:
            return True, True
        if word in _FALSE:
            return True, False
        errors.add(col.name, f"{value!r} is not a yes/no value; use true/false, yes/no or 1/0", line)
        return False, None
    if col.cell is Cell.LIST or col.cell is Cell.REFS:
        return True, _split(value)
    return True, value or None  # REF


def _split(value: str) -> list[str]:
    out: list[str] = []
    for part in value.split(LIST_SEPARATOR):
        part = clean(part)
        if part and part not in out:
            out.append(part)
    return out


def format_cell(value: Any) -> str:
    """The inverse of parse_cell, before the injection guard."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return LIST_SEPARATOR.join(str(v) for v in value)
    if isinstance(value, StrEnum):
        return value.value
    return str(value)
