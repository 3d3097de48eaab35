"""AWS CloudTrail records: console sign-ins, role assumption, and privileged API calls (guidelines §22, §23).

The pipeline hands over the JSON text of one record, already cut out of a {"Records": [...]} file. Field names
follow the CloudTrail User Guide ("CloudTrail record contents").

Classification:
- ConsoleLogin: authentication.login, method mfa when additionalEventData.MFAUsed is "Yes";
- sts AssumeRole, GetSessionToken, AssumeRoleWithSAML, AssumeRoleWithWebIdentity: authentication.assume_role;
- any call by the root user, and a call that changes something (not Get/List/Describe/Head/Lookup...) in a
  service that governs access (iam, kms, organizations, sts, cloudtrail, config, guardduty, secretsmanager):
  privileged_action, with the event name as the action;
- everything else: other.api_call (kept in the ledger, not an access event).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome, config_error
from portcullis.events.parsers.fields import TIME_ERRORS, TimeFormat, json_type, load_record

PRIVILEGED_SERVICES: Final = frozenset(
    {"iam", "kms", "organizations", "sts", "cloudtrail", "config", "guardduty", "secretsmanager"}
)
READ_PREFIXES: Final = ("Get", "List", "Describe", "Head", "Lookup")
_ASSUME: Final = frozenset({"AssumeRole", "GetSessionToken", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity"})
# Identities whose password and MFA AWS never sees: an identity provider authenticated them.
_FEDERATED: Final = frozenset({"AssumedRole", "FederatedUser", "SAMLUser", "WebIdentityUser", "IdentityCenterUser"})
# What CloudTrail writes instead of the user name a failed sign-in typed, when no such user exists.
_HIDDEN: Final = "HIDDEN_DUE_TO_SECURITY_REASONS"


class CloudTrailParser:
    """Config (all optional): privileged_services [service prefixes, e.g. "iam"], read_prefixes [event name
    prefixes that only read]. Defaults: PRIVILEGED_SERVICES and READ_PREFIXES."""

    name: ClassVar[str] = "cloudtrail"
    framing: ClassVar[str] = "json-records"

    def __init__(self, config: Mapping[str, Any], state: Mapping[str, Any] | None = None) -> None:
        self._services = frozenset(_texts(config, "privileged_services", PRIVILEGED_SERVICES))
        self._reads = tuple(_texts(config, "read_prefixes", READ_PREFIXES))
        self._time = TimeFormat("iso8601", "UTC")

    def state(self) -> dict[str, Any]:
        return {}

    def parse(self, raw: str) -> Event | None:
        record = load_record(raw)
        if record is None:
            return None  # a blank line between records written one per line
        name = record.get("eventName")
        if type(name) is not str or not name:
            raise Malformed(_missing(record, "eventName"))
        stamp = record.get("eventTime")
        if stamp is None:
            raise Malformed(_missing(record, "eventTime"))
        try:
            when = self._time.parse(stamp)
        except TIME_ERRORS:
            raise self._time.malformed(stamp, "eventTime") from None
        identity = record.get("userIdentity") or {}
        if type(identity) is not dict:
            raise Malformed(f"userIdentity is {json_type(identity)}, not an object")
        kind = _text(identity.get("type"))
        actor = _actor(identity)
        source = _text(record.get("eventSource"))
        service = source.partition(".")[0]
        error = _text(record.get("errorCode"))
        outcome = Outcome.FAILURE if error else Outcome.SUCCESS
        mfa_session = _mfa_session(identity)
        detail = f"{source}:{name}"
        why = error or _text(record.get("errorMessage"))[:80]
        if why:
            detail += f" {why}"
        root = kind == "Root"

        if name == "ConsoleLogin":
            category, action, privileged = Category.AUTHENTICATION, "login", root
            outcome = _console_outcome(record, error)
            method = _console_method(record, kind)
        elif name in _ASSUME and service == "sts":
            category, action, privileged = Category.AUTHENTICATION, "assume_role", root
            method = Method.MFA if mfa_session else Method.UNKNOWN
            role = _role(record)
            if role:
                detail += f" {role}"
        elif root or (service in self._services and not name.startswith(self._reads)):
            category, action, privileged = Category.PRIVILEGED_ACTION, name, True
            method = Method.MFA if mfa_session else Method.UNKNOWN
        else:
            category, action, privileged = Category.OTHER, "api_call", False
            method = Method.MFA if mfa_session else Method.UNKNOWN
        return Event(
            time=when,
            category=category,
            action=action,
            outcome=outcome,
            actor=actor,
            actor_kind=ActorKind.IDP if actor else ActorKind.NONE,
            target=source,
            source_address=_text(record.get("sourceIPAddress")),
            method=method,
            privileged=privileged,
            detail=detail,
        )


def _texts(config: Mapping[str, Any], key: str, default: frozenset[str] | tuple[str, ...]) -> list[str]:
    value = config.get(key)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise config_error(key, "must be a list of non-empty texts")
    return value


def _missing(record: dict[str, Any], field: str) -> str:
    if "Records" in record:
        return f"a whole CloudTrail file, not one record: no {field} at the top level (frame it as json-records)"
    value = record.get(field)
    if value is None:
        return f"missing {field}"
    return f"{field} is {json_type(value)}, not a non-empty string"


def _text(value: object) -> str:
    return value if type(value) is str else ""


def _actor(identity: dict[str, Any]) -> str:
    """The name the principal is known by: userName, else the last part of its ARN, else its principalId."""
    user = _text(identity.get("userName"))
    if user == _HIDDEN:
        return ""
    if user:
        return user
    arn = _text(identity.get("arn"))
    if arn:
        # arn:aws:iam::111122223333:user/Anaya -> Anaya; arn:aws:iam::111122223333:root -> root
        return arn.rpartition("/")[2] if "/" in arn else arn.rpartition(":")[2]
    principal = _text(identity.get("principalId"))
    if principal:
        return principal
    # An AWS service acting on its own account names only itself.
    return _text(identity.get("invokedBy"))


def _mfa_session(identity: dict[str, Any]) -> bool:
    context = identity.get("sessionContext")
    if type(context) is not dict:
        return False
    attributes = context.get("attributes")
    return type(attributes) is dict and str(attributes.get("mfaAuthenticated")).lower() == "true"


def _console_outcome(record: dict[str, Any], error: str) -> Outcome:
    response = record.get("responseElements")
    result = _text(response.get("ConsoleLogin")) if type(response) is dict else ""
    if error or result == "Failure":
        return Outcome.FAILURE
    if result == "Success":
        return Outcome.SUCCESS
    return Outcome.UNKNOWN


def _console_method(record: dict[str, Any], kind: str) -> Method:
    extra = record.get("additionalEventData")
    mfa = _text(extra.get("MFAUsed")) if type(extra) is dict else ""
    if mfa == "Yes":
        return Method.MFA
    # A federated user's MFAUsed is always "No": the identity provider did the authentication, not AWS.
    return Method.UNKNOWN if kind in _FEDERATED else Method.PASSWORD


def _role(record: dict[str, Any]) -> str:
    params = record.get("requestParameters")
    return _text(params.get("roleArn")) if type(params) is dict else ""
