"""People: the HR system's file, matched on external_id, managers named by email."""

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
from portcullis.inventory.models import Person
from portcullis.inventory.schemas import PersonIn

SPEC = SPECS["people"]
_COLUMNS = {"manager_id": "manager_email"}
_UNIQUE = ("email", "idp_id", "badge_id")


def stored_fields(p: Person) -> dict[str, Any]:
    return {
        "external_id": p.external_id,
        "email": p.email,
        "full_name": p.full_name,
        "kind": p.kind,
        "department": p.department,
        "job_title": p.job_title,
        "manager_id": p.manager_id,
        "status": p.status,
        "start_date": p.start_date,
        "end_date": p.end_date,
        "key_function_holder": p.key_function_holder,
        "mfa_enrolled": p.mfa_enrolled,
        "idp_id": p.idp_id,
        "badge_id": p.badge_id,
    }


class PeopleImporter(Importer):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        people = list(self.ctx.session.scalars(select(Person)))
        self.by_id = {p.id: p for p in people}
        self.by_key = {p.external_id: p for p in people}
        self.by_email = {p.email.lower(): p for p in people}
        self.held: dict[str, dict[str, Person]] = {
            "email": self.by_email,
            "idp_id": {p.idp_id: p for p in people if p.idp_id},
            "badge_id": {p.badge_id: p for p in people if p.badge_id},
        }

    def plan(self, rows: list[Row], errors: ErrorCollector) -> list[Item[Any]]:
        keys = first_lines(rows, "external_id", errors)
        emails = first_lines(rows, "email", errors, fold=True)
        for col in ("idp_id", "badge_id"):
            first_lines(rows, col, errors)
        # Email -> external id of the row that will hold it, so a manager may be defined later in the file.
        file_email_key = {
            r.values["email"].lower(): r.values["external_id"]
            for r in rows
            if r.values.get("email") and r.values.get("external_id") and emails.get(r.values["email"].lower())
            == r.line and keys.get(r.values["external_id"]) == r.line
        }
        items: list[Item[Any]] = []
        manager_of: dict[str, str | None] = {}
        for row in rows:
            key = row.values.get("external_id")
            if not key or keys.get(key) != row.line:
                continue
            existing = self.by_key.get(key)
            self._collisions(row, key, errors)
            ref, after = self._manager(row, key, existing, file_email_key, errors)
            if row.bad:
                continue
            raw = overlay(stored_fields(existing) if existing else {}, row, SPEC)
            raw["manager_id"] = placeholder(ref)
            desired = build(PersonIn, raw, row.line, errors, _COLUMNS, [c.name for c in SPEC])
            if desired is None:
                continue
            stored = stored_model(PersonIn, stored_fields(existing)) if existing else None
            item: Item[PersonIn] = Item(row.line, key, existing.id if existing else None, desired, stored)
            item.refs["manager_id"] = ref
            item.after = after
            item.outcome = classify(item)
            items.append(item)
            manager_of[key] = self._key_of(ref)
        self._loops(items, manager_of, errors)
        return items

    def _collisions(self, row: Row, key: str, errors: ErrorCollector) -> None:
        for col in _UNIQUE:
            value = row.values.get(col)
            if not value:
                continue
            holder = self.held[col].get(value.lower() if col == "email" else value)
            if holder is not None and holder.external_id != key:
                errors.add(
                    col,
                    f"{value!r} already belongs to {holder.external_id} ({holder.full_name}) in the register",
                    row.line,
                )
                row.bad = True

    def _manager(
        self,
        row: Row,
        key: str,
        existing: Person | None,
        file_email_key: dict[str, str],
        errors: ErrorCollector,
    ) -> tuple[Ref, list[str]]:
        if "manager_email" not in row.values:
            return (existing.manager_id if existing else None), []
        email = row.values["manager_email"]
        if not email:
            return None, []
        email = email.lower()
        target_key = file_email_key.get(email)
        if target_key is None and email in self.by_email:
            target_key = self.by_email[email].external_id
        if target_key is None:
            errors.add(
                "manager_email",
                f"no person with email {email!r} in the register or in this file",
                row.line,
            )
            row.bad = True
            return None, []
        if target_key == key:
            errors.add("manager_email", "a person cannot be their own manager", row.line)
            row.bad = True
            return None, []
        target = self.by_key.get(target_key)
        return (target.id if target else Pending(target_key)), [target_key]

    def _key_of(self, ref: Ref | list[Ref]) -> str | None:
        if isinstance(ref, Pending):
            return ref.key
        if isinstance(ref, int):
            return self.by_id[ref].external_id
        return None

    def _loops(self, items: list[Item[Any]], manager_of: dict[str, str | None], errors: ErrorCollector) -> None:
        """Refuse reporting lines that would loop once the whole file is applied."""

        def manager(k: str) -> str | None:
            if k in manager_of:
                return manager_of[k]
            p = self.by_key.get(k)
            return self.by_id[p.manager_id].external_id if p and p.manager_id else None

        for item in items:
            chain = [item.key]
            current = manager(item.key)
            while current is not None and current not in chain:
                chain.append(current)
                current = manager(current)
            if current == item.key:
                errors.add(
                    "manager_email",
                    "the reporting line loops back to this person: " + " -> ".join([*chain, item.key]),
                    item.line,
                )

    def write(self, items: list[Item[Any]]) -> None:
        ids = {k: p.id for k, p in self.by_key.items()}

        def create(data: PersonIn) -> int:
            return service.create_person(self.ctx, data).id

        def update(pid: int, data: PersonIn) -> None:
            service.update_person(self.ctx, pid, data)

        write_items(items, ids, create, update)

    def export_rows(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.by_key.values(), key=lambda p: p.external_id):
            row = stored_fields(p)
            row["manager_email"] = self.by_id[p.manager_id].email if p.manager_id else None
            out.append(row)
        return out
