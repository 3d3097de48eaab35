"""Each format through the whole pipeline: badges onto zones and people, CloudTrail documents, Keycloak
lines, malformed input of every kind quarantined, retention by criticality, a followed file."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from portcullis.core.clock import FrozenClock
from portcullis.core.errors import ValidationFailed
from portcullis.core.runtime import Runtime
from portcullis.events import sources
from portcullis.events.models import EventSource
from portcullis.events.retention import event_stream_retention, source_retention_days
from portcullis.events.runner import Ingestion
from portcullis.events.usage import USE_FINDING
from portcullis.inventory import service as inventory
from portcullis.inventory.models import Zone
from portcullis.inventory.proportionality import default_value
from portcullis.inventory.schemas import PersonIn, ZoneIn
from portcullis.ledger.models import LedgerStream
from portcullis.ledger.retention import purge_stream
from portcullis.ledger.verify import verify_stream
from tests.access.workflow_world import SYSTEM
from tests.events.world import BADGES, EventWorld, build_event_world, openssh_lines
from tests.events.world import OPENSSH as OPENSSH_PATH

FLOOR_ZONES = {"1": "Z-F1", "2": "Z-F2", "3": "Z-F3"}


@pytest.fixture
def ew(rt: Runtime) -> EventWorld:
    return build_event_world(rt)


def _badge_rows() -> list[dict[str, str]]:
    with BADGES.open(encoding="utf-8", newline="") as f:
        return [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(f)]


def _badge_world(ew: EventWorld) -> dict[str, int]:
    """Three floor zones plus the server room; every one of the sample's badges held by one of six people."""
    rows = _badge_rows()
    badges = sorted({r["prox-id"] for r in rows})
    zones: dict[str, int] = {}
    with ew.rt.work(SYSTEM) as ctx:
        server_room = ctx.session.get(Zone, ew.w.zone_id)
        assert server_room is not None
        site = server_room.site_id
        for floor, ext in FLOOR_ZONES.items():
            zones[ext] = inventory.create_zone(
                ctx,
                ZoneIn(external_id=ext, site_id=site, name=f"Floor {floor}", kind="office_area", criticality="other"),
            ).id
        for i in range(6):
            inventory.create_person(
                ctx,
                PersonIn(external_id=f"HR-B{i}", email=f"b{i}@kestrel.example.eu", full_name=f"B {i}", status="active"),
            )
    labels = {f"{r['floor']}/{r['zone']}" for r in rows}
    zone_map = {lb: ("Z-SRV" if lb.endswith("Server Room") else FLOOR_ZONES[lb.split("/")[0]]) for lb in labels}
    ew.add_source(
        "office",
        "badge-csv",
        asset=None,
        zone="Z-SRV",
        config={
            "parser": {
                "columns": {"time": "timestamp", "badge": "prox-id", "zone": ["floor", "zone"]},
                "time_format": "%Y-%m-%d %H:%M:%S",
                "zones": zone_map,
            },
            "badges": {b: f"HR-B{i % 6}" for i, b in enumerate(badges)},
        },
    )
    zones["Z-SRV"] = ew.w.zone_id
    return zones


def test_the_badge_sample_ingests_completely(ew: EventWorld) -> None:
    zones = _badge_world(ew)
    totals = ew.ingest("office", BADGES)
    rows = _badge_rows()
    assert totals["raw"] == len(rows) + 1  # the header is a record too
    assert totals["quarantined"] == 0
    assert totals["events"] == len(rows) == 29_763
    events = ew.events("office")
    by_zone = Counter(e.zone_id for e in events)
    server_room = sum(1 for r in rows if r["zone"] == "Server Room")
    assert by_zone[zones["Z-SRV"]] == server_room == 29
    assert by_zone[zones["Z-F3"]] == sum(1 for r in rows if r["floor"] == "3" and r["zone"] != "Server Room")
    assert all(e.person_id is not None for e in events)
    assert {(e.category, e.action, e.outcome) for e in events} == {("physical_entry", "entry", "success")}
    # Nobody holds a grant to these zones: one finding per person and zone entered, not one per entry.
    findings = ew.findings(USE_FINDING)
    entered = {(e.person_id, e.zone_id) for e in events}
    assert len(findings) == len(entered)
    assert any("Z-SRV" in f.detail for f in findings)


