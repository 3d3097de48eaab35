"""systemd journal records as `journalctl -o json` writes them, one JSON object per line.

The message is read by the same classifier as syslog's (messages.py), with the
program from SYSLOG_IDENTIFIER (else _COMM) and the host from _HOSTNAME. The
journal writes a field that is not valid text as an array of byte values, and a
field set several times as an array of its values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from portcullis.events.parsers.base import Event, Malformed
from portcullis.events.parsers.messages import classify

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class JournaldParser:
    name: ClassVar[str] = "journald-json"
    framing: ClassVar[str] = "lines"

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        # Journal records carry their own UTC time and host: nothing to configure or remember.
        pass

    def state(self) -> dict[str, Any]:
        return {}

    def parse(self, raw: str) -> Event | None:
        if not raw.strip():
            raise Malformed("empty line")
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            raise Malformed(f"not valid JSON at column {e.colno}: {e.msg}") from None
        if not isinstance(record, dict):
            raise Malformed(f"a journal record must be a JSON object, not {type(record).__name__}")
        if "MESSAGE" not in record:
            raise Malformed("journal record has no MESSAGE field")
        message = _text(record["MESSAGE"], "MESSAGE")
        time = _realtime(record.get("__REALTIME_TIMESTAMP"))
        host = _text(record.get("_HOSTNAME"), "_HOSTNAME")
        program = _text(record.get("SYSLOG_IDENTIFIER"), "SYSLOG_IDENTIFIER") or _text(record.get("_COMM"), "_COMM")
        return classify(program, message.rstrip(), time, host)


def _text(value: Any, field: str) -> str:
    """A journal field's text: a string, or an array of byte values that must be UTF-8; "" when absent."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value):
            data = bytes(value)
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Malformed(
                    f"{field} byte array is not valid UTF-8 at byte {e.start}: {data[e.start : e.end]!r}"
                ) from None
        if value and all(isinstance(v, str | list) for v in value):
            raise Malformed(f"{field} has {len(value)} values; expected one")
    raise Malformed(f"{field} must be a string or an array of byte values, not {json.dumps(value)[:60]}")


def _realtime(value: Any) -> datetime:
    if value is None:
        raise Malformed("journal record has no __REALTIME_TIMESTAMP field")
    text = (
        value
        if isinstance(value, str)
        else str(value)
        if isinstance(value, int) and not isinstance(value, bool)
        else None
    )
    if text is None or not (text.isascii() and text.isdigit()):
        raise Malformed(f"__REALTIME_TIMESTAMP {value!r} is not a number of microseconds since the epoch")
    try:
        return EPOCH + timedelta(microseconds=int(text))
    except OverflowError:
        raise Malformed(f"__REALTIME_TIMESTAMP {value!r} is out of range") from None
