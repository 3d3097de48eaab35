"""The CloudTrail parser, on records shaped as the CloudTrail User Guide documents them.

There is no real CloudTrail file in the shared data, so the records below follow the documented record
contents (eventVersion 1.08/1.09, userIdentity, responseElements.ConsoleLogin, additionalEventData.MFAUsed ...)
with the documentation's example account ids and addresses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcullis.core.errors import ValidationFailed
from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome
from portcullis.events.parsers.cloudtrail import CloudTrailParser

ACCOUNT = "111122223333"


def iam_user(name: str, *, mfa: str | None = None) -> dict[str, Any]:
    identity: dict[str, Any] = {
        "type": "IAMUser",
        "principalId": "AIDACKCEVSQ6C2EXAMPLE",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
        "userName": name,
    }
    if mfa is not None:
        identity["sessionContext"] = {
            "sessionIssuer": {},
            "webIdFederationData": {},
            "attributes": {"creationDate": "2024-02-01T08:00:00Z", "mfaAuthenticated": mfa},
        }
    return identity


ROOT = {"type": "Root", "principalId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:root", "accountId": ACCOUNT}

ASSUMED = {
    "type": "AssumedRole",
    "principalId": "AROAIDPPEZS35WEXAMPLE:alice@example.com",
    "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/OpsAdmin/alice@example.com",
    "accountId": ACCOUNT,
    "sessionContext": {
        "sessionIssuer": {
            "type": "Role",
            "principalId": "AROAIDPPEZS35WEXAMPLE",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/OpsAdmin",
            "accountId": ACCOUNT,
            "userName": "OpsAdmin",
        },
        "attributes": {"creationDate": "2024-02-01T08:00:00Z", "mfaAuthenticated": "false"},
    },
}


def record(name: str, source: str, identity: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": "2024-02-01T09:30:12Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64",
        "requestParameters": None,
        "responseElements": None,
        "requestID": "7d5b7a2e-1f0c-4a7e-9c6e-EXAMPLE",
        "eventID": "6c3d1e2f-8a9b-4c5d-9e0f-EXAMPLE",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
    }
    out.update(extra)
    return out


def console_login(identity: dict[str, Any], result: str, mfa_used: str, **extra: Any) -> dict[str, Any]:
    base = record(
        "ConsoleLogin",
        "signin.amazonaws.com",
        identity,
        userAgent="Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
        responseElements={"ConsoleLogin": result},
        additionalEventData={
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": mfa_used,
        },
        eventType="AwsConsoleSignIn",
    )
    del base["readOnly"]
    base.update(extra)
    return base


def parse(rec: dict[str, Any] | str, config: dict[str, Any] | None = None) -> Any:
    raw = rec if isinstance(rec, str) else json.dumps(rec)
    return CloudTrailParser(config or {}).parse(raw)


def test_console_login_with_mfa() -> None:
    event = parse(
        console_login(
            iam_user("Anaya"),
            "Success",
            "Yes",
            additionalEventData={"MFAUsed": "Yes", "MFAIdentifier": f"arn:aws:iam::{ACCOUNT}:mfa/Anaya"},
        )
    )
    assert event.kind == "authentication.login.success"
    assert event.time == datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)
    assert (event.actor, event.actor_kind) == ("Anaya", ActorKind.IDP)
    assert event.method is Method.MFA
    assert event.source_address == "192.0.2.10"
    assert event.target == "signin.amazonaws.com"
    assert event.detail == "signin.amazonaws.com:ConsoleLogin"
    assert not event.privileged


def test_console_login_without_mfa_is_a_password_login() -> None:
    event = parse(console_login(iam_user("Mateo"), "Success", "No"))
    assert event.kind == "authentication.login.success"
    assert event.method is Method.PASSWORD


def test_failed_console_login() -> None:
    event = parse(console_login(iam_user("Mateo"), "Failure", "No", errorMessage="Failed authentication"))
    assert event.kind == "authentication.login.failure"
    assert event.actor == "Mateo"
    assert event.detail == "signin.amazonaws.com:ConsoleLogin Failed authentication"


def test_failed_console_login_for_a_user_that_does_not_exist_names_nobody() -> None:
    identity = {
        "type": "IAMUser",
        "principalId": "",
        "accountId": ACCOUNT,
        "accessKeyId": "",
        "userName": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    event = parse(console_login(identity, "Failure", "No", errorMessage="No username found in supplied account"))
    assert event.kind == "authentication.login.failure"
    assert (event.actor, event.actor_kind) == ("", ActorKind.NONE)


def test_root_console_login_is_privileged() -> None:
    event = parse(console_login(ROOT, "Success", "No"))
    assert event.kind == "authentication.login.success"
    assert event.actor == "root"
    assert event.privileged
    assert event.method is Method.PASSWORD


def test_federated_console_login_does_not_claim_a_password() -> None:
    event = parse(console_login(ASSUMED, "Success", "No"))
    assert event.kind == "authentication.login.success"
    assert event.actor == "alice@example.com"  # the session name, the last part of the ARN
    assert event.method is Method.UNKNOWN


def test_iam_create_user_is_a_privileged_action() -> None:
    rec = record(
        "CreateUser",
        "iam.amazonaws.com",
        iam_user("Paulo", mfa="true"),
        requestParameters={"userName": "Juan"},
        responseElements={
            "user": {
                "path": "/",
                "userName": "Juan",
                "userId": "AIDAJ2ZB3L2EXAMPLE",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/Juan",
                "createDate": "Feb 1, 2024 9:30:12 AM",
            }
        },
    )
    event = parse(rec)
    assert event.kind == "privileged_action.CreateUser.success"
    assert event.category is Category.PRIVILEGED_ACTION
    assert event.privileged
    assert event.method is Method.MFA
    assert (event.actor, event.target, event.detail) == ("Paulo", "iam.amazonaws.com", "iam.amazonaws.com:CreateUser")


def test_a_refused_call_is_a_failure_with_its_error_code() -> None:
    rec = record(
        "CreateUser",
        "iam.amazonaws.com",
        iam_user("Mateo", mfa="false"),
        errorCode="AccessDenied",
        errorMessage=f"User: arn:aws:iam::{ACCOUNT}:user/Mateo is not authorized to perform: iam:CreateUser",
    )
    event = parse(rec)
    assert event.kind == "privileged_action.CreateUser.failure"
    assert event.method is Method.UNKNOWN
    assert event.detail == "iam.amazonaws.com:CreateUser AccessDenied"


@pytest.mark.parametrize(
    ("name", "source", "kind"),
    [
        ("GetUser", "iam.amazonaws.com", "other.api_call.success"),
        ("ListAccessKeys", "iam.amazonaws.com", "other.api_call.success"),
        ("DescribeKey", "kms.amazonaws.com", "other.api_call.success"),
        ("LookupEvents", "cloudtrail.amazonaws.com", "other.api_call.success"),
        ("GetObject", "s3.amazonaws.com", "other.api_call.success"),
        ("StartInstances", "ec2.amazonaws.com", "other.api_call.success"),
        ("ScheduleKeyDeletion", "kms.amazonaws.com", "privileged_action.ScheduleKeyDeletion.success"),
        ("Decrypt", "kms.amazonaws.com", "privileged_action.Decrypt.success"),
        ("StopLogging", "cloudtrail.amazonaws.com", "privileged_action.StopLogging.success"),
        ("PutSecretValue", "secretsmanager.amazonaws.com", "privileged_action.PutSecretValue.success"),
        ("DeleteDetector", "guardduty.amazonaws.com", "privileged_action.DeleteDetector.success"),
        ("StopConfigurationRecorder", "config.amazonaws.com", "privileged_action.StopConfigurationRecorder.success"),
        ("LeaveOrganization", "organizations.amazonaws.com", "privileged_action.LeaveOrganization.success"),
        ("GetCallerIdentity", "sts.amazonaws.com", "other.api_call.success"),
    ],
)
def test_classification_of_api_calls(name: str, source: str, kind: str) -> None:
    event = parse(record(name, source, iam_user("Mateo")))
    assert event.kind == kind
    assert event.privileged == kind.startswith("privileged_action")


def test_any_call_by_root_is_privileged() -> None:
    event = parse(record("GetObject", "s3.amazonaws.com", ROOT, eventType="AwsApiCall"))
    assert event.kind == "privileged_action.GetObject.success"
    assert event.privileged
    assert event.actor == "root"


@pytest.mark.parametrize(
    ("name", "identity", "actor", "method"),
    [
        ("AssumeRole", iam_user("Mateo", mfa="true"), "Mateo", Method.MFA),
        ("AssumeRole", ASSUMED, "alice@example.com", Method.UNKNOWN),
        ("GetSessionToken", iam_user("Mateo"), "Mateo", Method.UNKNOWN),
        (
            "AssumeRoleWithSAML",
            {
                "type": "SAMLUser",
                "principalId": "SampleUkh1i4+ExamplexL/jEvs=:alice",
                "userName": "alice",
                "identityProvider": "SampleUkh1i4+ExamplexL/jEvs=",
            },
            "alice",
            Method.UNKNOWN,
        ),
        (
            "AssumeRoleWithWebIdentity",
            {
                "type": "WebIdentityUser",
                "principalId": "accounts.google.com:1234567",
                "userName": "1234567",
                "identityProvider": "accounts.google.com",
            },
            "1234567",
            Method.UNKNOWN,
        ),
    ],
)
def test_role_assumption(name: str, identity: dict[str, Any], actor: str, method: Method) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/OpsAdmin"
    rec = record(
        name,
        "sts.amazonaws.com",
        identity,
        requestParameters={"roleArn": role, "roleSessionName": "s1", "durationSeconds": 3600},
    )
    event = parse(rec)
    assert event.kind == "authentication.assume_role.success"
    assert (event.actor, event.method) == (actor, method)
    assert event.detail == f"sts.amazonaws.com:{name} {role}"


def test_actor_falls_back_to_the_arn_then_the_principal_then_the_service() -> None:
    by_arn = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": f"arn:aws:iam::{ACCOUNT}:user/ops/Kim"}
    assert parse(record("GetUser", "iam.amazonaws.com", by_arn)).actor == "Kim"
    by_principal = {"type": "Unknown", "principalId": "AIDAEXAMPLE"}
    assert parse(record("GetUser", "iam.amazonaws.com", by_principal)).actor == "AIDAEXAMPLE"
    service = {"accountId": ACCOUNT, "invokedBy": "kms.amazonaws.com"}
    event = parse(record("RotateKey", "kms.amazonaws.com", service, eventType="AwsServiceEvent"))
    assert (event.actor, event.kind) == ("kms.amazonaws.com", "privileged_action.RotateKey.success")


def test_records_cut_out_of_a_log_file() -> None:
    document = json.dumps(
        {
            "Records": [
                console_login(iam_user("Anaya"), "Success", "Yes"),
                record("CreateUser", "iam.amazonaws.com", iam_user("Anaya")),
                record("GetObject", "s3.amazonaws.com", iam_user("Anaya")),
            ]
        }
    )
    parser = CloudTrailParser({})
    kinds = [parser.parse(json.dumps(r)).kind for r in json.loads(document)["Records"]]  # type: ignore[union-attr]
    assert kinds == ["authentication.login.success", "privileged_action.CreateUser.success", "other.api_call.success"]
    with pytest.raises(Malformed, match="a whole CloudTrail file, not one record"):
        parser.parse(document)


def test_times_with_an_offset_become_utc() -> None:
    event = parse(record("GetUser", "iam.amazonaws.com", iam_user("Mateo"), eventTime="2024-02-01T11:30:12+02:00"))
    assert event.time == datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"eventName": "ConsoleLogin", "eventTime": ', "not JSON: Expecting value at line 1 column 44 (char 43)"),
        ("[1, 2]", "not a JSON object but an array"),
        ('"ConsoleLogin"', "not a JSON object but a string"),
        ('{"eventTime": "2024-02-01T09:30:12Z"}', "missing eventName"),
        ('{"eventTime": "2024-02-01T09:30:12Z", "eventName": 7}', "eventName is a number, not a non-empty string"),
        ('{"eventName": "GetUser"}', "missing eventTime"),
        ('{"eventName": "GetUser", "eventTime": "yesterday"}', "eventTime: time 'yesterday' is not an ISO 8601"),
        ('{"eventName": "GetUser", "eventTime": 1706779812}', "eventTime: time 1706779812 is not an ISO 8601"),
        (
            '{"eventName": "GetUser", "eventTime": "2024-02-01T09:30:12Z", "userIdentity": "root"}',
            "userIdentity is a string, not an object",
        ),
    ],
)
def test_malformed_records_say_why(raw: str, reason: str) -> None:
    with pytest.raises(Malformed) as caught:
        CloudTrailParser({}).parse(raw)
    assert reason in caught.value.reason


def test_privileged_services_and_read_prefixes_are_configurable() -> None:
    config = {"privileged_services": ["iam", "s3"], "read_prefixes": ["Get", "List", "Describe", "Decrypt"]}
    assert parse(record("PutBucketPolicy", "s3.amazonaws.com", iam_user("Mateo")), config).privileged
    assert not parse(record("Decrypt", "kms.amazonaws.com", iam_user("Mateo")), config).privileged
    with pytest.raises(ValidationFailed) as caught:
        CloudTrailParser({"privileged_services": "iam"})
    assert caught.value.errors[0].field == "config.privileged_services"


def test_a_blank_line_between_records_carries_no_event() -> None:
    assert CloudTrailParser({}).parse("") is None
    assert CloudTrailParser({}).parse("  \t") is None


def test_state_is_empty_and_accepted_back() -> None:
    parser = CloudTrailParser({}, {})
    assert parser.state() == {}
    assert CloudTrailParser.name == "cloudtrail"
    assert CloudTrailParser.framing == "json-records"
    assert parse(record("GetUser", "iam.amazonaws.com", iam_user("Mateo"))).outcome is Outcome.SUCCESS


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(
    ["eventTime", "eventName", "eventSource", "userIdentity", "errorCode", "errorMessage", "responseElements",
     "additionalEventData", "requestParameters", "sourceIPAddress", "Records"]
)  # fmt: skip


@given(rec=st.dictionaries(_keys, _json | st.just("2024-02-01T09:30:12Z") | st.just("ConsoleLogin"), max_size=8))
def test_any_json_object_is_an_event_or_malformed(rec: dict[str, Any]) -> None:
    event = event_or_reason(lambda: CloudTrailParser({}).parse(json.dumps(rec)))
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
