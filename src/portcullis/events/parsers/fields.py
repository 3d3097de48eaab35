"""What the configured parsers share: JSON records, dotted field paths, and times in a configured format and zone.

Times are read on the hot path of ingestion, so the common shapes avoid `strptime` (about 4 us a value): a
fixed-width strftime format is cut by position and handed to the C `fromisoformat`, and a wall-clock time in an
IANA zone takes its UTC offset from a per-hour cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portcullis.events.parsers.base import Malformed, config_error

# What a time value can fail with: a bad text, a wrong type, a number out of range.
TIME_ERRORS: Final = (ValueError, TypeError, OverflowError, OSError)

MISSING: Final[Any] = object()

_JSON_TYPES: Final[dict[type, str]] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def load_record(raw: str) -> dict[str, Any] | None:
    """The JSON object of a one-per-line record; None for a blank line between records."""
    try:
        return load_object(raw)
    except Malformed:
        if not raw.strip():
            return None
        raise


def load_object(raw: str) -> dict[str, Any]:
    """The JSON object in one record, or Malformed saying where the JSON breaks."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno} (char {exc.pos})") from exc
    except RecursionError as exc:
        raise Malformed("not JSON that can be read: nested too deeply") from exc
    if type(value) is not dict:
        raise Malformed(f"not a JSON object but {json_type(value)}")
    return value


def text(value: object) -> str:
    """A scalar JSON value as text ("" for null); raises TypeError for an object or an array."""
    if type(value) is str:
        return value
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(json_type(value))


class FieldPath:
    """A dotted path into a JSON record, e.g. "user.name"."""

    __slots__ = ("keys", "path")

    def __init__(self, path: object, field: str) -> None:
        if not isinstance(path, str) or not path.strip():
            raise config_error(field, "must be a dotted path such as 'user.name'")
        keys = tuple(path.split("."))
        if not all(keys):
            raise config_error(field, f"{path!r} has an empty segment")
        self.path = path
        self.keys = keys

    def get(self, record: Mapping[str, Any]) -> Any:
        """The value at the path, or MISSING."""
        value: Any = record
        for key in self.keys:
            if type(value) is not dict:
                value = MISSING
                break
            value = value.get(key, MISSING)
            if value is MISSING:
                break
        if value is MISSING and len(self.keys) > 1:
            # Some shippers flatten documents into literal dotted keys ({"user.name": ...}).
            value = record.get(self.path, MISSING)
        return value


def config_str(config: Mapping[str, Any], key: str, default: str | None = None, *, field: str | None = None) -> str:
    """A required (default None) or defaulted text setting."""
    value = config.get(key, default)
    where = field or key
    if value is None:
        raise config_error(where, "is required")
    if not isinstance(value, str) or not value:
        raise config_error(where, "must be a non-empty text")
    return value


def config_map(config: Mapping[str, Any], key: str, *, required: bool = False) -> dict[str, str]:
    """A text-to-text mapping setting ({} when absent and not required)."""
    value = config.get(key)
    if value is None:
        if required:
            raise config_error(key, "is required")
        return {}
    if not isinstance(value, Mapping):
        raise config_error(key, "must be a mapping of text to text")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str) or not v:
            raise config_error(f"{key}.{k}", "must map a text to a non-empty text")
        out[k] = v
    if required and not out:
        raise config_error(key, "must not be empty")
    return out


def zone_named(name: object, field: str = "timezone") -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise config_error(field, "must be an IANA time zone name such as 'Europe/Paris'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise config_error(field, f"unknown IANA time zone {name!r}") from None


# Fixed-width strftime directives and their widths; a format made only of these and literal characters is
# cut by position instead of going through strptime.
_WIDTHS: Final = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
_DIRECTIVE: Final = re.compile(r"%(.)")
_SAMPLE: Final = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)


