"""§11: the proportionality tier from the profile, defaults and overrides with reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from portcullis.core.clock import FrozenClock
from portcullis.core.errors import NotFound, PermissionDenied, ValidationFailed
from portcullis.core.lei import with_check_digits
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service
from portcullis.inventory.models import Organisation, ProportionalityOverride
from portcullis.inventory.proportionality import compute_tier, default_value
from portcullis.inventory.schemas import OrganisationIn, OverrideIn
from tests.factories import Made, make_user
from tests.inventory.test_service import count, ledger_size, records, refused

REASON = "Board decision 2026-11: quarterly reviews suffice"


@pytest.fixture
def officer(rt: Runtime) -> Made:
    return make_user(rt, Role.SECURITY_OFFICER)


# Points: staff <50 0, <250 1, else 2; low 0, medium 1, high 2; 0-1 simplified, 2-3 standard, 4-6 enhanced.
@pytest.mark.parametrize(
    ("staff", "risk", "complexity", "tier"),
    [
        (0, "low", "low", "simplified"),  # 0
        (49, "low", "medium", "simplified"),  # 1
        (50, "low", "low", "simplified"),  # 1
        (50, "low", "medium", "standard"),  # 2
        (49, "high", "low", "standard"),  # 2
        (60, "medium", "medium", "standard"),  # 3
        (249, "high", "low", "standard"),  # 3
        (250, "low", "medium", "standard"),  # 3
        (250, "medium", "medium", "enhanced"),  # 4
        (10, "high", "high", "enhanced"),  # 4
        (249, "high", "medium", "enhanced"),  # 4
        (100_000, "high", "high", "enhanced"),  # 6
    ],
)
def test_tier_thresholds(staff: int, risk: str, complexity: str, tier: str) -> None:
    assert compute_tier(staff, risk, complexity).value == tier


def org_in(staff: int, risk: str = "medium", complexity: str = "medium") -> OrganisationIn:
    return OrganisationIn(
        legal_name="Example Crypto GmbH",
        lei=with_check_digits("529900EXAMPLE00001"),
        country="DE",
        staff_count=staff,
        risk_profile=risk,
        complexity=complexity,
    )


def test_without_a_profile_the_tier_is_standard(rt: Runtime, officer: Made) -> None:
    with rt.work(officer.principal) as ctx:
        assert service.get_organisation(ctx) is None
        eff = service.effective_defaults(ctx)
        assert default_value(ctx, "review_days.critical") == 90
    assert eff["review_days.critical"] == {
        "value": 90,
        "default": 90,
        "tier": "standard",
        "overridden": False,
        "reason": None,
        "set_by": None,
        "set_at": None,
    }
    assert {k: v["value"] for k, v in eff.items()} == {
        "review_days.critical": 90,
        "review_days.important": 180,
        "review_days.other": 365,
        "retention_days.critical": 1825,
        "retention_days.important": 730,
        "retention_days.other": 365,
        "privileged_approvers": 2,
        "cert_renew_percent.critical": 33,
        "cert_renew_percent.important": 33,
        "cert_renew_percent.other": 33,
    }


def test_profile_sets_tier_and_records_it(rt: Runtime, officer: Made) -> None:
    with rt.work(officer.principal) as ctx:
        service.set_organisation(ctx, org_in(30, "low", "low"))
    with rt.work(officer.principal) as ctx:
        eff = service.effective_defaults(ctx)
    assert {k: v["value"] for k, v in eff.items()} == {
        "review_days.critical": 180,
        "review_days.important": 365,
        "review_days.other": 365,
        "retention_days.critical": 1825,
        "retention_days.important": 365,
        "retention_days.other": 180,
        "privileged_approvers": 2,
        "cert_renew_percent.critical": 33,
        "cert_renew_percent.important": 33,
        "cert_renew_percent.other": 33,
    }
    with rt.work(officer.principal) as ctx:
        service.set_organisation(ctx, org_in(300, "high", "medium"))
        assert default_value(ctx.session, "privileged_approvers") == 3
        assert default_value(ctx, "retention_days.critical") == 2555
    assert count(rt, Organisation) == 1
    created, updated = records(rt, "organisation")
    assert (created["action"], created["tier_before"], created["tier_after"]) == (
        "organisation.created",
        "standard",
        "simplified",
    )
    assert created["changes"]["lei"] == [None, with_check_digits("529900EXAMPLE00001")]
    assert created["changes"]["country"] == [None, "DE"]
    assert (updated["action"], updated["tier_before"], updated["tier_after"]) == (
        "organisation.updated",
        "simplified",
        "enhanced",
    )
    assert updated["changes"]["staff_count"] == [30, 300]


def test_invalid_lei_is_refused_by_the_schema() -> None:
    with pytest.raises(ValidationError, match="lei"):
        OrganisationIn(legal_name="X", lei="529900EXAMPLE0000199", staff_count=1)


def test_override_with_reason_is_recorded(rt: Runtime, officer: Made, clock: FrozenClock) -> None:
    with rt.work(officer.principal) as ctx:
        service.set_organisation(ctx, org_in(60))  # 3 points: standard
    clock.advance(timedelta(hours=1))
    with rt.work(officer.principal) as ctx:
        service.set_override(ctx, OverrideIn(key="review_days.critical", value=60, reason=REASON))
    with rt.work(officer.principal) as ctx:
        eff = service.effective_defaults(ctx)["review_days.critical"]
        assert default_value(ctx, "review_days.critical") == 60
    assert eff["value"] == 60
    assert eff["default"] == 90
    assert eff["overridden"] is True
    assert eff["reason"] == REASON
    assert eff["set_by"] == "security_officer@example.eu"
    assert eff["set_at"] == clock.now()
    rec = records(rt, "proportionality_override")[-1]
    assert rec["action"] == "organisation.default_overridden"
    assert rec["object_id"] == "review_days.critical"
    assert (rec["old_value"], rec["new_value"], rec["reason"]) == (90, 60, REASON)
    assert rec["changes"]["value"] == [None, 60]

    # Changing it again records the previous override as the old value.
    with rt.work(officer.principal) as ctx:
        service.set_override(ctx, OverrideIn(key="review_days.critical", value=45, reason=REASON + " (revised)"))
    rec = records(rt, "proportionality_override")[-1]
    assert (rec["old_value"], rec["new_value"]) == (60, 45)
    assert rec["changes"]["value"] == [60, 45]

    # The override survives a change of tier; the default under it moves.
    with rt.work(officer.principal) as ctx:
        service.set_organisation(ctx, org_in(500, "high", "high"))
        eff = service.effective_defaults(ctx)["review_days.critical"]
    assert (eff["value"], eff["default"], eff["tier"]) == (45, 30, "enhanced")

    with rt.work(officer.principal) as ctx:
        service.clear_override(ctx, "review_days.critical", "Back to the tier default after the audit")
        assert default_value(ctx, "review_days.critical") == 30
    rec = records(rt, "proportionality_override")[-1]
    assert rec["action"] == "organisation.default_restored"
    assert (rec["old_value"], rec["new_value"]) == (45, 30)
    assert rec["reason"] == "Back to the tier default after the audit"
    assert count(rt, ProportionalityOverride) == 0


def test_unknown_key_is_refused_with_the_valid_keys(rt: Runtime, officer: Made) -> None:
    err = refused(
        rt, officer, lambda ctx: service.set_override(ctx, OverrideIn(key="review_days", value=30, reason=REASON)),
        ValidationFailed,
    )
    assert isinstance(err, ValidationFailed)
    assert err.errors[0].field == "key"
    assert "privileged_approvers" in err.errors[0].message
    assert "retention_days.other" in err.errors[0].message
    assert count(rt, ProportionalityOverride) == 0


def test_fewer_than_two_privileged_approvers_is_refused(rt: Runtime, officer: Made) -> None:
    err = refused(
        rt,
        officer,
        lambda ctx: service.set_override(ctx, OverrideIn(key="privileged_approvers", value=1, reason=REASON)),
        ValidationFailed,
    )
    assert "two-approver rule" in str(err)
    with rt.work(officer.principal) as ctx:
        service.set_override(ctx, OverrideIn(key="privileged_approvers", value=4, reason=REASON))
        assert default_value(ctx, "privileged_approvers") == 4


def test_zero_days_and_missing_reason_are_refused(rt: Runtime, officer: Made) -> None:
    err = refused(
        rt,
        officer,
        lambda ctx: service.set_override(ctx, OverrideIn(key="retention_days.other", value=0, reason=REASON)),
        ValidationFailed,
    )
    assert err.errors[0].field == "value"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="reason"):
        OverrideIn(key="retention_days.other", value=30, reason="because")
    err = refused(rt, officer, lambda ctx: service.clear_override(ctx, "retention_days.other", REASON), NotFound)
    err = refused(rt, officer, lambda ctx: service.clear_override(ctx, "retention_days.other", "  "), ValidationFailed)
    assert err.errors[0].field == "reason"  # type: ignore[attr-defined]
    assert count(rt, ProportionalityOverride) == 0


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.APPROVER])
def test_only_organisation_writers_change_the_profile(rt: Runtime, role: Role) -> None:
    reader = make_user(rt, role)
    with rt.work(reader.principal) as ctx:
        assert service.effective_defaults(ctx)["privileged_approvers"]["value"] == 2
    size = ledger_size(rt)
    refused(rt, reader, lambda ctx: service.set_organisation(ctx, org_in(10)), PermissionDenied)
    refused(
        rt,
        reader,
        lambda ctx: service.set_override(ctx, OverrideIn(key="privileged_approvers", value=3, reason=REASON)),
        PermissionDenied,
    )
    assert ledger_size(rt) == size
    assert count(rt, Organisation) == 0


def test_staff_cannot_read_defaults(rt: Runtime) -> None:
    staff = make_user(rt, Role.STAFF)
    with pytest.raises(PermissionDenied), rt.work(staff.principal) as ctx:
        service.effective_defaults(ctx)