def test_an_unknown_badge_and_an_unmapped_zone_are_quarantined(ew: EventWorld, tmp_path: Path) -> None:
    _badge_world(ew)
    lines = BADGES.read_text(encoding="utf-8").splitlines()
    header, good = lines[0], lines[1]
    unknown = good.replace(good.split(", ")[2], "nobody999")
    roof = good.rsplit(", ", 2)[0] + ", 4, Roof"
    bad_time = "2016-05-31 25:61:00" + good[len("2016-05-31 00:05:00") :]
    short = good.rsplit(", ", 1)[0]
    path = tmp_path / "badges.csv"
    path.write_text("\n".join([header, good, unknown, roof, bad_time, short, good]) + "\n", encoding="utf-8")
    totals = ew.ingest("office", path)
    assert (totals["raw"], totals["events"], totals["quarantined"]) == (7, 2, 4)
    reasons = [q.reason for q in ew.quarantine("office")]
    assert [q.position for q in ew.quarantine("office")] == [3, 4, 5, 6]
    assert "nobody999" in reasons[0]
    assert "4/Roof" in reasons[1]
    assert "25:61:00" in reasons[2]
    assert "column" in reasons[3]


CLOUDTRAIL = {
    "Records": [
        {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::1:user/ana",
                "accountId": "111122223333",
                "userName": "ana",
            },
            "eventTime": "2026-12-01T08:00:00Z",
            "eventSource": "signin.amazonaws.com",
            "eventName": "ConsoleLogin",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "198.51.100.7",
            "responseElements": {"ConsoleLogin": "Success"},
            "additionalEventData": {"MFAUsed": "Yes"},
        },
        {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::1:user/ana",
                "accountId": "111122223333",
                "userName": "ana",
            },
            "eventTime": "2026-12-01T08:05:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "awsRegion": "eu-west-1",
            "sourceIPAddress": "198.51.100.7",
        },
    ]
}


def test_a_cloudtrail_document_goes_record_by_record(ew: EventWorld, tmp_path: Path) -> None:
    ew.add_source("aws", "cloudtrail", config={"accounts": {"ana": "HR-ana"}})
    path = tmp_path / "111122223333_CloudTrail_eu-west-1_20261201T0800Z.json"
    path.write_text(json.dumps(CLOUDTRAIL, indent=2), encoding="utf-8")
    totals = ew.ingest("aws", path)
    assert (totals["raw"], totals["events"], totals["quarantined"]) == (2, 2, 0)
    login, create = ew.events("aws")
    assert (login.action, login.method, login.person_id) == ("login", "mfa", ew.w.people["ana"])
    assert (create.category, create.privileged) == ("privileged_action", True)
    # Each raw record in the ledger is the record itself, whatever the file's layout.
    raws = [json.loads(json.loads(p)["raw"]) for _, p, _ in ew.ledger("aws")]
    assert raws == CLOUDTRAIL["Records"]
    assert ew.ingest("aws", path)["raw"] == 0  # the document is known: nothing twice


def test_keycloak_lines_and_broken_json(ew: EventWorld, tmp_path: Path) -> None:
    ew.add_source("sso", "keycloak", asset="A-APP", config={"accounts": {"kc-ana": "HR-ana"}})
    ok = {
        "time": 1796112000000,
        "type": "LOGIN",
        "realmId": "kestrel",
        "clientId": "backoffice",
        "userId": "kc-ana",
        "ipAddress": "10.1.2.3",
        "details": {"username": "ana", "auth_method": "openid-connect"},
    }
    path = tmp_path / "keycloak.jsonl"
    path.write_text(json.dumps(ok) + "\n" + '{"time": 1796112000000, "type": "LOG' + "\n", encoding="utf-8")
    totals = ew.ingest("sso", path)
    assert (totals["raw"], totals["events"], totals["quarantined"]) == (2, 1, 1)
    [q] = ew.quarantine("sso")
    assert q.position == 2
    assert "JSON" in q.reason
    [e] = ew.events("sso")
    assert (e.person_id, e.asset_id) == (ew.w.people["ana"], ew.w.asset_id)


