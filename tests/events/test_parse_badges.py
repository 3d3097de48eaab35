"""The badge-reader CSV parser, on the VAST Challenge 2016 prox-card log and on hand-written rows."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portcullis.core.errors import ValidationFailed
from portcullis.events.parsers.badge_csv import BadgeCsvParser
from portcullis.events.parsers.base import ActorKind, Category, Event, Malformed, Method, Outcome


def shared_data() -> Path:
    return Path(__file__).resolve().parents[3] / "shared" / "data"


PROX = shared_data() / "badges" / "proxOut-MC2.csv"

# Every floor/zone label of the building, as the operator would map them to Portcullis zones.
ZONES = {
    "1/1": "Z-F1-1", "1/2": "Z-F1-2", "1/3": "Z-F1-3", "1/4": "Z-F1-4",
    "1/5": "Z-F1-5", "1/6": "Z-F1-6", "1/7": "Z-F1-7", "1/8": "Z-F1-8",
    "2/1": "Z-F2-1", "2/2": "Z-F2-2", "2/3": "Z-F2-3", "2/4": "Z-F2-4", "2/6": "Z-F2-6", "2/7": "Z-F2-7",
    "3/1": "Z-F3-1", "3/2": "Z-F3-2", "3/3": "Z-F3-3", "3/4": "Z-F3-4", "3/6": "Z-F3-6",
    "3/Server Room": "Z-SERVER-ROOM",
}  # fmt: skip

PROX_CONFIG: dict[str, Any] = {
    "columns": {"time": "timestamp", "badge": "prox-id", "zone": ["floor", "zone"]},
    "time_format": "%Y-%m-%d %H:%M:%S",
    "timezone": "UTC",
    "zones": ZONES,
}

READERS_CONFIG: dict[str, Any] = {
    "columns": {"time": "when", "badge": "card", "zone": "door", "outcome": "result", "reader": "reader"},
    "time_format": "iso8601",
    "timezone": "Europe/Paris",
    "delimiter": ";",
    "zones": {"D-101": "Z-OFFICE-1", "D-SR": "Z-SERVER-ROOM"},
    "outcomes": {"granted": "success", "denied": "failure"},
}


def prox_rows() -> list[dict[str, str]]:
    """The oracle: the file read with the csv module, independently of the parser."""
    with PROX.open(newline="") as fh:
        return list(csv.DictReader(fh, skipinitialspace=True))


@pytest.fixture(scope="module")
def prox() -> tuple[list[str], list[Event | None]]:
    if not PROX.exists():
        pytest.skip(f"the badge log is missing: {PROX}")
    lines = PROX.read_text().splitlines()
    parser = BadgeCsvParser(PROX_CONFIG)
    return lines, [parser.parse(line) for line in lines]


def parse_all(config: dict[str, Any], text: str) -> list[Event | None]:
    parser = BadgeCsvParser(config)
    return [parser.parse(line) for line in text.splitlines()]


def test_data_resolves() -> None:
    assert PROX.exists(), PROX


def test_every_row_of_the_real_log_parses(prox: tuple[list[str], list[Event | None]]) -> None:
    _lines, events = prox
    rows = prox_rows()
    assert len(rows) == 29_763
    assert events[0] is None  # the header
    parsed = events[1:]
    assert len(parsed) == len(rows)
    assert all(e is not None for e in parsed)
    for row, event in zip(rows, parsed, strict=True):
        assert event is not None
        assert event.time == datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        assert event.actor == row["prox-id"]
        label = f"{row['floor']}/{row['zone']}"
        assert event.target == ZONES[label]
        assert event.detail == label
        assert event.kind == "physical_entry.entry.success"
        assert event.actor_kind is ActorKind.BADGE
        assert event.method is Method.BADGE
        assert not event.privileged


def test_entries_per_zone_match_an_independent_count(prox: tuple[list[str], list[Event | None]]) -> None:
    _, events = prox
    oracle = Counter(ZONES[f"{row['floor']}/{row['zone']}"] for row in prox_rows())
    assert {f"{row['floor']}/{row['zone']}" for row in prox_rows()} == set(ZONES)
    assert Counter(e.target for e in events if e is not None) == oracle
    assert sum(oracle.values()) == 29_763


def test_the_29_server_room_entries_with_their_times(prox: tuple[list[str], list[Event | None]]) -> None:
    _, events = prox
    expected = [
        (datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC), row["prox-id"])
        for row in prox_rows()
        if row["zone"] == "Server Room"
    ]
    got = [(e.time, e.actor) for e in events if e is not None and e.target == "Z-SERVER-ROOM"]
    assert len(expected) == 29
    assert got == expected
    # The first three, read off the file by hand.
    assert got[:3] == [
        (datetime(2016, 5, 31, 8, 15, 41, tzinfo=UTC), "clais001"),
        (datetime(2016, 5, 31, 10, 26, 51, tzinfo=UTC), "sflecha001"),
        (datetime(2016, 5, 31, 14, 2, 47, tzinfo=UTC), "sflecha001"),
    ]


def test_first_row_read_by_hand(prox: tuple[list[str], list[Event | None]]) -> None:
    lines, events = prox
    assert lines[1] == "2016-05-31 00:05:00, fixed-prox, vawelon001, 1, 1"
    assert events[1] == Event(
        time=datetime(2016, 5, 31, 0, 5, tzinfo=UTC),
        category=Category.PHYSICAL_ENTRY,
        action="entry",
        outcome=Outcome.SUCCESS,
        actor="vawelon001",
        actor_kind=ActorKind.BADGE,
        target="Z-F1-1",
        method=Method.BADGE,
        detail="1/1",
    )


def test_an_unmapped_label_is_malformed_naming_it(prox: tuple[list[str], list[Event | None]]) -> None:
    lines, _ = prox
    zones = {k: v for k, v in ZONES.items() if k != "3/Server Room"}
    parser = BadgeCsvParser({**PROX_CONFIG, "zones": zones})
    reasons = []
    for line in lines:
        try:
            parser.parse(line)
        except Malformed as exc:
            reasons.append(exc.reason)
    assert len(reasons) == 29
    assert all("zone '3/Server Room' is not mapped" in r for r in reasons)


def test_state_round_trip_after_the_header(prox: tuple[list[str], list[Event | None]]) -> None:
    lines, events = prox
    first = BadgeCsvParser(PROX_CONFIG)
    assert first.state() == {}
    assert first.parse(lines[0]) is None
    state = json.loads(json.dumps(first.state()))
    assert state == {"header": ["timestamp", "type", "prox-id", "floor", "zone"]}
    resumed = BadgeCsvParser(PROX_CONFIG, state)
    assert [resumed.parse(line) for line in lines[1000:1100]] == events[1000:1100]
    assert resumed.state() == state


def test_state_keeps_the_column_order_of_the_file() -> None:
    header = "reader;result;card;door;when"
    row = "R-7;granted;0042;D-SR;2024-03-01T10:00:00Z"
    first = BadgeCsvParser(READERS_CONFIG)
    first.parse(header)
    resumed = BadgeCsvParser(READERS_CONFIG, first.state())
    event = resumed.parse(row)
    assert event is not None
    assert (event.actor, event.target, event.detail) == ("0042", "Z-SERVER-ROOM", "R-7")


def test_readers_with_outcomes_and_a_timezone() -> None:
    text = (
        "when;card;door;result;reader\n"
        "2024-03-01 09:15:00;0042;D-101;granted;R-1\n"
        "2024-07-01T09:15:00;0042;D-SR;DENIED;R-7\n"
        "2024-07-01T09:15:00+00:00;0043;D-SR;success;R-7\n"
    )
    first, second, third = parse_all(READERS_CONFIG, text)[1:]
    assert first is not None
    assert second is not None
    assert third is not None
    # Paris is UTC+1 in March and UTC+2 in July.
    assert first.time == datetime(2024, 3, 1, 8, 15, tzinfo=UTC)
    assert (first.outcome, first.target, first.detail) == (Outcome.SUCCESS, "Z-OFFICE-1", "R-1")
    assert second.time == datetime(2024, 7, 1, 7, 15, tzinfo=UTC)
    assert second.kind == "physical_entry.entry.failure"
    assert third.time == datetime(2024, 7, 1, 9, 15, tzinfo=UTC)
    assert third.outcome is Outcome.SUCCESS


def test_ambiguous_and_missing_local_times_follow_the_earlier_offset() -> None:
    config = {**PROX_CONFIG, "timezone": "Europe/Paris"}
    parser = BadgeCsvParser(config)
    parser.parse("timestamp, type, prox-id, floor, zone")
    # 2016-10-30 02:30 happens twice in Paris (CEST then CET); 2016-03-27 02:30 never happens.
    autumn = parser.parse("2016-10-30 02:30:00, fixed-prox, a001, 1, 1")
    spring = parser.parse("2016-03-27 02:30:00, fixed-prox, a001, 1, 1")
    after = parser.parse("2016-10-30 03:30:00, fixed-prox, a001, 1, 1")
    assert autumn is not None
    assert spring is not None
    assert after is not None
    assert autumn.time == datetime(2016, 10, 30, 0, 30, tzinfo=UTC)
    assert spring.time == datetime(2016, 3, 27, 1, 30, tzinfo=UTC)
    assert after.time == datetime(2016, 10, 30, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2016-05-31 00:05:00, fixed-prox, vawelon001, 1", "expected 5 columns, found 4"),
        ("2016-05-31 00:05:00, fixed-prox, vawelon001, 1, 1, 9", "expected 5 columns, found 6"),
        ("2016-05-31 25:05:00, fixed-prox, vawelon001, 1, 1", "time '2016-05-31 25:05:00' is not"),
        ("31/05/2016 00:05, fixed-prox, vawelon001, 1, 1", "time '31/05/2016 00:05' is not"),
        ("2016-05-31 00:05:00, fixed-prox, , 1, 1", "empty badge id in column 'prox-id'"),
        ("2016-05-31 00:05:00, fixed-prox, vawelon001, 3, Roof", "zone '3/Roof' is not mapped"),
        ('2016-05-31 00:05:00, fixed-prox, "vawelon001, 1, 1', "broken CSV quoting"),
    ],
)
def test_malformed_rows_say_why(row: str, reason: str) -> None:
    parser = BadgeCsvParser(PROX_CONFIG)
    parser.parse("timestamp, type, prox-id, floor, zone")
    with pytest.raises(Malformed) as caught:
        parser.parse(row)
    assert reason in caught.value.reason
    if "time" in reason:
        assert "'timestamp'" in caught.value.reason


def test_an_unknown_outcome_is_malformed_naming_it() -> None:
    text = "when;card;door;result;reader\n2024-03-01T09:15:00;0042;D-101;tailgated;R-1\n"
    parser = BadgeCsvParser(READERS_CONFIG)
    lines = text.splitlines()
    parser.parse(lines[0])
    with pytest.raises(Malformed, match="outcome 'tailgated' in column 'result' is not mapped"):
        parser.parse(lines[1])


def test_blank_lines_a_bom_a_sep_hint_and_a_repeated_header_carry_no_event() -> None:
    text = (
        "\n"
        "sep=,\n"
        "\ufefftimestamp, type, prox-id, floor, zone\n"
        "2016-05-31 00:05:00, fixed-prox, vawelon001, 1, 1\n"
        "   \n"
        "timestamp, type, prox-id, floor, zone\n"
        "2016-05-31 00:20:00, fixed-prox, earpa001, 1, 1\n"
    )
    results = parse_all(PROX_CONFIG, text)
    assert [e.actor if e is not None else None for e in results] == [
        None, None, None, "vawelon001", None, None, "earpa001",
    ]  # fmt: skip


def test_a_header_without_a_configured_column_is_reported_on_every_row() -> None:
    parser = BadgeCsvParser(PROX_CONFIG)
    with pytest.raises(Malformed, match="no column 'prox-id'"):
        parser.parse("timestamp, type, badge, floor, zone")
    with pytest.raises(Malformed, match="no row can be read: the header has no column 'prox-id'"):
        parser.parse("2016-05-31 00:05:00, fixed-prox, vawelon001, 1, 1")
    assert parser.state() == {"header": ["timestamp", "type", "badge", "floor", "zone"]}


def test_a_configured_header_reads_a_file_without_one() -> None:
    config = {**PROX_CONFIG, "header": ["timestamp", "type", "prox-id", "floor", "zone"]}
    event = BadgeCsvParser(config).parse("2016-05-31 00:05:00, fixed-prox, vawelon001, 1, 1")
    assert event is not None
    assert event.actor == "vawelon001"


def test_a_quoted_field_may_hold_the_delimiter() -> None:
    parser = BadgeCsvParser({**PROX_CONFIG, "zones": {**ZONES, "3/Lab, east": "Z-LAB"}})
    parser.parse("timestamp, type, prox-id, floor, zone")
    event = parser.parse('2016-05-31 00:05:00, fixed-prox, "smith, j", 3, "Lab, east"')
    assert event is not None
    assert (event.actor, event.target, event.detail) == ("smith, j", "Z-LAB", "3/Lab, east")


_cell = st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n\x00\x1c\x1d\x1e\x85\u2028\u2029'), max_size=12)


@given(badge=_cell.filter(lambda s: s.strip() != ""), kind=_cell, zone=_cell, quote=st.booleans())
def test_split_and_csv_agree_with_the_csv_module(badge: str, kind: str, zone: str, quote: bool) -> None:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL if quote else csv.QUOTE_MINIMAL, lineterminator="").writerow(
        ["2016-05-31 00:05:00", kind, badge, "9", zone]
    )
    line = out.getvalue()
    oracle = next(csv.reader([line]))
    label = f"9/{oracle[4].strip()}"
    parser = BadgeCsvParser({**PROX_CONFIG, "zones": {label: "Z-X"}})
    parser.parse("timestamp, type, prox-id, floor, zone")
    event = parser.parse(line)
    assert event is not None
    assert (event.actor, event.target, event.detail) == (oracle[2].strip(), "Z-X", label)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"columns": {"time": "t", "badge": "b"}}, "config.columns.zone"),
        ({"columns": {"time": "t", "badge": "b", "zone": "z", "door": "d"}}, "config.columns.door"),
        ({"columns": {"time": "t", "badge": "t", "zone": "z"}}, "config.columns.badge"),
        ({"columns": {"time": "t", "badge": "b", "zone": []}}, "config.columns.zone"),
        ({"zones": {}}, "config.zones"),
        ({"zones": None}, "config.zones"),
        ({"timezone": "Europe/Atlantis"}, "config.timezone"),
        ({"time_format": "%Y-%q"}, "config.time_format"),
        ({"delimiter": ";;"}, "config.delimiter"),
        ({"outcomes": {"granted": "allowed"}}, "config.outcomes.granted"),
        ({"header": "timestamp,type"}, "config.header"),
    ],
)
def test_unusable_configuration_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        BadgeCsvParser({**PROX_CONFIG, **change})
    assert [e.field for e in caught.value.errors] == [field]


def test_names_and_framing() -> None:
    assert BadgeCsvParser.name == "badge-csv"
    assert BadgeCsvParser.framing == "lines"


@given(line=st.text(max_size=80))
def test_any_line_is_an_event_nothing_or_malformed(line: str) -> None:
    parser = BadgeCsvParser(PROX_CONFIG)
    parser.parse("timestamp, type, prox-id, floor, zone")
    event = event_or_reason(lambda: parser.parse(line))
    if isinstance(event, str):
        assert event  # Malformed, with a reason
        return
    assert event is None or event.target in ZONES.values()


def event_or_reason(parse: Callable[[], Event | None]) -> Event | str | None:
    try:
        return parse()
    except Malformed as exc:
        return exc.reason
