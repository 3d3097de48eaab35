from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from portcullis.accounts import service
from portcullis.accounts.models import ApiToken, User
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.errors import AuthenticationFailed, Conflict, PermissionDenied, TooManyAttempts, ValidationFailed
from portcullis.core.permissions import Permission, Role
from portcullis.core.runtime import Runtime
from portcullis.ledger.models import LedgerRecord
from tests.factories import PASSWORD, make_user


def test_password_is_stored_as_argon2id(rt: Runtime) -> None:
    made = make_user(rt, Role.STAFF)
    with rt.session() as s:
        stored = s.get(User, made.user.id)
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash


def test_new_user_input_errors_name_each_field(rt: Runtime) -> None:
    with pytest.raises(ValidationFailed) as exc, rt.work(Principal.system("t")) as ctx:
        service.create_user(ctx, "not-an-email", " ", "emperor", "short")
    fields = {e.field for e in exc.value.errors}
    assert fields == {"email", "full_name", "role", "password"}


def test_duplicate_email_refused_case_insensitively(rt: Runtime) -> None:
    make_user(rt, Role.STAFF, email="ana@example.eu")
    with pytest.raises(Conflict), rt.work(Principal.system("t")) as ctx:
        service.create_user(ctx, "ANA@example.eu", "Ana", "staff", PASSWORD)


def test_first_user_must_be_admin_and_only_once(rt: Runtime) -> None:
    with pytest.raises(PermissionDenied), rt.session() as s:
        service.bootstrap_first_user(s, rt.clock, "a@example.eu", "A", "staff", PASSWORD)
    with rt.session() as s:
        service.bootstrap_first_user(s, rt.clock, "a@example.eu", "A", "admin", PASSWORD)
    with pytest.raises(Conflict), rt.session() as s:
        service.bootstrap_first_user(s, rt.clock, "b@example.eu", "B", "admin", PASSWORD)


def _login(rt: Runtime, email: str, password: str) -> User | None:
    with rt.session() as s:
        return service.check_password(s, rt.clock, rt.settings, email, password, "198.51.100.7")


def test_login_throttled_after_repeated_failures(rt: Runtime, clock: FrozenClock) -> None:
    made = make_user(rt, Role.STAFF)
    for _ in range(rt.settings.login_max_failures):
        assert _login(rt, made.user.email, "wrong password!!") is None
    # Even the right password is refused while the account is locked...
    with pytest.raises(TooManyAttempts):
        _login(rt, made.user.email, PASSWORD)
    # ...and accepted once the lock window has passed.
    clock.advance(timedelta(minutes=rt.settings.login_lock_minutes, seconds=1))
    assert _login(rt, made.user.email, PASSWORD) is not None


def test_unknown_email_and_inactive_user_fail_alike(rt: Runtime) -> None:
    admin = make_user(rt, Role.ADMIN)
    staff = make_user(rt, Role.STAFF)
    with rt.work(admin.principal) as ctx:
        service.update_user(ctx, staff.user.id, active=False)
    assert _login(rt, staff.user.email, PASSWORD) is None
    assert _login(rt, "nobody@example.eu", PASSWORD) is None


def test_totp_code_cannot_be_replayed(rt: Runtime, clock: FrozenClock) -> None:
    made = make_user(rt, Role.ADMIN)
    assert made.totp is not None
    clock.advance(timedelta(seconds=30))
    code = made.totp.at(clock.now())
    with rt.session() as s:
        service.check_totp(s, rt.clock, service.get_user(s, made.user.id), code)
    with pytest.raises(AuthenticationFailed), rt.session() as s:
        service.check_totp(s, rt.clock, service.get_user(s, made.user.id), code)
    with pytest.raises(AuthenticationFailed), rt.session() as s:
        service.check_totp(s, rt.clock, service.get_user(s, made.user.id), "000000" if code != "000000" else "111111")


