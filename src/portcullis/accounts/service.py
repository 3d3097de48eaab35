"""Platform user lifecycle, login with MFA, sessions and API tokens.

Every function that changes state takes a Context and records the change in the
audit stream within the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portcullis.accounts.models import ApiToken, LoginAttempt, User, WebSession
from portcullis.core import secrets
from portcullis.core.clock import Clock
from portcullis.core.context import Context, Principal
from portcullis.core.errors import (
    AuthenticationFailed,
    Conflict,
    ErrorCollector,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from portcullis.core.permissions import MFA_REQUIRED, PERMISSIONS, Permission, Role
from portcullis.core.settings import Settings, get_settings
from portcullis.ledger.service import record_change

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
TOKEN_PREFIX = "pc_"  # noqa: S105 - a public prefix, not a secret
MAX_TOKEN_DAYS = 365


def user_view(user: User) -> dict[str, object]:
    """What may be shown or recorded of a user: never the hash or the TOTP secret."""
    return {
        "id": user.id,
        "email": user.email,
        "full_name": user.full_name,
        "role": user.role,
        "active": user.active,
        "mfa_enrolled": user.totp_enrolled_at is not None,
        "created_at": user.created_at,
    }


def _check_new_user(session: Session, email: str, full_name: str, role: str, password: str) -> Role:
    errs = ErrorCollector()
    if not EMAIL_RE.match(email):
        errs.add("email", f"'{email}' is not an email address")
    if not full_name.strip():
        errs.add("full_name", "is required")
    try:
        parsed_role = Role(role)
    except ValueError:
        errs.add("role", f"'{role}' is not a role; choose one of {', '.join(r.value for r in Role)}")
        parsed_role = Role.STAFF
    if len(password) < secrets.MIN_PASSWORD_LENGTH:
        errs.add("password", f"must be at least {secrets.MIN_PASSWORD_LENGTH} characters")
    errs.raise_if_any("The user cannot be created")
    if session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
        raise Conflict(f"A user with email {email} already exists")
    return parsed_role


def create_user(ctx: Context, email: str, full_name: str, role: str, password: str) -> User:
    ctx.require(Permission.USERS_MANAGE)
    email = email.strip().lower()
    parsed_role = _check_new_user(ctx.session, email, full_name, role, password)
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=parsed_role.value,
        password_hash=secrets.hash_password(password),
        created_at=ctx.now(),
    )
    ctx.session.add(user)
    ctx.session.flush()
    record_change(ctx, "user.created", "user", user.id, None, user_view(user))
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def bootstrap_first_user(session: Session, clock: Clock, email: str, full_name: str, role: str, password: str) -> User:
    """The very first user, created from the command line with nobody to authorise it."""
    if count_users(session):
        raise Conflict("Users already exist; create further users as an admin")
    if role != Role.ADMIN.value:
        raise PermissionDenied("The first user must be an admin (use --role admin)")
    ctx = Context(session, Principal.system("bootstrap"), clock)
    return create_user(ctx, email, full_name, role, password)


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    return user


def find_user(session: Session, email: str) -> User:
    user = session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()
    if user is None:
        raise NotFound(f"No user with email {email}")
    return user


def list_users(ctx: Context) -> list[User]:
    ctx.require(Permission.USERS_READ)
    return list(ctx.session.scalars(select(User).order_by(User.id)))


def update_user(ctx: Context, user_id: int, *, role: str | None = None, active: bool | None = None) -> User:
    ctx.require(Permission.USERS_MANAGE)
    user = get_user(ctx.session, user_id)
    before = user_view(user)
    if role is not None:
        try:
            user.role = Role(role).value
        except ValueError as exc:
            raise Conflict(f"'{role}' is not a role") from exc
    if active is not None:
        if not active and user.id == ctx.principal.user_id:
            raise Conflict("You cannot deactivate your own account")
        user.active = active
        if not active:
            _end_everything(ctx.session, user.id, ctx.now())
    ctx.session.flush()
    record_change(ctx, "user.updated", "user", user.id, before, user_view(user))
    return user


def _end_everything(session: Session, user_id: int, now: datetime) -> None:
    for ws in session.scalars(select(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))):
        ws.ended_at = now
    for tok in session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))):
        tok.revoked_at = now


def change_password(ctx: Context, current: str, new: str) -> None:
    ctx.require(Permission.SELF)
    user = get_user(ctx.session, _own_id(ctx))
    if not secrets.verify_password(user.password_hash, current):
        raise AuthenticationFailed("The current password is wrong")
    if len(new) < secrets.MIN_PASSWORD_LENGTH:
        raise Conflict(f"The new password must be at least {secrets.MIN_PASSWORD_LENGTH} characters")
    user.password_hash = secrets.hash_password(new)
    record_change(ctx, "user.password_changed", "user", user.id)


def _own_id(ctx: Context) -> int:
    if ctx.principal.user_id is None:
        raise PermissionDenied("Only a logged-in user has an account to change")
    return ctx.principal.user_id


# --- login ----------------------------------------------------------------


def _recent_failures(session: Session, email: str, since: datetime) -> int:
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.email == email, LoginAttempt.succeeded.is_(True))
    )
    floor = max(since, last_success) if last_success else since
    return session.scalar(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.email == email, LoginAttempt.succeeded.is_(False), LoginAttempt.at > floor
        )
    ) or 0


def check_password(
    session: Session, clock: Clock, settings: Settings, email: str, password: str, address: str
) -> User | None:
    """First login factor, throttled per account. None means wrong credentials.

    The attempt is recorded whatever the outcome and the caller must commit it
    before refusing, so that failures count towards the lock.
    """
    email = email.strip().lower()
    now = clock.now()
    window = now - timedelta(minutes=settings.login_lock_minutes)
    if _recent_failures(session, email, window) >= settings.login_max_failures:
        raise TooManyAttempts(
            f"Too many failed logins for this account; try again in {settings.login_lock_minutes} minutes"
        )
    user = session.scalars(select(User).where(User.email == email)).one_or_none()
    ok = secrets.verify_password(user.password_hash if user else secrets.DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(email=email, address=address[:64], at=now, succeeded=ok))
    actor = Principal(
        name=email, role=Role(user.role) if user else Role.STAFF, user_id=user.id if user else None, via="web"
    )
    action = "login.password_ok" if ok else "login.failed"
    record_change(Context(session, actor, clock), action, "user", user.id if user else "", address=address)
    if not ok or user is None:
        return None
    if secrets.needs_rehash(user.password_hash):
        user.password_hash = secrets.hash_password(password)
    return user


def check_totp(session: Session, clock: Clock, user: User, code: str, settings: Settings | None = None) -> None:
    """Second login factor, throttled together with the password on the same account.

    A wrong code is recorded in its own transaction, so it counts even though the
    caller's unit of work rolls back on the refusal.
    """
    settings = settings or get_settings()
    if user.totp_secret is None or user.totp_enrolled_at is None:
        raise AuthenticationFailed("This account has no TOTP enrolled")
    now = clock.now()
    window = now - timedelta(minutes=settings.login_lock_minutes)
    if _recent_failures(session, user.email, window) >= settings.login_max_failures:
        raise TooManyAttempts(
            f"Too many failed logins for this account; try again in {settings.login_lock_minutes} minutes"
        )
    step = secrets.totp_step(user.totp_secret, code, now, user.totp_last_step)
    if step is None:
        with Session(bind=session.get_bind()) as own:
            own.add(LoginAttempt(email=user.email, address="totp", at=now, succeeded=False))
            ctx = Context(own, principal_for(user, "web", False), clock)
            record_change(ctx, "login.totp_failed", "user", user.id)
            own.commit()
        raise AuthenticationFailed("The code is wrong or was already used")
    user.totp_last_step = step


@dataclass
class Enrolment:
    secret: str
    uri: str
    qr_svg: str


def begin_totp_enrolment(ctx: Context) -> Enrolment:
    """Start (or restart) enrolment. The secret is shown once, here, to its owner."""
    ctx.require(Permission.SELF)
    user = get_user(ctx.session, _own_id(ctx))
    if user.totp_enrolled_at is not None:
        raise Conflict("TOTP is already enrolled for this account")
    user.totp_secret = secrets.new_totp_secret()
    uri = secrets.totp_uri(user.totp_secret, user.email)
    record_change(ctx, "mfa.enrolment_started", "user", user.id)
    return Enrolment(user.totp_secret, uri, secrets.totp_qr_svg(uri))


def confirm_totp_enrolment(ctx: Context, code: str) -> None:
    ctx.require(Permission.SELF)
    user = get_user(ctx.session, _own_id(ctx))
    if user.totp_secret is None:
        raise Conflict("Start TOTP enrolment first")
    if user.totp_enrolled_at is not None:
        raise Conflict("TOTP is already enrolled for this account")
    step = secrets.totp_step(user.totp_secret, code, ctx.now(), user.totp_last_step)
    if step is None:
        raise AuthenticationFailed("The code does not match; check the authenticator's clock and try again")
    user.totp_last_step = step
    user.totp_enrolled_at = ctx.now()
    record_change(ctx, "mfa.enrolled", "user", user.id, {"mfa_enrolled": False}, {"mfa_enrolled": True})


def reset_totp(ctx: Context, user_id: int) -> None:
    """An admin clears a lost authenticator; the user must enrol again."""
    ctx.require(Permission.USERS_MANAGE)
    user = get_user(ctx.session, user_id)
    had = user.totp_enrolled_at is not None
    user.totp_secret = None
    user.totp_enrolled_at = None
    _end_everything(ctx.session, user.id, ctx.now())
    record_change(ctx, "mfa.reset", "user", user.id, {"mfa_enrolled": had}, {"mfa_enrolled": False})


# --- web sessions -----------------------------------------------------------


def start_session(session: Session, clock: Clock, settings: Settings, user: User, mfa_passed: bool) -> str:
    token = secrets.new_token()
    now = clock.now()
    ws = WebSession(
        token_hash=secrets.token_digest(token),
        user_id=user.id,
        mfa_passed=mfa_passed,
        created_at=now,
        expires_at=now + timedelta(hours=settings.session_hours),
    )
    session.add(ws)
    session.flush()
    ctx = Context(session, principal_for(user, "web", mfa_passed), clock)
    record_change(ctx, "session.started", "user", user.id, mfa=mfa_passed)
    return token


def principal_for(user: User, via: str, mfa: bool, scopes: frozenset[Permission] | None = None) -> Principal:
    return Principal(name=user.email, role=Role(user.role), user_id=user.id, via=via, mfa=mfa, scopes=scopes)


def session_principal(session: Session, clock: Clock, token: str) -> tuple[Principal, User] | None:
    ws = session.scalars(select(WebSession).where(WebSession.token_hash == secrets.token_digest(token))).one_or_none()
    if ws is None or ws.ended_at is not None or ws.expires_at <= clock.now():
        return None
    user = session.get(User, ws.user_id)
    if user is None or not user.active:
        return None
    return principal_for(user, "web", ws.mfa_passed), user


def end_session(session: Session, clock: Clock, token: str) -> None:
    ws = session.scalars(select(WebSession).where(WebSession.token_hash == secrets.token_digest(token))).one_or_none()
    if ws is not None and ws.ended_at is None:
        ws.ended_at = clock.now()
        user = session.get(User, ws.user_id)
        if user is not None:
            ctx = Context(session, principal_for(user, "web", ws.mfa_passed), clock)
            record_change(ctx, "session.ended", "user", user.id)


def needs_mfa(user: User) -> bool:
    return Role(user.role) in MFA_REQUIRED or user.totp_enrolled_at is not None


# --- API tokens -------------------------------------------------------------


def token_view(tok: ApiToken) -> dict[str, object]:
    return {
        "id": tok.id,
        "name": tok.name,
        "lookup": tok.lookup,
        "scopes": sorted(tok.scopes),
        "created_at": tok.created_at,
        "expires_at": tok.expires_at,
        "last_used_at": tok.last_used_at,
        "revoked_at": tok.revoked_at,
    }


def create_api_token(ctx: Context, name: str, scopes: list[str], days: int) -> tuple[ApiToken, str]:
    """Returns the token row and the plaintext, which is never stored nor shown again."""
    ctx.require(Permission.SELF)
    user = get_user(ctx.session, _own_id(ctx))
    errs = ErrorCollector()
    if not name.strip():
        errs.add("name", "is required")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        errs.add("days", f"must be between 1 and {MAX_TOKEN_DAYS}")
    granted = PERMISSIONS[Role(user.role)]
    parsed: set[Permission] = set()
    for s in scopes or []:
        try:
            p = Permission(s)
        except ValueError:
            errs.add("scopes", f"'{s}' is not a permission")
            continue
        if p not in granted:
            errs.add("scopes", f"your role {user.role} does not have '{s}' to delegate")
        parsed.add(p)
    if not scopes:
        errs.add("scopes", "name at least one permission the token may use")
    errs.raise_if_any("The token cannot be created")
    lookup = secrets.new_token(9)
    secret = secrets.new_token(32)
    now = ctx.now()
    tok = ApiToken(
        user_id=user.id,
        name=name.strip(),
        lookup=lookup,
        secret_hash=secrets.token_digest(secret),
        scopes=sorted(p.value for p in parsed),
        # A token carries the MFA state of the login that made it, so an admin
        # cannot sidestep MFA by minting a token from a password-only session.
        mfa=ctx.principal.mfa,
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    ctx.session.add(tok)
    ctx.session.flush()
    record_change(ctx, "token.created", "api_token", tok.id, None, token_view(tok))
    return tok, f"{TOKEN_PREFIX}{lookup}.{secret}"


def list_api_tokens(ctx: Context) -> list[ApiToken]:
    ctx.require(Permission.SELF)
    return list(ctx.session.scalars(select(ApiToken).where(ApiToken.user_id == _own_id(ctx)).order_by(ApiToken.id)))


def revoke_api_token(ctx: Context, token_id: int) -> ApiToken:
    ctx.require(Permission.SELF)
    tok = ctx.session.get(ApiToken, token_id)
    if tok is None or (tok.user_id != ctx.principal.user_id and not ctx.principal.can(Permission.USERS_MANAGE)):
        raise NotFound(f"No token with id {token_id}")
    if tok.revoked_at is None:
        before = token_view(tok)
        tok.revoked_at = ctx.now()
        record_change(ctx, "token.revoked", "api_token", tok.id, before, token_view(tok))
    return tok


def token_principal(session: Session, clock: Clock, presented: str) -> Principal:
    if not presented.startswith(TOKEN_PREFIX) or "." not in presented:
        raise AuthenticationFailed("The API token is malformed")
    lookup, _, secret = presented[len(TOKEN_PREFIX):].partition(".")
    tok = session.scalars(select(ApiToken).where(ApiToken.lookup == lookup)).one_or_none()
    if tok is None or not secrets.same(tok.secret_hash, secrets.token_digest(secret)):
        raise AuthenticationFailed("The API token is not valid")
    now = clock.now()
    if tok.revoked_at is not None:
        raise AuthenticationFailed("The API token has been revoked")
    if tok.expires_at <= now:
        raise AuthenticationFailed("The API token has expired")
    user = session.get(User, tok.user_id)
    if user is None or not user.active:
        raise AuthenticationFailed("The API token's user is not active")
    # Coarse last-use stamp: at most one write a minute per token.
    if tok.last_used_at is None or now - tok.last_used_at > timedelta(minutes=1):
        tok.last_used_at = now
    return principal_for(user, "api", tok.mfa, frozenset(Permission(s) for s in tok.scopes))
