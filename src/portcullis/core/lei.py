"""ISO 17442 Legal Entity Identifier: 18 alphanumerics and two ISO 7064 MOD 97-10 check digits."""

from __future__ import annotations

import re

_SHAPE = re.compile(r"^[0-9A-Z]{18}[0-9]{2}$")


def _numeric(s: str) -> int:
    # Letters count as 10..35, as in IBAN checking.
    return int("".join(str(int(c, 36)) for c in s))


def lei_problem(value: str) -> str | None:
    """Why `value` is not a valid LEI, or None if it is."""
    if len(value) != 20:
        return f"must be 20 characters, got {len(value)}"
    if not _SHAPE.match(value):
        return "must be 18 letters or digits followed by 2 check digits (upper case)"
    if _numeric(value) % 97 != 1:
        return "check digits do not match (ISO 17442 / ISO 7064 MOD 97-10)"
    return None


def with_check_digits(base18: str) -> str:
    """Complete an 18-character prefix into a valid LEI (for demo data and tests)."""
    check = 98 - _numeric(base18 + "00") % 97
    return f"{base18}{check:02d}"
