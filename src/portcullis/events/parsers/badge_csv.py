"""Badge-reader exports as CSV: one entry to a zone per row (guidelines §18, the record of each entry to premises).

Which column holds what is configured, not coded, and so is the map from a reader's or zone's label to the
Portcullis zone it guards. The header line names the columns; it is remembered in the parser's state, so a
restart in the middle of a file keeps reading rows by the same columns.

Rows are cut with a plain `str.split` and only lines holding a quote go through the `csv` module: split is
exact for an unquoted line and ten times cheaper.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome, config_error
from portcullis.events.parsers.fields import TIME_ERRORS, TimeFormat, config_map, config_str

_ROLES = ("time", "badge", "zone", "outcome", "reader")
_REQUIRED = ("time", "badge", "zone")


class _Columns:
    """The configured column names per role; `zone` may be several columns joined with "/"."""

    def __init__(self, config: object) -> None:
        if not isinstance(config, Mapping):
            raise config_error("columns", "must map time, badge and zone (and optionally outcome, reader) to columns")
        unknown = sorted(set(config) - set(_ROLES))
        if unknown:
            raise config_error(f"columns.{unknown[0]}", f"is not one of {', '.join(_ROLES)}")
        for role in _REQUIRED:
            if config.get(role) is None:
                raise config_error(f"columns.{role}", "is required")
        self.time = _column_name(config["time"], "columns.time")
        self.badge = _column_name(config["badge"], "columns.badge")
        zone = config["zone"]
        names = [zone] if isinstance(zone, str) else zone
        if not isinstance(names, list) or not names:
            raise config_error("columns.zone", "must be a column name or a non-empty list of column names")
        self.zone = tuple(_column_name(n, f"columns.zone[{i}]") for i, n in enumerate(names))
        self.outcome = _column_name(config["outcome"], "columns.outcome") if config.get("outcome") else None
        self.reader = _column_name(config["reader"], "columns.reader") if config.get("reader") else None
        if self.time == self.badge:
            raise config_error("columns.badge", "must not be the time column")

    def wanted(self) -> list[str]:
        names = [self.time, self.badge, *self.zone]
        return names + [n for n in (self.outcome, self.reader) if n is not None]


def _column_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise config_error(field, "must be a column name")
    return value.strip()


def _names(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(h, str) for h in value)


class _Layout:
    """Column positions in one file's header."""

    __slots__ = ("badge", "outcome", "reader", "time", "width", "zone")

    def __init__(self, header: Sequence[str], columns: _Columns) -> None:
        position: dict[str, int] = {}
        for i, name in enumerate(header):
            position.setdefault(name, i)
        for name in columns.wanted():
            if name not in position:
                raise ValueError(f"the header has no column {name!r} (it has: {', '.join(header)})")
            if header.count(name) > 1:
                raise ValueError(f"the header has column {name!r} more than once")
        self.width = len(header)
        self.time = position[columns.time]
        self.badge = position[columns.badge]
        self.zone = tuple(position[n] for n in columns.zone)
        self.outcome = position[columns.outcome] if columns.outcome is not None else None
        self.reader = position[columns.reader] if columns.reader is not None else None


