"""Syslog lines: RFC 3164 ("Dec 10 06:55:46 host sshd[24200]: msg"), RFC 5424 and RFC 3339-stamped lines.

RFC 3164 timestamps carry neither year nor zone. The zone comes from the source's
configuration; the year starts at the configured one and advances when the month
goes back by more than six months from the previous record's (a December line
followed by a January one). The year and that month are the parser's state, so a
restarted parser continues where it stopped.

A line whose timestamp begins with four digits ("2024-05-01T12:00:00.1+02:00 host
prog: msg", rsyslog's high-precision file format) is read like RFC 3164 with that
timestamp; it needs no year.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, ClassVar, TypeGuard
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.events.parsers.base import Event, Malformed, config_error
from portcullis.events.parsers.messages import classify

MONTHS = {
    m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)
}
# A month more than this far behind the previous record's is taken to be in the next year.
ROLLOVER_MONTHS = 6
# The program tag ("sshd[24200]", "syslogd 1.4.1"); a longer "tag" is a message with no tag at all.
MAX_TAG = 64
MAX_PRI = 191
TIME_CACHE = 4096
NIL = "-"
# What sysklogd and BSD syslogd write themselves, with no program tag.
UNTAGGED = ("last message repeated ", "--- last message repeated ")
# The common shape, taken in one match: "<pri>Mmm dd hh:mm:ss host prog[pid]: ".
_RFC3164 = re.compile(
    r"(?:<(\d{1,3})>)?([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) +([^:\[ ][^:\[]{0,63})(?:\[\d*\])?: "
)


class SyslogParser:
    """Config: "year" (RFC 3164's first year, default the current UTC year) and "timezone" (IANA, default UTC).
    A saved state's year wins over the configured one: it is where the stream has got to."""

    name: ClassVar[str] = "syslog"
    framing: ClassVar[str] = "lines"

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self._zone: tzinfo | None = _zone(config.get("timezone", "UTC"))
        year = config.get("year")
        if year is None:
            year = datetime.now(UTC).year
        elif not _is_year(year):
            raise config_error("year", f"must be a whole year between 1 and 9999, not {year!r}")
        self._year: int = year
        self._last_month = 0
        self._times: dict[str, tuple[int, datetime]] = {}
        if state:
            self._year, self._last_month = _restore(state)

    def state(self) -> dict[str, Any]:
        return {"year": self._year, "last_month": self._last_month}

    def parse(self, raw: str) -> Event | None:
        line = raw.rstrip()
        m = _RFC3164.match(line)
        if m is None:
            return self._parse_slowly(line)
        pri, stamp, host, program = m.groups()
        month = MONTHS.get(stamp[:3])
        if month is None or (pri is not None and int(pri) > MAX_PRI):
            return self._parse_slowly(line)
        # _event's work, inlined: this is the path nearly every line takes.
        # Busy hosts write many lines per second: one datetime per distinct stamp.
        year = self._year
        if self._last_month - month > ROLLOVER_MONTHS:
            year += 1
        cached = self._times.get(stamp)
        time = cached[1] if cached is not None and cached[0] == year else self._time(stamp, year, month)
        event = classify(program, line[m.end() :], time, host)
        self._year = year
        self._last_month = month
        return event

    def _event(self, stamp: str, month: int, host: str, program: str, message: str) -> Event:
        year = self._year
        if self._last_month - month > ROLLOVER_MONTHS:
            year += 1
        cached = self._times.get(stamp)
        time = cached[1] if cached is not None and cached[0] == year else self._time(stamp, year, month)
        event = classify(program, message, time, host)
        self._year = year
        self._last_month = month
        return event

    def _parse_slowly(self, line: str) -> Event:
        """Lines the fast pattern does not take: RFC 5424, RFC 3339 stamps, odd tags, and the malformed."""
        if not line:
            raise Malformed("empty line")
        pos = 0
        if line[0] == "<":
            pos = _pri_end(line)
            if pos >= len(line):
                raise Malformed(f"line cut after the priority {line!r}: no timestamp")
            c = line[pos]
            if "0" <= c <= "9":
                # "<34>2024-05-01T..." is a dated RFC 3164 line; "<34>1 2024-..." is RFC 5424 version 1.
                return _rfc3339_line(line, pos) if line[pos + 4 : pos + 5] == "-" else _rfc5424(line, pos)
        elif "0" <= line[0] <= "9":
            return _rfc3339_line(line, pos)
        stamp = line[pos : pos + 15]
        month = MONTHS.get(stamp[:3])
        if month is None or line[pos + 15 : pos + 16] != " ":
            raise Malformed(_bad_stamp(line, pos))
        host, program, message = _host_tag(line, pos + 16)
        return self._event(stamp, month, host, program, message)

    def _time(self, stamp: str, year: int, month: int) -> datetime:
        """The UTC time of "Mmm dd hh:mm:ss" in `year` and the configured zone, checked, and cached."""
        try:
            if stamp[3] != " " or stamp[6] != " " or stamp[9] != ":" or stamp[12] != ":":
                raise ValueError("expected 'Mmm dd hh:mm:ss'")
            digits = stamp[4:6].lstrip() + stamp[7:9] + stamp[10:12] + stamp[13:15]
            if not (digits.isascii() and digits.isdigit()):
                raise ValueError("expected digits in 'dd hh:mm:ss'")
            day, hour, minute, second = int(stamp[4:6]), int(stamp[7:9]), int(stamp[10:12]), int(stamp[13:15])
            if self._zone is None:
                time = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            else:
                time = datetime(year, month, day, hour, minute, second, tzinfo=self._zone).astimezone(UTC)
        except ValueError as e:
            raise Malformed(f"timestamp {stamp!r} does not parse: {e}") from None
        if len(self._times) >= TIME_CACHE:
            self._times.clear()
        self._times[stamp] = (year, time)
        return time


def _bad_stamp(line: str, pos: int) -> str:
    stamp = line[pos : pos + 15]
    if len(line) < pos + 16:
        return f"line cut in the header: {line[pos:]!r} is not a full 'Mmm dd hh:mm:ss host' header"
    if stamp[:3] not in MONTHS:
        return f"timestamp {stamp!r} does not parse: {stamp[:3]!r} is not a month name (Jan..Dec)"
    return f"timestamp {line[pos : pos + 16]!r} does not parse: expected a space after 'Mmm dd hh:mm:ss'"


def _zone(name: Any) -> tzinfo | None:
    """None for UTC (the common case, converted without a zone look-up)."""
    if not isinstance(name, str) or not name:
        raise config_error("timezone", f"must be an IANA zone name such as 'Europe/Paris', not {name!r}")
    if name in ("UTC", "Etc/UTC", "Z"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise config_error("timezone", f"{name!r} is not a known IANA zone name") from None


def _is_year(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 9999


def _restore(state: Mapping[str, Any]) -> tuple[int, int]:
    year = state.get("year")
    month = state.get("last_month", 0)
    if not _is_year(year):
        raise ValidationFailed("The syslog parser's saved state is not usable", [FieldError("state.year", repr(year))])
    if not isinstance(month, int) or isinstance(month, bool) or not 0 <= month <= 12:
        raise ValidationFailed(
            "The syslog parser's saved state is not usable", [FieldError("state.last_month", repr(month))]
        )
    return year, month


def _pri_end(line: str) -> int:
    """The index just after "<PRI>", checked: 1 to 3 digits, at most 191."""
    end = line.find(">", 1, 5)
    pri = line[1:end] if end > 0 else ""
    if not (pri.isascii() and pri.isdigit()) or int(pri) > MAX_PRI:
        shown = line[:5]
        raise Malformed(f"priority {shown!r} is not '<0>'..'<191>'")
    return end + 1


def _host_tag(line: str, pos: int) -> tuple[str, str, str]:
    """Host, program and message from "host prog[pid]: msg" starting at `pos`."""
    sp = line.find(" ", pos)
    if sp < 0:
        raise Malformed(f"line cut in the header after {line[pos:]!r}: no program tag")
    host = line[pos:sp]
    start = len(line) - len(line[sp + 1 :].lstrip(" "))
    colon = line.find(": ", start, start + MAX_TAG + 2)
    if colon < 0:
        if line.endswith(":") and len(line) - start <= MAX_TAG + 1:
            colon = len(line) - 1
        elif line.startswith(UNTAGGED, start):
            return host, "", line[start:]
        else:
            shown = line[start : start + 40]
            raise Malformed(
                f"no program tag ending in ':' after the host {host!r} (line cut in the header?): {shown!r}"
            )
    tag = line[start:colon]
    if not tag:
        raise Malformed(f"empty program tag after the host {host!r}")
    program = tag
    if tag[-1] == "]":
        bracket = tag.rfind("[")
        if bracket > 0:
            program = tag[:bracket]
    return host, program, line[colon + 2 :]


def _iso_time(text: str, what: str) -> datetime:
    """An RFC 3339 timestamp with its offset, in UTC."""
    try:
        if len(text) < 19 or text[10] not in "Tt":
            raise ValueError("expected 'YYYY-MM-DDThh:mm:ss' and an offset")
        time = datetime.fromisoformat(text)
    except ValueError as e:
        raise Malformed(f"{what} {text!r} does not parse: {e}") from None
    if time.tzinfo is None:
        raise Malformed(f"{what} {text!r} has no UTC offset ('Z' or '+hh:mm')")
    return time.astimezone(UTC)


def _rfc3339_line(line: str, pos: int) -> Event:
    sp = line.find(" ", pos)
    if sp < 0:
        raise Malformed(f"line cut in the header: {line[pos:]!r} has no host after the timestamp")
    time = _iso_time(line[pos:sp], "timestamp")
    host, program, message = _host_tag(line, sp + 1)
    return classify(program, message, time, host)


_RFC5424_FIELDS = ("version", "timestamp", "hostname", "app-name", "procid", "msgid")


def _rfc5424(line: str, pos: int) -> Event:
    parts = line[pos:].split(" ", 6)
    if parts[0] != "1":
        raise Malformed(f"RFC 5424 version {parts[0]!r} is not supported (only 1)")
    if len(parts) < 7:
        raise Malformed(
            f"RFC 5424 header cut after the {_RFC5424_FIELDS[len(parts) - 1]} field: no structured data follows"
        )
    _version, stamp, host, app, _procid, _msgid, rest = parts
    if not rest:
        raise Malformed("RFC 5424 structured data is empty: expected '-' or '[id ...]' after the msgid field")
    if stamp == NIL:
        raise Malformed("RFC 5424 timestamp is nil ('-'): the event has no time")
    time = _iso_time(stamp, "RFC 5424 timestamp")
    sd_start = len(line) - len(rest)
    end = _structured_data_end(line, sd_start)
    if end == len(line):
        message = ""
    elif line[end] == " ":
        message = line[end + 1 :]
        if message.startswith("\ufeff"):
            message = message[1:]
    else:
        raise Malformed(f"RFC 5424 structured data ends at column {end + 1} with {line[end]!r} instead of a space")
    return classify("" if app == NIL else app, message, time, "" if host == NIL else host)


def _structured_data_end(line: str, i: int) -> int:
    """The index after the STRUCTURED-DATA starting at `i` ("-" or "[id k="v" ...]..."), checked."""
    n = len(line)
    if line[i] == "-":
        return i + 1
    if line[i] != "[":
        raise Malformed(f"RFC 5424 structured data at column {i + 1} is neither '-' nor '[': {line[i : i + 20]!r}")
    while i < n and line[i] == "[":
        start = i
        i = _sd_name_end(line, i + 1, "element id")
        while i < n and line[i] == " ":
            j = _sd_name_end(line, i + 1, "parameter name")
            if line[j : j + 2] != '="':
                raise Malformed(f"RFC 5424 structured data: parameter at column {i + 2} lacks '=\"value\"'")
            i = j + 2
            while True:
                if i >= n:
                    raise Malformed(f"RFC 5424 structured data: value opened at column {j + 2} is not closed by '\"'")
                c = line[i]
                if c == "\\":
                    i += 2
                elif c == '"':
                    i += 1
                    break
                else:
                    i += 1
        if i >= n or line[i] != "]":
            raise Malformed(f"RFC 5424 structured data: element opened at column {start + 1} is not closed by ']'")
        i += 1
    return i


def _sd_name_end(line: str, i: int, what: str) -> int:
    """The end of an SD-NAME (1 to 32 printable ASCII characters other than '=', ' ', ']' and '"') at `i`."""
    j = i
    n = len(line)
    while j < n and "!" <= line[j] <= "~" and line[j] not in '= ]"':
        j += 1
    if j == i or j - i > 32:
        raise Malformed(f"RFC 5424 structured data: {what} at column {i + 1} is empty or longer than 32 characters")
    return j
