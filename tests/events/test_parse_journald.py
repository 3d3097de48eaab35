"""The journald JSON parser: the OpenSSH sample re-written as `journalctl -o json` records, and malformed records."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcullis.events.parsers.base import Event, Malformed
from portcullis.events.parsers.journald import JournaldParser
from portcullis.events.parsers.syslog import SyslogParser

YEAR = 2017
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
LINE = re.compile(r"(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) sshd\[(\d+)\]: (.*)")


def shared_data() -> Path:
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def journal_record(raw: str, as_bytes: bool = False) -> tuple[str, datetime]:
    """The journal's JSON for one syslog line of the sample, and the line's time."""
    m = LINE.fullmatch(raw.rstrip())
    assert m is not None, raw
    month, day, hour, minute, second, host, pid, message = m.groups()
    time = datetime(YEAR, MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    micros = int(time.timestamp()) * 1_000_000
    record = {
        "__CURSOR": "s=0;i=1",
        "__REALTIME_TIMESTAMP": str(micros),
        "__MONOTONIC_TIMESTAMP": "1",
        "_HOSTNAME": host,
        "SYSLOG_IDENTIFIER": "sshd",
        "_COMM": "sshd",
        "_PID": pid,
        "PRIORITY": "6",
        "MESSAGE": list(message.encode()) if as_bytes else message,
    }
    return json.dumps(record), time


def parse(record: dict[str, Any] | str) -> Event:
    event = JournaldParser({}).parse(record if isinstance(record, str) else json.dumps(record))
    assert event is not None
    return event


def reason(text: str) -> str:
    with pytest.raises(Malformed) as caught:
        JournaldParser({}).parse(text)
    return caught.value.reason


def fields(event: Event) -> tuple[object, ...]:
    return (event.kind, event.actor, event.actor_kind, event.source_address, event.method, event.privileged)


def test_openssh_sample_as_journal_records_reads_like_the_syslog_lines() -> None:
    raws = (shared_data() / "logs" / "OpenSSH_2k.log").read_text(encoding="utf-8").splitlines()
    syslog = SyslogParser({"year": YEAR})
    journald = JournaldParser({})
    for n, raw in enumerate(raws, 1):
        text, time = journal_record(raw, as_bytes=n % 7 == 0)
        expected = syslog.parse(raw)
        event = journald.parse(text)
        assert expected is not None
        assert event is not None
        assert fields(event) == fields(expected), f"line {n}: {raw}"
        assert (event.time, event.host) == (time, "LabSZ"), f"line {n}"


def test_microseconds_are_kept() -> None:
    event = parse(
        {"__REALTIME_TIMESTAMP": "1700000000123456", "MESSAGE": "Invalid user x from 1.2.3.4", "_COMM": "sshd"}
    )
    assert event.time == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    # _COMM stands in for a missing SYSLOG_IDENTIFIER.
    assert event.kind == "authentication.invalid_user.failure"
    assert event.host == ""


def test_sudo_record() -> None:
    event = parse(
        {
            "__REALTIME_TIMESTAMP": "1700000000000000",
            "_HOSTNAME": "db1",
            "SYSLOG_IDENTIFIER": "sudo",
            "MESSAGE": "    alice : TTY=pts/0 ; PWD=/srv ; USER=postgres ; COMMAND=/usr/bin/psql",
        }
    )
    assert (event.kind, event.actor, event.target, event.detail, event.host, event.privileged) == (
        "privileged_action.sudo.success",
        "alice",
        "postgres",
        "/usr/bin/psql",
        "db1",
        True,
    )


def test_state_is_empty_and_accepted() -> None:
    parser = JournaldParser({}, {})
    assert parser.state() == {}


GOOD = {"__REALTIME_TIMESTAMP": "1700000000000000", "SYSLOG_IDENTIFIER": "sshd", "MESSAGE": "x"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", ["empty line"]),
        ('{"MESSAGE": "x", "__REALTIME_TIMESTAMP": "1"', ["not valid JSON", "column"]),
        ("[1, 2]", ["JSON object", "list"]),
        (json.dumps({k: v for k, v in GOOD.items() if k != "MESSAGE"}), ["no MESSAGE"]),
        (json.dumps({**GOOD, "MESSAGE": [104, 105, 0xFF, 0xFE]}), ["MESSAGE", "not valid UTF-8", "byte 2"]),
        (json.dumps({**GOOD, "MESSAGE": ["a", "b"]}), ["MESSAGE", "2 values"]),
        (json.dumps({**GOOD, "MESSAGE": {"a": 1}}), ["MESSAGE", "string or an array of byte values"]),
        (json.dumps({**GOOD, "MESSAGE": [1, 300]}), ["MESSAGE", "string or an array of byte values"]),
        (json.dumps({**GOOD, "__REALTIME_TIMESTAMP": "soon"}), ["__REALTIME_TIMESTAMP", "'soon'", "microseconds"]),
        (json.dumps({**GOOD, "__REALTIME_TIMESTAMP": "-5"}), ["__REALTIME_TIMESTAMP", "'-5'"]),
        (json.dumps({**GOOD, "__REALTIME_TIMESTAMP": "9" * 30}), ["__REALTIME_TIMESTAMP", "out of range"]),
        (json.dumps({k: v for k, v in GOOD.items() if k != "__REALTIME_TIMESTAMP"}), ["no __REALTIME_TIMESTAMP"]),
        (json.dumps({**GOOD, "_HOSTNAME": [0xC3, 0x28]}), ["_HOSTNAME", "not valid UTF-8"]),
    ],
)
def test_malformed_records_name_the_problem(text: str, words: list[str]) -> None:
    got = reason(text)
    for word in words:
        assert word in got, got


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "MESSAGE": JSON_VALUES | st.lists(st.integers(0, 255), max_size=20),
            "__REALTIME_TIMESTAMP": JSON_VALUES | st.integers(0, 2**60).map(str),
            "_HOSTNAME": JSON_VALUES,
            "SYSLOG_IDENTIFIER": JSON_VALUES | st.sampled_from(["sshd", "sudo", "su"]),
            "_COMM": JSON_VALUES,
        },
    )
)
def test_any_record_is_an_event_or_malformed(record: dict[str, Any]) -> None:
    event: Event | None = None
    reason = ""
    try:
        event = JournaldParser({}).parse(json.dumps(record))
    except Malformed as e:
        reason = e.reason
    if event is None:
        assert reason, "no event needs a reason"
    else:
        assert event.time.tzinfo is UTC
