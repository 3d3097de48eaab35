"""The Keycloak parser, on user and admin events shaped as Keycloak's EventRepresentation and
AdminEventRepresentation (the admin REST API's /events and /admin-events, and JSON event-listener logs)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome
from portcullis.events.parsers.keycloak import KeycloakParser

ALICE = "5f1c2d3e-8b4a-4c6d-9e0f-1a2b3c4d5e6f"
ADMIN = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
SESSION = "c3be023a-8e3d-4d84-a745-413ff3565f06"
T0 = 1706779812345  # 2024-02-01T09:30:12.345Z


def user_event(kind: str, *, user: str | None = ALICE, error: str | None = None, **details: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "00435000-25cf-4fda-a8ef-a53d9ebab77f",
        "time": T0,
        "type": kind,
        "realmId": "acme",
        "clientId": "account-console",
        "userId": user,
        "sessionId": SESSION,
        "ipAddress": "192.0.2.10",
        "details": details,
    }
    if error is not None:
        out["error"] = error
    return out


BROWSER = {
    "auth_method": "openid-connect",
    "auth_type": "code",
    "redirect_uri": "https://app.example.com/cb",
    "consent": "no_consent_required",
    "code_id": SESSION,
    "username": "alice",
}


def admin_event(operation: str, resource: str, path: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "time": T0,
        "realmId": "acme",
        "authDetails": {
            "realmId": "master",
            "clientId": "security-admin-console",
            "userId": ADMIN,
            "ipAddress": "198.51.100.7",
        },
        "operationType": operation,
        "resourceType": resource,
        "resourcePath": path,
        "representation": '{"clientId":"payments","secret":"s3cr3t-never-copied"}',
    }
    out.update(extra)
    return out


def parse(rec: dict[str, Any]) -> Event:
    event = KeycloakParser({}).parse(json.dumps(rec))
    assert event is not None
    return event


def test_browser_login() -> None:
    event = parse(user_event("LOGIN", **BROWSER))
    assert event == Event(
        time=datetime(2024, 2, 1, 9, 30, 12, 345000, tzinfo=UTC),
        category=Category.AUTHENTICATION,
        action="login",
        outcome=Outcome.SUCCESS,
        actor=ALICE,
        actor_kind=ActorKind.IDP,
        target="account-console",
        source_address="192.0.2.10",
        method=Method.PASSWORD,
        detail="alice",
    )


@pytest.mark.parametrize("credential", ["otp", "webauthn", "webauthn-passwordless"])
def test_login_with_a_second_factor_is_mfa(credential: str) -> None:
    event = parse(user_event("LOGIN", **BROWSER, credential_type=credential))
    assert event.kind == "authentication.login.success"
    assert event.method is Method.MFA


def test_direct_grant_is_a_password_login() -> None:
    details = {
        "auth_method": "openid-connect",
        "grant_type": "password",
        "client_auth_method": "client-secret",
        "username": "alice",
        "token_id": "tok-1",
        "refresh_token_id": "ref-1",
        "scope": "openid",
    }
    assert parse(user_event("LOGIN", **details)).method is Method.PASSWORD


def test_brokered_login_does_not_claim_a_password() -> None:
    details = {**BROWSER, "identity_provider": "google", "identity_provider_identity": "alice@example.com"}
    assert parse(user_event("LOGIN", **details)).method is Method.UNKNOWN


def test_failed_login_keeps_the_error() -> None:
    event = parse(user_event("LOGIN_ERROR", error="invalid_user_credentials", **BROWSER))
    assert event.kind == "authentication.login.failure"
    assert (event.actor, event.actor_kind) == (ALICE, ActorKind.IDP)
    assert event.detail == "alice error=invalid_user_credentials"
    assert event.method is Method.PASSWORD


def test_failed_login_of_an_unknown_user_names_the_user_name_typed() -> None:
    details = {"auth_method": "openid-connect", "auth_type": "code", "username": "mallory"}
    event = parse(user_event("LOGIN_ERROR", user=None, error="user_not_found", **details))
    assert event.kind == "authentication.login.failure"
    assert (event.actor, event.actor_kind) == ("mallory", ActorKind.USERNAME)


def test_failed_login_without_any_name_names_nobody() -> None:
    event = parse(user_event("LOGIN_ERROR", user=None, error="expired_code"))
    assert (event.actor, event.actor_kind, event.detail) == ("", ActorKind.NONE, "error=expired_code")


def test_logout_closes_a_session() -> None:
    event = parse(user_event("LOGOUT", redirect_uri="https://app.example.com/"))
    assert event.kind == "session.close.success"
    assert event.method is Method.UNKNOWN
    assert parse(user_event("LOGOUT_ERROR", error="invalid_token")).kind == "session.close.failure"


def test_client_login_of_a_service_account() -> None:
    details = {
        "grant_type": "client_credentials",
        "client_auth_method": "client-secret",
        "username": "service-account-payments",
    }
    event = parse(user_event("CLIENT_LOGIN", **details))
    assert event.kind == "authentication.client_login.success"
    assert event.detail == "service-account-payments"


def test_impersonation_is_a_privileged_action_of_the_administrator() -> None:
    event = parse(user_event("IMPERSONATE", impersonator_realm="master", impersonator="admin", username="alice"))
    assert event.kind == "privileged_action.impersonate.success"
    assert event.privileged
    assert (event.actor, event.actor_kind, event.target) == ("admin", ActorKind.USERNAME, ALICE)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("CODE_TO_TOKEN", "other.code_to_token.success"),
        ("REFRESH_TOKEN_ERROR", "other.refresh_token.failure"),
        ("UPDATE_PASSWORD", "other.update_password.success"),
        ("REMOVE_TOTP", "other.remove_totp.success"),
    ],
)
def test_other_user_events_are_kept_as_other(kind: str, expected: str) -> None:
    event = parse(user_event(kind, credential_type="password", username="alice"))
    assert event.kind == expected
    assert event.category is Category.OTHER
    assert not event.privileged


def test_admin_event_is_a_privileged_action() -> None:
    event = parse(admin_event("CREATE", "CLIENT", "clients/8e5ed10f-fde2-4ee3-990f-b3e9bf7194c6"))
    assert event.kind == "privileged_action.admin_create.success"
    assert event.privileged
    assert (event.actor, event.actor_kind) == (ADMIN, ActorKind.IDP)
    assert event.target == "clients/8e5ed10f-fde2-4ee3-990f-b3e9bf7194c6"
    assert event.source_address == "198.51.100.7"
    assert event.detail == "CLIENT"
    assert "s3cr3t" not in repr(event)


def test_failed_admin_action() -> None:
    event = parse(admin_event("ACTION", "USER", f"users/{ALICE}/reset-password", error="unknown_error"))
    assert event.kind == "privileged_action.admin_action.failure"
    assert event.detail == "USER error=unknown_error"


def test_lines_of_a_json_event_listener_log() -> None:
    text = "\n".join(
        [
            json.dumps(
                {
                    "timestamp": "2024-02-01T09:30:12.345Z",
                    "loggerName": "events",
                    "eventType": "USER",
                    **user_event("LOGIN", **BROWSER),
                    "realmName": "acme",
                }
            ),
            "",
            json.dumps(
                {
                    "timestamp": "2024-02-01T09:33:20Z",
                    "eventType": "ADMIN",
                    **admin_event("DELETE", "USER", f"users/{ALICE}"),
                    "time": 1706780000000,
                }
            ),
        ]
    )
    parser = KeycloakParser({})
    events = [parser.parse(line) for line in text.splitlines()]
    assert [e.kind if e else None for e in events] == [
        "authentication.login.success",
        None,
        "privileged_action.admin_delete.success",
    ]
    assert events[2] is not None
    assert events[2].time == datetime(2024, 2, 1, 9, 33, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"time": 1706779812345, "type": "LOGIN"', "not JSON: Expecting ',' delimiter at line 1 column 40 (char 39)"),
        ('[{"time": 1706779812345}]', "not a JSON object but an array"),
        ('{"type": "LOGIN", "userId": "u1"}', "missing time"),
        ('{"time": "yesterday", "type": "LOGIN"}', "time: time 'yesterday' is not epoch milliseconds"),
        ('{"time": true, "type": "LOGIN"}', "time: time true is not epoch milliseconds"),
        ('{"time": 1706779812345, "userId": "u1"}', "missing type"),
        ('{"time": 1706779812345, "type": "LOGIN", "details": "alice"}', "details is a string, not an object"),
        ('{"time": 1706779812345, "type": "LOGIN", "userId": 42}', "userId is a number, not a string"),
        (
            '{"time": 1706779812345, "operationType": "CREATE", "authDetails": {"userId": ["a"]}}',
            "authDetails.userId is an array, not a string",
        ),
    ],
)
def test_malformed_lines_say_why(raw: str, reason: str) -> None:
    with pytest.raises(Malformed) as caught:
        KeycloakParser({}).parse(raw)
    assert reason in caught.value.reason


@given(ms=st.integers(min_value=0, max_value=7_258_118_400_000))  # 1970 .. 2200
def test_epoch_milliseconds_are_exact(ms: int) -> None:
    event = KeycloakParser({}).parse(json.dumps({"time": ms, "type": "LOGIN", "userId": "u"}))
    assert event is not None
    assert event.time == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def test_names_framing_and_state() -> None:
    assert (KeycloakParser.name, KeycloakParser.framing) == ("keycloak", "lines")
    assert KeycloakParser({}, {}).state() == {}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["time", "type", "userId", "clientId", "ipAddress", "error", "details", "operationType", "authDetails",
     "resourceType", "resourcePath"]
)  # fmt: skip


@given(rec=st.dictionaries(_keys, _json | st.just("LOGIN_ERROR") | st.just(T0), max_size=8))
def test_any_json_object_is_an_event_or_malformed(rec: dict[str, Any]) -> None:
    event = event_or_reason(lambda: KeycloakParser({}).parse(json.dumps(rec)))
    if isinstance(event, str):
        assert event  # Malformed, with a reason
        return
    assert event is not None
    assert event.time.utcoffset() is not None


def event_or_reason(parse: Callable[[], Event | None]) -> Event | str | None:
    try:
        return parse()
    except Malformed as exc:
        return exc.reason
