"""RFC 8785 (JCS) canonical JSON: the exact bytes the ledger hashes.

The stdlib's C encoder with sorted keys and no whitespace already produces JCS
for strings, integers within +-2**53, booleans and null with keys inside the
Basic Multilingual Plane. It is about five times faster than a pure-Python JCS,
which matters on the ingestion path, so it is used whenever the value stays in
that domain; anything else (floats, huge integers, astral-plane keys) goes
through the rfc8785 library.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Any

import rfc8785

from portcullis.core.clock import as_utc

_SAFE_INT = 2**53
_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


class _Domain:
    __slots__ = ("plain",)

    def __init__(self) -> None:
        self.plain = True


def _reduce(value: Any, domain: _Domain) -> Any:
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -_SAFE_INT < value < _SAFE_INT:
            domain.plain = False
        return value
    if isinstance(value, float):
        domain.plain = False
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = k.value if isinstance(k, Enum) else str(k)
            if not key.isascii() and any(ord(c) > 0xFFFF for c in key):
                domain.plain = False  # UTF-16 key order differs from code point order
            out[key] = _reduce(v, domain)
        return out
    if isinstance(value, (list, tuple)):
        return [_reduce(v, domain) for v in value]
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _reduce(value.value, domain)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def jsonable(value: Any) -> Any:
    """Reduce Python values (datetimes, dates, enums, bytes) to JSON types, deterministically."""
    return _reduce(value, _Domain())


def canonical_bytes(value: Any) -> bytes:
    domain = _Domain()
    reduced = _reduce(value, domain)
    if domain.plain:
        return _encode(reduced).encode("utf-8")
    return rfc8785.dumps(reduced)
