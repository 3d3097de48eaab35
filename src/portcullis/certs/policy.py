"""Expiry policy (§30): when a certificate's renewal starts and which notice is due.

Pure functions of dates, so the scheduler, the pages and the tests agree:
- renewal starts when `fraction` of the lifetime remains (a third by default;
  per certificate, or per criticality of the assets relying on it);
- leaf certificates get notices at 30, 15 and 2 days before expiry, CA
  certificates at 365 and 180 days; only the tightest threshold crossed is due,
  so a certificate first seen 10 days before expiry gets the 15-day notice, not
  the 30-day one as well; after expiry the notice is the escalation ("overdue").
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

LEAF_NOTICE_DAYS = (30, 15, 2)
CA_NOTICE_DAYS = (365, 180)
OVERDUE = "overdue"
DEFAULT_FRACTION = 1 / 3
CRITICALITY_ORDER = ("critical", "important", "other")


def renew_at(not_before: datetime, not_after: datetime, fraction: float) -> datetime:
    """The moment renewal should start: `fraction` of the lifetime before expiry."""
    if not 0 < fraction < 1:
        raise ValueError(f"the renewal fraction is between 0 and 1, not {fraction}")
    return not_after - (not_after - not_before) * fraction


def fraction_for(own: float | None, criticalities: Iterable[str], percent_by_criticality: dict[str, int]) -> float:
    """The certificate's own setting, else the strictest default among its assets' criticalities."""
    if own is not None:
        return own
    found = set(criticalities)
    for level in CRITICALITY_ORDER:
        if level in found:
            return percent_by_criticality[level] / 100
    return percent_by_criticality.get("other", round(DEFAULT_FRACTION * 100)) / 100


def notice_thresholds(is_ca: bool) -> tuple[int, ...]:
    return CA_NOTICE_DAYS if is_ca else LEAF_NOTICE_DAYS


def notice_due(not_after: datetime, now: datetime, is_ca: bool) -> str | None:
    """The notice due now: "overdue" after expiry, else the tightest threshold crossed ("15d"), else None."""
    if now >= not_after:
        return OVERDUE
    left = not_after - now
    for days in sorted(notice_thresholds(is_ca)):
        if left <= timedelta(days=days):
            return f"{days}d"
    return None


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until expiry, negative after it (floor, so "0" means under a day left)."""
    return (not_after - now) // timedelta(days=1)