class _WallClock:
    """Wall-clock times in one zone to UTC; the offset of each local hour is computed once."""

    __slots__ = ("_offsets", "utc", "zone")

    _LIMIT: Final = 50_000

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        # Only a shortcut: any other zone, fixed at +00:00 or not, goes through the offset cache.
        self.utc = zone.key in ("UTC", "Etc/UTC", "Etc/UCT", "UCT", "Zulu", "Etc/Zulu", "Universal", "GMT", "Etc/GMT")
        # hour key -> offset to subtract, or None when the offset changes within that hour.
        self._offsets: dict[object, timedelta | None] = {}

    def _hour_offset(self, naive: datetime) -> timedelta | None:
        start = naive.replace(minute=0, second=0, microsecond=0)
        first = self.zone.utcoffset(start)
        last = self.zone.utcoffset(start + timedelta(minutes=59, seconds=59, microseconds=999_999))
        return first if first == last else None

    def from_naive(self, naive: datetime) -> datetime:
        if self.utc:
            return naive.replace(tzinfo=UTC)
        key = naive.toordinal() * 24 + naive.hour
        offsets = self._offsets
        if key not in offsets:
            if len(offsets) > self._LIMIT:
                offsets.clear()
            offsets[key] = self._hour_offset(naive)
        offset = offsets[key]
        if offset is None:
            # An hour holding a transition: zoneinfo's rule (fold=0: the earlier reading) per value.
            return naive.replace(tzinfo=self.zone).astimezone(UTC)
        return naive.replace(tzinfo=UTC) - offset

    def from_iso(self, iso: str) -> datetime:
        """`iso` is a canonical local "YYYY-MM-DD?HH:MM[:SS]" text without offset."""
        if self.utc:
            return datetime.fromisoformat(iso + "+00:00")
        key = iso[:13]
        offsets = self._offsets
        if key not in offsets:
            if len(offsets) > self._LIMIT:
                offsets.clear()
            offsets[key] = self._hour_offset(datetime.fromisoformat(iso))
        offset = offsets[key]
        if offset is None:
            return datetime.fromisoformat(iso).replace(tzinfo=self.zone).astimezone(UTC)
        return datetime.fromisoformat(iso + "+00:00") - offset


class _FixedWidth:
    """A strftime format of fixed-width numeric fields, read by slicing (strptime as the lenient fallback)."""

    __slots__ = ("_clock", "_fmt", "_iso_shaped", "_literals", "_slices", "_width")

    def __init__(
        self,
        fmt: str,
        slices: dict[str, tuple[int, int]],
        literals: list[tuple[int, str]],
        width: int,
        clock: _WallClock,
    ) -> None:
        self._fmt = fmt
        self._clock = clock
        self._width = width
        self._slices = (slices["Y"], slices["m"], slices["d"], slices["H"], slices["M"], slices.get("S"))
        self._iso_shaped = _is_iso_shaped(slices, dict(literals))
        # fromisoformat checks the dashes and colons of an ISO-shaped text itself; only the separator is left.
        self._literals = tuple((p, c) for p, c in literals if p == 10) if self._iso_shaped else tuple(literals)

    def __call__(self, value: object) -> datetime:
        if type(value) is not str:
            raise TypeError("not a text")
        try:
            return self._clock.from_iso(self._canonical(value))
        except ValueError:
            naive = datetime.strptime(value, self._fmt)
            return naive.astimezone(UTC) if naive.tzinfo is not None else self._clock.from_naive(naive)

    def _canonical(self, s: str) -> str:
        if len(s) != self._width:
            raise ValueError("width")
        for pos, char in self._literals:
            if s[pos] != char:
                raise ValueError("literal")
        if self._iso_shaped:
            return s
        (y0, y1), (m0, m1), (d0, d1), (h0, h1), (n0, n1), sec = self._slices
        seconds = s[sec[0] : sec[1]] if sec is not None else "00"
        return f"{s[y0:y1]}-{s[m0:m1]}-{s[d0:d1]}T{s[h0:h1]}:{s[n0:n1]}:{seconds}"


def _is_iso_shaped(slices: dict[str, tuple[int, int]], literals: dict[int, str]) -> bool:
    """Whether the text itself is what fromisoformat reads: YYYY-MM-DD?HH:MM[:SS]."""
    iso = {"Y": (0, 4), "m": (5, 7), "d": (8, 10), "H": (11, 13), "M": (14, 16)}
    if any(slices[k] != v for k, v in iso.items()):
        return False
    marks = {4: "-", 7: "-", 13: ":"}
    if "S" in slices:
        if slices["S"] != (17, 19):
            return False
        marks[16] = ":"
    return all(literals.get(p) == c for p, c in marks.items()) and 10 in literals


