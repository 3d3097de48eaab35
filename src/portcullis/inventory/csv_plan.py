"""What every register's import shares: rows, planned items, schema errors, write order.

An import first plans every row against the stored registers without writing:
each row becomes an Item holding the validated schema object it will be saved as,
and whether that creates, updates or leaves a record. Only a plan without errors
is written, so a file with one bad row changes nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, ErrorCollector, FieldError, ValidationFailed
from portcullis.inventory.csv_columns import Column

S = TypeVar("S", bound=BaseModel)

CREATED = "created"
UPDATED = "updated"
UNCHANGED = "unchanged"
# Stands in for the id of a record that this same file creates, while validating.
PLACEHOLDER_ID = -1


@dataclass(frozen=True)
class Pending:
    """A reference to a record that this file creates: its id exists only once written."""

    key: str


Ref = int | Pending | None


@dataclass
class Row:
    line: int
    values: dict[str, Any]  # column name -> parsed value, for the columns the file has
    bad: bool = False  # a cell was refused: the schema check is skipped so errors are not named twice


@dataclass
class Item(Generic[S]):
    line: int
    key: str  # the external id
    existing_id: int | None
    desired: S  # validated, with PLACEHOLDER_ID where a reference is still Pending
    stored: S | None
    refs: dict[str, Ref | list[Ref]] = field(default_factory=dict)
    after: list[str] = field(default_factory=list)  # keys of rows in the file to write first
    outcome: str = ""


def placeholder(ref: Ref | list[Ref]) -> Any:
    if isinstance(ref, list):
        return sorted(PLACEHOLDER_ID if isinstance(r, Pending) else r for r in ref if r is not None)
    return PLACEHOLDER_ID if isinstance(ref, Pending) else ref


def is_pending(ref: Ref | list[Ref]) -> bool:
    if isinstance(ref, list):
        return any(isinstance(r, Pending) for r in ref)
    return isinstance(ref, Pending)


def build(
    schema: type[S],
    raw: Mapping[str, Any],
    line: int,
    errors: ErrorCollector,
    columns: Mapping[str, str],
    known_columns: Iterable[str],
) -> S | None:
    """Validate through the schema, naming the CSV column (not the schema field) in each error."""
    try:
        return schema.model_validate(dict(raw))
    except ValidationError as exc:
        names = list(known_columns)
        for e in exc.errors(include_url=False):
            loc = e.get("loc") or ()
            msg = str(e.get("msg", "invalid"))
            msg = msg.removeprefix("Value error, ")
            # A check across fields (end before start) has no loc: name the column its message names.
            col = columns.get(str(loc[0]), str(loc[0])) if loc else _first_named(msg, names)
            errors.add(col, msg, line)
        return None


def _first_named(message: str, names: list[str]) -> str:
    found = [(message.find(n), -len(n), n) for n in names if n in message]
    return min(found)[2] if found else "row"


def stored_model(schema: type[S], raw: Mapping[str, Any]) -> S | None:
    # A record saved before a rule was tightened may no longer validate; it then
    # counts as changed and the import rewrites it.
    try:
        return schema.model_validate(dict(raw))
    except ValidationError:
        return None


def classify(item: Item[Any]) -> str:
    if item.existing_id is None:
        return CREATED
    if item.stored is None or any(is_pending(r) for r in item.refs.values()):
        return UPDATED
    return UNCHANGED if item.desired == item.stored else UPDATED


def write_order(items: list[Item[S]]) -> list[Item[S]]:
    """File order, except that a row another row refers to goes first where it can.

    Writing a manager before their reports lets most references resolve on the
    first write; only loops need the second pass. Iterative, since reporting lines
    can be as deep as the file is long.
    """
    by_key = {i.key: i for i in items}
    done: set[str] = set()
    order: list[Item[S]] = []
    for root in items:
        if root.key in done:
            continue
        stack: list[tuple[Item[S], list[str]]] = [(root, list(root.after))]
        on_stack = {root.key}
        while stack:
            item, todo = stack[-1]
            nxt = None
            while todo:
                k = todo.pop(0)
                if k in by_key and k not in done and k not in on_stack:
                    nxt = by_key[k]
                    break
            if nxt is not None:
                stack.append((nxt, list(nxt.after)))
                on_stack.add(nxt.key)
                continue
            stack.pop()
            on_stack.discard(item.key)
            if item.key not in done:
                done.add(item.key)
                order.append(item)
    return order


def resolve(
    item: Item[S], ids: Mapping[str, int], final: bool
) -> tuple[dict[str, Any], bool]:
    """Reference fields with ids; on a first pass, an unresolved one keeps its stored value."""
    out: dict[str, Any] = {}
    complete = True
    for name, ref in item.refs.items():
        if isinstance(ref, list):
            got = [r if not isinstance(r, Pending) else ids.get(r.key) for r in ref]
            if any(g is None for g in got):
                complete = False
            out[name] = sorted(g for g in got if g is not None)
            continue
        if isinstance(ref, Pending):
            rid = ids.get(ref.key)
            if rid is None:
                complete = False
                rid = getattr(item.stored, name, None) if item.stored is not None else None
            out[name] = rid
        else:
            out[name] = ref
    if final and not complete:
        raise RuntimeError(f"unresolved reference on line {item.line}")  # a planning bug, not bad input
    return out, complete


def write_items(
    items: list[Item[S]],
    ids: dict[str, int],
    create: Callable[[S], int],
    update: Callable[[int, S], None],
) -> None:
    """Write changed items in dependency order; references to later rows are set in a second pass."""
    second: list[Item[S]] = []
    for item in write_order(items):
        if item.outcome == UNCHANGED:
            continue
        refs, complete = resolve(item, ids, final=False)
        data = item.desired.model_copy(update=refs)
        with at_line(item.line):
            if item.existing_id is None:
                ids[item.key] = create(data)
            else:
                update(item.existing_id, data)
        if not complete:
            second.append(item)
    for item in second:
        refs, _ = resolve(item, ids, final=True)
        with at_line(item.line):
            update(ids[item.key], item.desired.model_copy(update=refs))


@contextmanager
def at_line(line: int) -> Iterator[None]:
    """A service refusal during the write phase, re-raised with the file line.

    The plan should have caught it; raising (not reporting) makes the caller's
    transaction roll back whatever this import already wrote.
    """
    try:
        yield
    except (ValidationFailed, Conflict) as exc:
        found = [FieldError(e.field, e.message, line) for e in exc.errors] or [FieldError("row", exc.detail, line)]
        raise ValidationFailed(f"line {line}: {exc.detail}; nothing was imported", found) from exc


def first_lines(rows: list[Row], column: str, errors: ErrorCollector, fold: bool = False) -> dict[str, int]:
    """Where each value of a column that must be unique in the file first appears.

    A repeat is an error naming both lines, and its row is marked bad.
    """
    seen: dict[str, int] = {}
    for row in rows:
        value = row.values.get(column)
        if not value:
            continue
        k = value.lower() if fold else value
        if k in seen:
            errors.add(
                column, f"{value!r} is also on line {seen[k]}: each {column} may appear once in a file", row.line
            )
            row.bad = True
        else:
            seen[k] = row.line
    return seen


def overlay(raw: dict[str, Any], row: Row, spec: Iterable[Column]) -> dict[str, Any]:
    """The stored fields (or none, for a new record) with the file's columns laid over them."""
    for col in spec:
        if col.field is not None and col.name in row.values:
            raw[col.field] = row.values[col.name]
    return raw


class Importer(ABC):
    """One register's import and export."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    @abstractmethod
    def plan(self, rows: list[Row], errors: ErrorCollector) -> list[Item[Any]]: ...

    @abstractmethod
    def write(self, items: list[Item[Any]]) -> None: ...

    @abstractmethod
    def export_rows(self) -> list[dict[str, Any]]:
        """Column name -> value, one dict per record, in a stable order."""