class BadgeCsvParser:
    """Config: columns {time, badge, zone (one name or a list), outcome?, reader?}, time_format, timezone,
    delimiter, zones {label: zone external id}, outcomes {value: success|failure|unknown}, header? (for files
    without a header line)."""

    name: ClassVar[str] = "badge-csv"
    framing: ClassVar[str] = "lines"

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self._columns = _Columns(config.get("columns"))
        self._time = TimeFormat(config.get("time_format", "iso8601"), config.get("timezone", "UTC"))
        delimiter = config_str(config, "delimiter", ",")
        if len(delimiter) != 1 or delimiter in '"\r\n ':
            raise config_error("delimiter", "must be one character, not a quote, a space or a line break")
        self._delimiter = delimiter
        self._zones = {label.strip(): zone for label, zone in config_map(config, "zones", required=True).items()}
        self._outcomes = {o.value: o for o in Outcome}
        for value, outcome in config_map(config, "outcomes").items():
            if outcome not in self._outcomes:
                raise config_error(f"outcomes.{value}", f"must be one of {', '.join(o.value for o in Outcome)}")
            self._outcomes[value.strip().lower()] = Outcome(outcome)
        self._header: list[str] | None = None
        self._layout: _Layout | None = None
        self._header_problem = ""
        configured = config.get("header")
        if configured is not None and not _names(configured):
            raise config_error("header", "must be a list of column names")
        saved = (state or {}).get("header")
        if saved is not None and not _names(saved):
            raise ValueError(f"state.header must be a list of column names, not {saved!r}")
        header = saved if saved is not None else configured
        if header is not None:
            self._adopt([h.strip() for h in header])

    def state(self) -> dict[str, Any]:
        return {"header": list(self._header)} if self._header is not None else {}

    def parse(self, raw: str) -> Event | None:
        layout = self._layout
        if layout is None:
            self._read_header(raw)
            return None
        values = raw.split(self._delimiter) if '"' not in raw else self._split_quoted(raw)
        if len(values) != layout.width:
            self._check_odd_row(raw, values, layout.width)
            return None
        stamp = values[layout.time].strip()
        try:
            when = self._time.parse(stamp)
        except TIME_ERRORS:
            if self._is_header_again(values):
                return None
            raise self._time.malformed(stamp, f"column {self._columns.time!r}") from None
        zone = layout.zone
        if len(zone) == 1:
            label = values[zone[0]].strip()
        elif len(zone) == 2:
            label = values[zone[0]].strip() + "/" + values[zone[1]].strip()
        else:
            label = "/".join([values[i].strip() for i in zone])
        target = self._zones.get(label)
        if target is None:
            raise Malformed(f"zone {label!r} is not mapped (add it to the source's zones)")
        badge = values[layout.badge].strip()
        if not badge:
            raise Malformed(f"empty badge id in column {self._columns.badge!r}")
        outcome = Outcome.SUCCESS if layout.outcome is None else self._outcome(values[layout.outcome])
        detail = label if layout.reader is None else values[layout.reader].strip()
        # Positional: keyword arguments would add a seventh to the cost of a row.
        return Event(
            when,
            Category.PHYSICAL_ENTRY,
            "entry",
            outcome,
            badge,
            ActorKind.BADGE,
            target,
            "",
            "",
            Method.BADGE,
            False,
            detail,
        )

    def _outcome(self, value: str) -> Outcome:
        seen = value.strip()
        outcome = self._outcomes.get(seen.lower())
        if outcome is None:
            raise Malformed(
                f"outcome {seen!r} in column {self._columns.outcome!r} is not mapped "
                f"(known: {', '.join(sorted(self._outcomes))})"
            )
        return outcome

    def _split_quoted(self, raw: str) -> list[str]:
        try:
            return next(csv.reader([raw], delimiter=self._delimiter, skipinitialspace=True, strict=True), [])
        except csv.Error as exc:
            raise Malformed(f"broken CSV quoting: {exc}") from exc

    def _read_header(self, raw: str) -> None:
        line = raw.lstrip("\ufeff").strip()
        if not line:
            return None
        if self._header is not None:
            raise Malformed(f"no row can be read: {self._header_problem}")
        if line.lower().startswith("sep="):
            # The delimiter hint spreadsheet programs write above the header.
            return None
        values = line.split(self._delimiter) if '"' not in line else self._split_quoted(line)
        self._adopt([v.strip() for v in values])
        if self._layout is None:
            raise Malformed(self._header_problem)
        return None

    def _adopt(self, header: list[str]) -> None:
        self._header = header
        try:
            self._layout = _Layout(header, self._columns)
        except ValueError as exc:
            self._layout = None
            self._header_problem = str(exc)

    def _check_odd_row(self, raw: str, values: list[str], width: int) -> None:
        """A row of another width is blank, the header again, or Malformed."""
        if not raw.strip() or self._is_header_again(values):
            return
        raise Malformed(f"expected {width} columns, found {len(values)}")

    def _is_header_again(self, values: list[str]) -> bool:
        """A file that repeats its header (exports concatenated, a rotated file) is not wrong."""
        return [v.strip() for v in values] == self._header
