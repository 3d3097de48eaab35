"""The expiry policy (§30) at chosen instants, against dates and thresholds fixed here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcullis.certs.policy import DEFAULT_FRACTION, days_left, fraction_for, notice_due, renew_at

EXPIRY = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
# The guideline's numbers, written out rather than read from the module under test.
LEAF = (30, 15, 2)
CA = (365, 180)
PERCENTS = {"critical": 50, "important": 40, "other": 25}


def before_expiry(days: float) -> datetime:
    return EXPIRY - timedelta(days=days)


# -- renewal date ---------------------------------------------------------------------------------------------


def test_renewal_starts_a_third_of_the_lifetime_before_expiry_by_default() -> None:
    # 90 days of life: renewal starts 30 days before expiry.
    assert renew_at(datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC), DEFAULT_FRACTION) == datetime(
        2027, 1, 30, tzinfo=UTC
    )
    # 398 days (the CA/B Forum maximum until 2026): 132 days 16 hours before expiry.
    not_before = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    not_after = not_before + timedelta(days=398)
    assert renew_at(not_before, not_after, DEFAULT_FRACTION) == not_after - timedelta(days=132, hours=16)


def test_renewal_date_follows_the_fraction() -> None:
    not_before = datetime(2026, 1, 1, tzinfo=UTC)
    not_after = datetime(2026, 1, 11, tzinfo=UTC)  # ten days
    assert renew_at(not_before, not_after, 0.5) == datetime(2026, 1, 6, tzinfo=UTC)
    assert renew_at(not_before, not_after, 0.1) == datetime(2026, 1, 10, tzinfo=UTC)
    assert renew_at(not_before, not_after, 0.9) == datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_a_fraction_outside_zero_and_one_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        renew_at(EXPIRY - timedelta(days=90), EXPIRY, fraction)


# -- which fraction ---------------------------------------------------------------------------------------------


def test_the_certificates_own_fraction_wins() -> None:
    assert fraction_for(0.2, {"critical"}, PERCENTS) == 0.2
    assert fraction_for(0.6, set(), PERCENTS) == 0.6


@pytest.mark.parametrize(
    ("criticalities", "expected"),
    [
        ({"critical", "important", "other"}, 0.50),
        ({"other", "critical"}, 0.50),
        ({"important", "other"}, 0.40),
        ({"important"}, 0.40),
        ({"other"}, 0.25),
        (set(), 0.25),  # relied on by no registered asset: the "other" default
    ],
)
def test_without_its_own_fraction_the_strictest_criticality_decides(criticalities: set[str], expected: float) -> None:
    assert fraction_for(None, criticalities, PERCENTS) == pytest.approx(expected)
    assert fraction_for(None, iter(sorted(criticalities)), PERCENTS) == pytest.approx(expected)  # any iterable


def test_without_any_setting_the_fraction_is_a_third() -> None:
    assert fraction_for(None, [], {}) == pytest.approx(0.33)


# -- which notice ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (400, None),
        (31, None),
        (30 + 1 / 86400, None),  # one second too early
        (30, "30d"),
        (29.5, "30d"),
        (16, "30d"),
        (15 + 1 / 86400, "30d"),
        (15, "15d"),
        (10, "15d"),
        (3, "15d"),
        (2 + 1 / 86400, "15d"),
        (2, "2d"),
        (1, "2d"),
        (0.5, "2d"),
        (1 / 86400, "2d"),
        # notAfter itself counts as expired, as for the pass's cert_expired finding (checks.py)
        (0, "overdue"),
        (-1 / 86400, "overdue"),
        (-10, "overdue"),
        (-400, "overdue"),
    ],
)
def test_leaf_notices(left: float, expected: str | None) -> None:
    assert notice_due(EXPIRY, before_expiry(left), is_ca=False) == expected


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (3650, None),
        (366, None),
        (365, "365d"),
        (300, "365d"),
        (181, "365d"),
        (180, "180d"),
        (100, "180d"),
        # a CA gets no 30/15/2-day notices: the 180-day one is the last before expiry
        (31, "180d"),
        (30, "180d"),
        (15, "180d"),
        (3, "180d"),
        (2, "180d"),
        (0.5, "180d"),
        (0, "overdue"),
        (-1, "overdue"),
    ],
)
def test_ca_notices(left: float, expected: str | None) -> None:
    assert notice_due(EXPIRY, before_expiry(left), is_ca=True) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (EXPIRY - timedelta(days=20), 20),
        (EXPIRY - timedelta(days=20) + timedelta(seconds=1), 19),
        (EXPIRY - timedelta(days=1), 1),
        (EXPIRY - timedelta(hours=12), 0),  # under a day left
        (EXPIRY, 0),
        (EXPIRY + timedelta(seconds=1), -1),
        (EXPIRY + timedelta(days=1), -1),
        (EXPIRY + timedelta(days=1, hours=12), -2),
    ],
)
def test_days_left(now: datetime, expected: int) -> None:
    assert days_left(EXPIRY, now) == expected


def test_days_left_across_a_timezone() -> None:
    from zoneinfo import ZoneInfo

    paris = EXPIRY.astimezone(ZoneInfo("Europe/Paris")) - timedelta(days=3)
    assert days_left(EXPIRY, paris) == 3


@given(
    left=st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=800)),
    is_ca=st.booleans(),
)
def test_the_notice_is_the_smallest_threshold_not_below_the_time_left(left: timedelta, is_ca: bool) -> None:
    due = notice_due(EXPIRY, EXPIRY - left, is_ca)
    thresholds = CA if is_ca else LEAF
    reached = [d for d in thresholds if timedelta(days=d) >= left]
    if not reached:
        assert due is None
        return
    assert due is not None
    assert due != "overdue"
    days = int(due.removesuffix("d"))
    assert days in thresholds
    assert timedelta(days=days) >= left
    # no smaller threshold has been reached yet
    assert all(timedelta(days=d) < left for d in thresholds if d < days)


@given(past=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3000)), is_ca=st.booleans())
def test_after_expiry_the_notice_is_always_overdue(past: timedelta, is_ca: bool) -> None:
    assert notice_due(EXPIRY, EXPIRY + past, is_ca) == "overdue"