def test_retention_follows_the_criticality_of_what_the_source_reports_on(ew: EventWorld) -> None:
    ew.add_source("bastion", "syslog", config={"parser": {"year": 2026}})  # A-DB is critical
    ew.add_source("backoffice", "syslog", asset="A-APP", config={"parser": {"year": 2026}})  # important
    ew.add_source(
        "server-room",
        "badge-csv",
        asset=None,
        zone="Z-SRV",
        config={
            "parser": {"columns": {"time": "t", "badge": "b", "zone": "z"}, "zones": {"x": "Z-SRV"}},
        },
    )
    with ew.rt.session() as s:
        bastion = s.scalars(select(EventSource).where(EventSource.key == "bastion")).one()
        app = s.scalars(select(EventSource).where(EventSource.key == "backoffice")).one()
        assert source_retention_days(s, bastion) == default_value(s, "retention_days.critical")
        assert source_retention_days(s, app) == default_value(s, "retention_days.important")
        assert default_value(s, "retention_days.critical") > default_value(s, "retention_days.important")
    # An override wins, with its reason, and the ledger's purge asks the same question.
    with ew.rt.work(SYSTEM) as ctx:
        data = sources.SourceIn(
            key="backoffice",
            name="Backoffice",
            format="syslog",
            asset="A-APP",
            config={"parser": {"year": 2026}},
            retention_days=3650,
            retention_reason="litigation hold",
        )
        sources.update_source(ctx, "backoffice", data)
    Ingestion(ew.rt, SYSTEM, "backoffice").stream(_bytes_io(openssh_lines()[0]), "test")
    with ew.rt.session() as s:
        stream = s.scalars(select(LedgerStream).where(LedgerStream.name == "events:backoffice")).one()
        assert event_stream_retention(s, stream) == 3650


def test_an_override_without_a_reason_is_refused(ew: EventWorld) -> None:
    with ew.rt.work(SYSTEM) as ctx, pytest.raises(ValidationFailed) as exc:
        sources.create_source(
            ctx, sources.SourceIn(key="x", name="X", format="syslog", asset="A-APP", retention_days=30)
        )
    assert [e.field for e in exc.value.errors] == ["retention_reason"]


def _bytes_io(line: str) -> io.BytesIO:
    return io.BytesIO((line + "\n").encode())


def test_follow_takes_lines_as_they_are_written(ew: EventWorld, tmp_path: Path) -> None:
    ew.add_source("bastion", "syslog", config={"parser": {"year": 2026}})
    lines = openssh_lines()[:30]
    log = tmp_path / "auth.log"
    log.write_text("\n".join(lines[:10]) + "\n", encoding="utf-8")
    stop = threading.Event()
    run = Ingestion(ew.rt, SYSTEM, "bastion")
    worker = threading.Thread(target=lambda: run.file(log, follow=True, stop=stop, poll=0.05))
    worker.start()
    try:
        _wait_for(lambda: len(ew.ledger("bastion")) == 10)
        with log.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines[10:20]) + "\n")
            f.write(lines[20][:25])  # a line being written: not taken until its newline comes
            f.flush()
            _wait_for(lambda: len(ew.ledger("bastion")) == 20)
            time.sleep(0.2)
            assert len(ew.ledger("bastion")) == 20
            f.write(lines[20][25:] + "\n" + "\n".join(lines[21:]) + "\n")
        _wait_for(lambda: len(ew.ledger("bastion")) == 30)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert [json.loads(p)["raw"] for _, p, _ in ew.ledger("bastion")] == lines
    assert ew.quarantine("bastion") == []


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_ledger_purge_keeps_a_source_as_long_as_its_retention(ew: EventWorld) -> None:
    with ew.rt.work(SYSTEM) as ctx:
        sources.create_source(
            ctx,
            sources.SourceIn(
                key="bastion",
                name="B",
                format="syslog",
                asset="A-DB",
                config={"parser": {"year": 2026}},
                retention_days=30,
                retention_reason="test of the purge",
            ),
        )
    ew.ingest("bastion", OPENSSH_PATH)
    clock = ew.rt.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(days=29))
    with ew.rt.work(SYSTEM) as ctx:
        assert purge_stream(ctx, "events:bastion").count == 0  # not yet
    clock.advance(timedelta(days=2))
    with ew.rt.work(SYSTEM) as ctx:
        result = purge_stream(ctx, "events:bastion")
    assert (result.retention_days, result.count) == (30, 2000)
    with ew.rt.session() as s:
        stream = s.scalars(select(LedgerStream).where(LedgerStream.name == "events:bastion")).one()
        assert verify_stream(s, stream, ew.rt.signer.verifier).ok
