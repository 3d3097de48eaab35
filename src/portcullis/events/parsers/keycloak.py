"""Keycloak user and admin events, one JSON object per line (guidelines §21, §22, §23).

The objects are Keycloak's EventRepresentation (user events: time, type, realmId, clientId, userId, sessionId,
ipAddress, error, details) and AdminEventRepresentation (time, realmId, authDetails {realmId, clientId, userId,
ipAddress}, operationType, resourceType, resourcePath, error), as the admin REST API returns them and JSON event
listeners log them. An admin event's `representation` can hold secrets (a client secret, a credential); it is
never read.

User events: LOGIN and LOGIN_ERROR are authentication.login, CLIENT_LOGIN(_ERROR) authentication.client_login,
LOGOUT(_ERROR) session.close, IMPERSONATE a privileged action by the impersonating administrator; any other type
is other.<type> (kept in the ledger). A type ending in _ERROR, or an event with an error, is a failure.
Admin events are privileged actions "admin_<operation>".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Final

from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome
from portcullis.events.parsers.fields import TIME_ERRORS, TimeFormat, json_type, load_record

# Credentials that are a second factor, or a phishing-resistant one, in Keycloak's credential types.
_MFA_CREDENTIALS: Final = frozenset(
    {"otp", "totp", "hotp", "webauthn", "webauthn-passwordless", "recovery-authn-codes"}
)
_LOGIN_METHODS: Final = frozenset({"openid-connect", "saml"})
_USER_TYPES: Final[dict[str, tuple[Category, str]]] = {
    "LOGIN": (Category.AUTHENTICATION, "login"),
    "CLIENT_LOGIN": (Category.AUTHENTICATION, "client_login"),
    "LOGOUT": (Category.SESSION, "close"),
    "IMPERSONATE": (Category.PRIVILEGED_ACTION, "impersonate"),
}


class KeycloakParser:
    """No configuration."""

    name: ClassVar[str] = "keycloak"
    framing: ClassVar[str] = "lines"

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self._time = TimeFormat("epoch_ms", "UTC")

    def state(self) -> dict[str, Any]:
        return {}

    def parse(self, raw: str) -> Event | None:
        record = load_record(raw)
        if record is None:
            return None  # a blank line between records written one per line
        stamp = record.get("time")
        if stamp is None:
            raise Malformed("missing time")
        try:
            when = self._time.parse(stamp)
        except TIME_ERRORS:
            raise self._time.malformed(stamp, "time") from None
        if "operationType" in record:
            return _admin_event(record, when)
        return _user_event(record, when)


def _text(record: dict[str, Any], field: str, within: str = "") -> str:
    value = record.get(field)
    if value is None or type(value) is str:
        return value or ""
    raise Malformed(f"{within}{field} is {json_type(value)}, not a string")


def _object(record: dict[str, Any], field: str) -> dict[str, Any]:
    value = record.get(field)
    if value is None:
        return {}
    if type(value) is not dict:
        raise Malformed(f"{field} is {json_type(value)}, not an object")
    return value


def _user_event(record: dict[str, Any], when: datetime) -> Event:
    kind = _text(record, "type")
    if not kind:
        raise Malformed("missing type (and no operationType: neither a user event nor an admin event)")
    error = _text(record, "error")
    details = _object(record, "details")
    base, failed = (kind[:-6], True) if kind.endswith("_ERROR") else (kind, bool(error))
    category, action = _USER_TYPES.get(base, (Category.OTHER, base.lower()))
    username = _detail(details, "username")
    actor, actor_kind = _text(record, "userId"), ActorKind.IDP
    if not actor and username:
        # A failed login for an unknown user has no user id; the name typed is all there is.
        actor, actor_kind = username, ActorKind.USERNAME
    target = _text(record, "clientId")
    if base == "IMPERSONATE":
        # The actor of an impersonation is the administrator; the user id is the one impersonated.
        target = actor
        actor, actor_kind = _detail(details, "impersonator"), ActorKind.USERNAME
    if not actor:
        actor_kind = ActorKind.NONE
    detail = username
    if error:
        detail = f"{detail} error={error}".lstrip()
    return Event(
        time=when,
        category=category,
        action=action,
        outcome=Outcome.FAILURE if failed else Outcome.SUCCESS,
        actor=actor,
        actor_kind=actor_kind,
        target=target,
        source_address=_text(record, "ipAddress"),
        method=_method(details) if category is Category.AUTHENTICATION else Method.UNKNOWN,
        privileged=category is Category.PRIVILEGED_ACTION,
        detail=detail,
    )


def _detail(details: dict[str, Any], key: str) -> str:
    value = details.get(key)
    return value if type(value) is str else ""


def _method(details: dict[str, Any]) -> Method:
    credential = _detail(details, "credential_type").lower()
    if credential in _MFA_CREDENTIALS:
        return Method.MFA
    if _detail(details, "identity_provider"):
        # Brokered: another identity provider authenticated the user, Keycloak does not know how.
        return Method.UNKNOWN
    if credential == "password" or _detail(details, "grant_type") == "password":
        return Method.PASSWORD
    if _detail(details, "auth_method") in _LOGIN_METHODS and not credential:
        # Keycloak's browser and direct-grant flows without a second factor end on the password form.
        return Method.PASSWORD
    return Method.UNKNOWN


def _admin_event(record: dict[str, Any], when: datetime) -> Event:
    operation = _text(record, "operationType")
    if not operation:
        raise Malformed("operationType is empty")
    auth = _object(record, "authDetails")
    actor = _text(auth, "userId", "authDetails.")
    resource = _text(record, "resourceType")
    error = _text(record, "error")
    detail = f"{resource} error={error}".strip() if error else resource
    return Event(
        time=when,
        category=Category.PRIVILEGED_ACTION,
        action="admin_" + operation.lower(),
        outcome=Outcome.FAILURE if error else Outcome.SUCCESS,
        actor=actor,
        actor_kind=ActorKind.IDP if actor else ActorKind.NONE,
        target=_text(record, "resourcePath"),
        source_address=_text(auth, "ipAddress", "authDetails."),
        privileged=True,
        detail=detail,
    )
