"""The ingestion pipeline on the real OpenSSH sample: ledger, events, usage, findings, cursors, quarantine."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portcullis.core.runtime import Runtime
from portcullis.events.models import AccessEvent
from portcullis.events.usage import UNATTRIBUTED_FINDING, USE_FINDING
from tests.events.world import OPENSSH, EventWorld, build_event_world, openssh_lines, openssh_templates

BASTION = {"parser": {"year": 2026, "timezone": "UTC"}, "accounts": {"fztu": "HR-ana"}}


@pytest.fixture
def ew(rt: Runtime) -> EventWorld:
    return build_event_world(rt)


def _accepted_line() -> tuple[int, datetime]:
    """The sample's one accepted login (template E1), found from the structured CSV, not from our parser."""
    [(n, line)] = [
        (i + 1, ln) for i, (ln, t) in enumerate(zip(openssh_lines(), openssh_templates(), strict=True)) if t == "E1"
    ]
    when = datetime.strptime("2026 " + line[:15], "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
    return n, when


def test_every_line_is_a_ledger_record_in_order(ew: EventWorld) -> None:
    ew.add_source("bastion", "syslog", config=BASTION)
    totals = ew.ingest("bastion", OPENSSH, batch_size=700)
    lines = openssh_lines()
    ledger = ew.ledger("bastion")
    assert totals["raw"] == len(ledger) == len(lines) == 2000
    for (seq, payload, _), line in zip(ledger, lines, strict=True):
        assert json.loads(payload) == {"line": seq + 1, "raw": line}
    assert totals["quarantined"] == 0
    events = ew.events("bastion")
    assert totals["events"] == len(events) > 1000
    # Each event points at the raw record it came from.
    for e in events[:50]:
        assert json.loads(ledger[e.ledger_seq][1])["raw"].startswith(e.time.strftime("%b %d %H:%M:%S"))
    src = ew.source("bastion")
    assert (src.raw_total, src.events_total, src.quarantined_total) == (2000, len(events), 0)


def test_the_accepted_login_marks_the_grant_used(ew: EventWorld) -> None:
    ew.add_source("bastion", "syslog", config=BASTION)
    ew.ingest("bastion", OPENSSH)
    n, when = _accepted_line()
    [login] = [e for e in ew.events("bastion") if e.ledger_seq == n - 1]
    assert (login.category, login.action, login.outcome, login.actor) == ("authentication", "login", "success", "fztu")
    assert login.person_id == ew.w.people["ana"]
    assert login.asset_id == ew.w.critical_asset_id
    assert login.time == when
    last_used = ew.grant_last_used()
    assert last_used is not None
    assert last_used >= when  # the session that follows counts as use too
    assert ew.findings(USE_FINDING) == []
    assert ew.findings(UNATTRIBUTED_FINDING) == []


def test_use_before_the_grant_existed_is_a_finding(ew: EventWorld) -> None:
    ew.add_source("bastion", "syslog", config={**BASTION, "parser": {"year": 2025}})
    ew.ingest("bastion", OPENSSH)
    assert ew.grant_last_used() is None
    [f] = ew.findings(USE_FINDING)
    assert f.person_id == ew.w.people["ana"]
    assert "A-DB" in f.detail
    assert f.severity == "high"  # the custody database is critical


def test_an_account_nobody_holds_is_a_finding(ew: EventWorld) -> None:
    ew.add_source("bastion", "syslog", config={"parser": {"year": 2026}})
    ew.ingest("bastion", OPENSSH)
    [f] = ew.findings(UNATTRIBUTED_FINDING)
    assert "'fztu'" in f.detail
    # The failed attempts of scanners are events, not uses: only the accepted login and its session count.
    assert ew.findings(USE_FINDING) == []


def test_a_file_is_taken_once_even_renamed_and_resumes_after_growth(ew: EventWorld, tmp_path: Path) -> None:
    ew.add_source("bastion", "syslog", config=BASTION)
    lines = openssh_lines()
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines[:1200]) + "\n", encoding="utf-8")
    assert ew.ingest("bastion", log)["raw"] == 1200
    assert ew.ingest("bastion", log)["raw"] == 0
    with log.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines[1200:]) + "\n")
    copy = tmp_path / "auth.log.1"
    shutil.copy(log, copy)
    assert ew.ingest("bastion", copy)["raw"] == 800
    assert ew.ingest("bastion", log)["raw"] == 0
    ledger = ew.ledger("bastion")
    assert [json.loads(p)["raw"] for _, p, _ in ledger] == lines


def test_a_different_file_starts_at_zero(ew: EventWorld, tmp_path: Path) -> None:
    ew.add_source("bastion", "syslog", config=BASTION)
    lines = openssh_lines()
    (tmp_path / "a.log").write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    (tmp_path / "b.log").write_text("\n".join(lines[10:30]) + "\n", encoding="utf-8")
    assert ew.ingest("bastion", tmp_path / "a.log")["raw"] == 10
    assert ew.ingest("bastion", tmp_path / "b.log")["raw"] == 20


def test_malformed_records_are_quarantined_with_reason_and_position(ew: EventWorld, tmp_path: Path) -> None:
    ew.add_source("bastion", "syslog", config=BASTION)
    good = openssh_lines()[1]
    bad = [
        good.encode(),
        b"Dec 10 06:55",  # truncated in the header
        good.encode()[:30] + b"\xff\xfe" + good.encode()[32:],  # not UTF-8
        b"Dec 99 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",  # no such day
        good.encode(),
    ]
    data = b"\n".join(bad) + b"\n"
    log = tmp_path / "mixed.log"
    log.write_bytes(data)
    totals = ew.ingest("bastion", log)
    assert totals == {"raw": 5, "events": 2, "quarantined": 3, "findings": 0}
    q = ew.quarantine("bastion")
    assert [r.position for r in q] == [2, 3, 4]
    assert [r.raw for r in q] == bad[1:4]
    assert [r.offset for r in q] == [data.index(b"\n" + b) + 1 for b in bad[1:4]]
    assert "UTF-8" in q[1].reason
    assert "0xff" in q[1].reason
    assert "99" in q[2].reason
    assert q[0].reason
    # Nothing is lost: the quarantined records are in the ledger too, where the quarantine says.
    ledger = ew.ledger("bastion")
    assert len(ledger) == 5
    assert [r.ledger_seq for r in q] == [1, 2, 3]
    assert "raw_b64" in json.loads(ledger[2][1])


def test_every_event_has_a_utc_time_and_a_known_category(ew: EventWorld) -> None:
    ew.add_source("bastion", "syslog", config=BASTION)
    ew.ingest("bastion", OPENSSH)
    events = ew.events("bastion")
    assert {e.category for e in events} <= {"authentication", "session", "privileged_action"}
    assert all(e.time.tzinfo is not None and e.time.utcoffset().total_seconds() == 0 for e in events)  # type: ignore[union-attr]
    assert ew.count(AccessEvent) == len(events)