def test_totp_drift_of_more_than_one_step_is_refused(rt: Runtime, clock: FrozenClock) -> None:
    made = make_user(rt, Role.ADMIN)
    assert made.totp is not None
    clock.advance(timedelta(minutes=5))
    stale = made.totp.at(clock.now() - timedelta(seconds=90))
    fresh = made.totp.at(clock.now())
    if stale != fresh:  # equal codes two steps apart are a 1-in-a-million coincidence
        with pytest.raises(AuthenticationFailed), rt.session() as s:
            service.check_totp(s, rt.clock, service.get_user(s, made.user.id), stale)


def test_enrolment_secret_never_reaches_the_ledger(rt: Runtime) -> None:
    made = make_user(rt, Role.SECURITY_OFFICER)
    assert made.totp is not None
    with rt.session() as s:
        payloads = list(s.scalars(select(LedgerRecord.payload)))
        stored = s.get(User, made.user.id)
        assert stored is not None
        secret_hash = stored.password_hash
    joined = b"\n".join(payloads).decode()
    assert made.totp.secret not in joined
    assert secret_hash not in joined
    assert PASSWORD not in joined
    assert made.token.split(".", 1)[1] not in joined


def test_deactivation_revokes_tokens(rt: Runtime, clock: FrozenClock) -> None:
    admin = make_user(rt, Role.ADMIN)
    staff = make_user(rt, Role.STAFF)
    with rt.work(admin.principal) as ctx:
        service.update_user(ctx, staff.user.id, active=False)
    with pytest.raises(AuthenticationFailed), rt.session() as s:
        service.token_principal(s, rt.clock, staff.token)
    with rt.session() as s:
        live = s.scalar(
            select(func.count(ApiToken.id)).where(ApiToken.user_id == staff.user.id, ApiToken.revoked_at.is_(None))
        )
    assert live == 0


def test_token_cannot_delegate_more_than_the_role(rt: Runtime) -> None:
    staff = make_user(rt, Role.STAFF)
    with pytest.raises(ValidationFailed) as exc, rt.work(staff.principal) as ctx:
        service.create_api_token(ctx, "too much", ["users.manage"], 30)
    assert exc.value.errors[0].field == "scopes"


def test_token_minted_without_mfa_carries_no_mfa(rt: Runtime) -> None:
    admin = make_user(rt, Role.ADMIN, enrol_mfa=False)
    with rt.session() as s:
        p = service.token_principal(s, rt.clock, admin.token)
    assert p.mfa is False
    assert not p.can(Permission.USERS_MANAGE)


def test_enrolment_requires_a_valid_code(rt: Runtime, clock: FrozenClock) -> None:
    made = make_user(rt, Role.APPROVER, enrol_mfa=False)
    with rt.work(made.principal) as ctx:
        enrolment = service.begin_totp_enrolment(ctx)
    assert enrolment.uri.startswith("otpauth://totp/")
    assert "<svg" in enrolment.qr_svg
    wrong = "123456" if pyotp.TOTP(enrolment.secret).at(clock.now()) != "123456" else "654321"
    with pytest.raises(AuthenticationFailed), rt.work(made.principal) as ctx:
        service.confirm_totp_enrolment(ctx, wrong)
    with rt.session() as s:
        assert service.get_user(s, made.user.id).totp_enrolled_at is None


def test_totp_guessing_is_throttled_and_counted(rt: Runtime, clock: FrozenClock) -> None:
    made = make_user(rt, Role.ADMIN)
    assert made.totp is not None
    clock.advance(timedelta(seconds=30))
    right = made.totp.at(clock.now())
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(rt.settings.login_max_failures):
        with pytest.raises(AuthenticationFailed), rt.session() as s:
            service.check_totp(s, rt.clock, service.get_user(s, made.user.id), wrong, rt.settings)
    with pytest.raises(TooManyAttempts), rt.session() as s:
        service.check_totp(s, rt.clock, service.get_user(s, made.user.id), right, rt.settings)
    with rt.session() as s:
        failures = s.scalar(select(func.count(LedgerRecord.id)).where(LedgerRecord.action == "login.totp_failed"))
    assert failures == rt.settings.login_max_failures
