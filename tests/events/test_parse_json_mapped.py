"""The configured JSON-lines parser, on Elastic Common Schema (ECS) documents as Filebeat's system module
writes them, and on other shapes a mapping can describe."""

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
from portcullis.events.parsers.json_mapped import JsonMappedParser

ECS_CONFIG: dict[str, Any] = {
    "fields": {
        "time": "@timestamp",
        "actor": "user.name",
        "action": "event.action",
        "outcome": "event.outcome",
        "category": "event.category",
        "source_address": "source.ip",
        "target": "host.name",
        "host": "host.hostname",
        "method": "system.auth.ssh.method",
        "detail": "process.command_line",
    },
    "time_format": "iso8601",
    "categories": {"iam": "privileged_action"},
    "privileged_actions": ["sudo"],
}


def ecs(action: str, outcome: str, categories: list[str], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "@timestamp": "2024-02-01T09:30:12.345Z",
        "ecs": {"version": "8.11.0"},
        "event": {
            "kind": "event",
            "category": categories,
            "type": ["start"],
            "action": action,
            "outcome": outcome,
            "dataset": "system.auth",
            "module": "system",
        },
        "user": {"name": "alice"},
        "source": {"ip": "192.0.2.10", "port": 50022},
        "host": {"name": "bastion-1", "hostname": "bastion-1.example.com", "os": {"family": "debian"}},
        "message": "Accepted publickey for alice from 192.0.2.10 port 50022 ssh2",
    }
    out.update(extra)
    return out


SSH_LOGIN = ecs(
    "ssh_login",
    "success",
    ["authentication", "session"],
    system={"auth": {"ssh": {"method": "publickey", "signature": "RSA SHA256:EXAMPLE"}}},
)


def parse(rec: dict[str, Any] | str, config: dict[str, Any] | None = None) -> Event:
    event = JsonMappedParser(config or ECS_CONFIG).parse(rec if isinstance(rec, str) else json.dumps(rec))
    assert event is not None
    return event


def test_ecs_ssh_login() -> None:
    assert parse(SSH_LOGIN) == Event(
        time=datetime(2024, 2, 1, 9, 30, 12, 345000, tzinfo=UTC),
        category=Category.AUTHENTICATION,
        action="ssh_login",
        outcome=Outcome.SUCCESS,
        actor="alice",
        actor_kind=ActorKind.USERNAME,
        target="bastion-1",
        host="bastion-1.example.com",
        source_address="192.0.2.10",
        method=Method.PUBLICKEY,
    )


def test_ecs_failed_password_login() -> None:
    rec = ecs("ssh_login", "failure", ["authentication"], system={"auth": {"ssh": {"method": "password"}}})
    event = parse(rec)
    assert event.kind == "authentication.ssh_login.failure"
    assert event.method is Method.PASSWORD


def test_a_mapped_category_and_a_privileged_action() -> None:
    added = parse(ecs("user-added", "success", ["iam"], group={"name": "wheel"}))
    assert added.kind == "privileged_action.user-added.success"
    assert added.privileged
    sudo = parse(
        ecs("sudo", "success", ["process"], process={"command_line": "/usr/bin/systemctl restart db"}),
        {**ECS_CONFIG, "categories": {"process": "other"}},
    )
    assert sudo.kind == "other.sudo.success"
    assert sudo.privileged
    assert sudo.detail == "/usr/bin/systemctl restart db"
    assert not parse(SSH_LOGIN).privileged


def test_the_first_mapped_category_of_a_list_wins() -> None:
    rec = ecs("ssh_login", "success", ["network", "session", "authentication"])
    assert parse(rec).category is Category.SESSION


def test_flattened_dotted_keys() -> None:
    rec = {
        "@timestamp": "2024-02-01T09:30:12Z",
        "user.name": "alice",
        "event.action": "logged-in",
        "event.outcome": "success",
        "event.category": "authentication",
        "source.ip": "192.0.2.10",
    }
    event = parse(rec)
    assert (event.actor, event.action, event.source_address) == ("alice", "logged-in", "192.0.2.10")
    assert event.kind == "authentication.logged-in.success"


def test_absent_optional_fields_default() -> None:
    rec = {
        "@timestamp": "2024-02-01T09:30:12Z",
        "user": {"name": "alice"},
        "event": {"action": "login", "category": "session"},
    }
    event = parse(rec)
    assert (event.outcome, event.method, event.source_address, event.target, event.host) == (
        Outcome.UNKNOWN,
        Method.UNKNOWN,
        "",
        "",
        "",
    )


def test_a_fixed_category_is_used_and_is_the_fallback() -> None:
    fixed = {
        "fields": {"time": "ts", "actor": "who", "action": "what"},
        "time_format": "epoch",
        "category": "authentication",
        "actor_kind": "idp",
    }
    event = parse({"ts": 1706779812, "who": "u-17", "what": "login"}, fixed)
    assert event.time == datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)
    assert (event.kind, event.actor_kind) == ("authentication.login.unknown", ActorKind.IDP)
    fallback = {**ECS_CONFIG, "category": "session"}
    rec = ecs("logout", "success", [])
    del rec["event"]["category"]
    assert parse(rec, fallback).category is Category.SESSION


