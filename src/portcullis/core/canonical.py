"""RFC 8785 (JCS) canonical JSON: the exact bytes the ledger hashes."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import rfc8785

from portcullis.core.clock import as_utc


def jsonable(value: Any) -> Any:
    """Reduce Python values to the JSON types JCS accepts, deterministically."""
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value  # enums
    return value


def canonical_bytes(value: Any) -> bytes:
    return rfc8785.dumps(jsonable(value))