def _fixed_width(fmt: str, clock: _WallClock) -> _FixedWidth | None:
    slices: dict[str, tuple[int, int]] = {}
    literals: list[tuple[int, str]] = []
    pos = 0
    i = 0
    while i < len(fmt):
        if fmt[i] != "%":
            literals.append((pos, fmt[i]))
            pos += 1
            i += 1
            continue
        directive = fmt[i + 1 : i + 2]
        if directive not in _WIDTHS or directive in slices:
            return None
        slices[directive] = (pos, pos + _WIDTHS[directive])
        pos += _WIDTHS[directive]
        i += 2
    if not {"Y", "m", "d", "H", "M"} <= slices.keys():
        return None
    return _FixedWidth(fmt, slices, literals, pos, clock)


class TimeFormat:
    """How a source writes its times: "iso8601", "epoch" (seconds), "epoch_ms", or a strftime format, with the
    IANA zone that times without an offset are in. `parse` raises one of TIME_ERRORS for a value that does not fit.
    """

    __slots__ = ("expected", "parse")

    def __init__(
        self,
        spec: object = "iso8601",
        timezone: object = "UTC",
        *,
        field: str = "time_format",
        timezone_field: str = "timezone",
    ) -> None:
        if not isinstance(spec, str) or not spec:
            raise config_error(field, "must be 'iso8601', 'epoch', 'epoch_ms' or a strftime format")
        clock = _WallClock(zone_named(timezone, timezone_field))
        self.parse: Callable[[object], datetime]
        if spec == "iso8601":
            self.expected = "an ISO 8601 time"
            self.parse = _iso_reader(clock)
        elif spec == "epoch":
            self.expected = "epoch seconds"
            self.parse = _epoch_seconds
        elif spec == "epoch_ms":
            self.expected = "epoch milliseconds"
            self.parse = _epoch_millis
        else:
            _check_strftime(spec, field)
            self.expected = f"of the form {spec!r}"
            fixed = _fixed_width(spec, clock)
            self.parse = fixed if fixed is not None else _strptime_reader(spec, clock)

    def malformed(self, value: object, where: str) -> Malformed:
        shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
        return Malformed(f"{where}: time {shown} is not {self.expected}")


def _check_strftime(spec: str, field: str) -> None:
    directives = _DIRECTIVE.findall(spec)
    if not directives:
        raise config_error(field, f"{spec!r} is not 'iso8601', 'epoch', 'epoch_ms' or a strftime format")
    try:
        datetime.strptime(_SAMPLE.strftime(spec), spec)
    except ValueError as exc:
        raise config_error(field, f"{spec!r} is not a usable strftime format: {exc}") from None


def _iso_reader(clock: _WallClock) -> Callable[[object], datetime]:
    fromiso = datetime.fromisoformat

    def parse(value: object) -> datetime:
        if type(value) is not str:
            raise TypeError("not a text")
        when = fromiso(value)
        tz = when.tzinfo
        if tz is UTC:
            return when
        if tz is None:
            return clock.from_naive(when)
        return when.astimezone(UTC)

    return parse


def _strptime_reader(fmt: str, clock: _WallClock) -> Callable[[object], datetime]:
    def parse(value: object) -> datetime:
        if type(value) is not str:
            raise TypeError("not a text")
        when = datetime.strptime(value, fmt)
        return when.astimezone(UTC) if when.tzinfo is not None else clock.from_naive(when)

    return parse


def _number(value: object) -> int | float:
    if type(value) is int or type(value) is float:
        return value
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            return float(value)
    raise TypeError("not a number")


def _epoch_seconds(value: object) -> datetime:
    return datetime.fromtimestamp(_number(value), UTC)


def _epoch_millis(value: object) -> datetime:
    # Dividing by 1000 is exact to the microsecond for any date before year 2200 (float spacing < 1 us there).
    return datetime.fromtimestamp(_number(value) / 1000, UTC)


__all__ = [
    "MISSING",
    "TIME_ERRORS",
    "FieldPath",
    "TimeFormat",
    "config_map",
    "config_str",
    "json_type",
    "load_object",
    "text",
    "zone_named",
]