@pytest.mark.parametrize(
    ("time_format", "timezone", "value", "expected"),
    [
        ("epoch", "UTC", 1706779812, datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)),
        ("epoch", "UTC", "1706779812.5", datetime(2024, 2, 1, 9, 30, 12, 500000, tzinfo=UTC)),
        ("epoch_ms", "UTC", 1706779812345, datetime(2024, 2, 1, 9, 30, 12, 345000, tzinfo=UTC)),
        ("%d/%m/%Y %H:%M:%S", "Europe/Berlin", "01/02/2024 10:30:12", datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)),
        ("%b %d %Y %H:%M:%S", "America/New_York", "Jul 04 2024 08:00:00", datetime(2024, 7, 4, 12, 0, tzinfo=UTC)),
        ("iso8601", "Asia/Tokyo", "2024-02-01T18:30:12", datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)),
        ("iso8601", "Asia/Tokyo", "2024-02-01T09:30:12+00:00", datetime(2024, 2, 1, 9, 30, 12, tzinfo=UTC)),
    ],
)
def test_time_formats(time_format: str, timezone: str, value: object, expected: datetime) -> None:
    config = {**ECS_CONFIG, "time_format": time_format, "timezone": timezone}
    assert parse({**SSH_LOGIN, "@timestamp": value}, config).time == expected


def test_boolean_outcomes_map_through_their_text() -> None:
    config = {
        "fields": {"time": "ts", "actor": "user", "action": "op", "outcome": "ok"},
        "category": "authentication",
        "outcomes": {"true": "success", "false": "failure"},
    }
    assert parse({"ts": "2024-02-01T09:30:12Z", "user": "bob", "op": "login", "ok": False}, config).outcome is (
        Outcome.FAILURE
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"user": {}}, "missing field 'user.name' (the actor)"),
        ({"user": None}, "missing field 'user.name' (the actor)"),
        ({"user": {"name": ""}}, "field 'user.name' (the actor) is empty"),
        ({"user": {"name": {"first": "a"}}}, "field 'user.name' (the actor) holds an object, not a value"),
        ({"event": {"outcome": "success", "category": ["authentication"]}}, "missing field 'event.action'"),
        ({"@timestamp": "Feb 1 09:30"}, "field '@timestamp': time 'Feb 1 09:30' is not an ISO 8601 time"),
        ({"@timestamp": None}, "missing field '@timestamp' (the time)"),
        (
            {"event": {"action": "x", "outcome": "partial", "category": ["session"]}},
            "outcome 'partial' in field 'event.outcome' is not mapped",
        ),
        (
            {"event": {"action": "x", "outcome": "success", "category": ["network", "web"]}},
            "category 'network', 'web' in field 'event.category' is not mapped",
        ),
        ({"event": {"action": "x", "outcome": "success"}}, "missing field 'event.category' (the category)"),
        (
            {"system": {"auth": {"ssh": {"method": "telepathy"}}}},
            "method 'telepathy' in field 'system.auth.ssh.method' is not mapped",
        ),
        ({"source": {"ip": ["192.0.2.10"]}}, "field 'source.ip' holds an array, not a value"),
    ],
)
def test_malformed_records_name_the_field(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(Malformed) as caught:
        parse({**SSH_LOGIN, **change})
    assert reason in caught.value.reason


def test_not_json_and_blank_lines() -> None:
    parser = JsonMappedParser(ECS_CONFIG)
    assert parser.parse("") is None
    assert parser.parse("   ") is None
    with pytest.raises(
        Malformed,
        match=r"not JSON: Expecting property name enclosed in double quotes at line 1 "
        r"column 2 \(char 1\)",
    ):
        parser.parse("{'user': 'alice'}")
    with pytest.raises(Malformed, match="not a JSON object but a number"):
        parser.parse("42")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({}, "config.fields"),
        ({"fields": {"actor": "a", "action": "b"}, "category": "session"}, "config.fields.time"),
        ({"fields": {"time": "t", "actor": "a", "action": "b", "colour": "c"}}, "config.fields.colour"),
        ({"fields": {"time": "t", "actor": "a.", "action": "b"}, "category": "session"}, "config.fields.actor"),
        ({"fields": {"time": "t", "actor": "a", "action": "b"}}, "config.category"),
        ({"fields": {"time": "t", "actor": "a", "action": "b"}, "category": "iam"}, "config.category"),
        ({**ECS_CONFIG, "outcomes": {"ok": "great"}}, "config.outcomes.ok"),
        ({**ECS_CONFIG, "categories": {"iam": "admin"}}, "config.categories.iam"),
        ({**ECS_CONFIG, "methods": {"otp": "magic"}}, "config.methods.otp"),
        ({**ECS_CONFIG, "privileged_actions": "sudo"}, "config.privileged_actions"),
        ({**ECS_CONFIG, "actor_kind": "person"}, "config.actor_kind"),
        ({**ECS_CONFIG, "actor_kind": ["idp"]}, "config.actor_kind"),
        ({**ECS_CONFIG, "category": ["session"]}, "config.category"),
        ({**ECS_CONFIG, "time_format": "unix"}, "config.time_format"),
        ({**ECS_CONFIG, "timezone": "CEST"}, "config.timezone"),
    ],
)
def test_unusable_configuration_is_refused_naming_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        JsonMappedParser(config)
    assert [e.field for e in caught.value.errors] == [field]


def test_names_framing_and_state() -> None:
    assert (JsonMappedParser.name, JsonMappedParser.framing) == ("json-mapped", "lines")
    assert JsonMappedParser(ECS_CONFIG, {}).state() == {}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@given(
    rec=st.fixed_dictionaries(
        {},
        optional={
            "@timestamp": _json | st.just("2024-02-01T09:30:12Z"),
            "user": _json | st.just({"name": "alice"}),
            "event": _json | st.just({"action": "login", "category": ["session"], "outcome": "success"}),
            "source": _json,
            "host": _json,
            "system": _json,
        },
    )
)
def test_any_json_object_is_an_event_or_malformed(rec: dict[str, Any]) -> None:
    event = event_or_reason(lambda: JsonMappedParser(ECS_CONFIG).parse(json.dumps(rec)))
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
