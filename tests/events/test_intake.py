"""The ways in: the HTTP batch intake with its per-source token, syslog over the network, the CLI."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.events import sources
from portcullis.events.listen import SyslogIntake
from portcullis.events.syslog_server import SyslogReceiver
from tests.access.workflow_world import SYSTEM
from tests.events.world import OPENSSH, EventWorld, build_event_world, openssh_lines
from tests.factories import make_user

CONFIG = {"parser": {"year": 2026}, "accounts": {"fztu": "HR-ana"}}


@pytest.fixture
def ew(rt: Runtime) -> EventWorld:
    w = build_event_world(rt)
    w.add_source("bastion", "syslog", config=CONFIG)
    return w


def _token(ew: EventWorld, key: str = "bastion") -> str:
    with ew.rt.work(SYSTEM) as ctx:
        return sources.issue_token(ctx, key)


def test_batch_intake_takes_lines_with_the_source_token(ew: EventWorld, client: TestClient) -> None:
    token = _token(ew)
    lines = openssh_lines()[:300]
    body = ("\n".join(lines) + "\n").encode()
    r = client.post("/ingest/v1/sources/bastion/batch", content=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["raw"] == 300
    assert [json.loads(p)["raw"] for _, p, _ in ew.ledger("bastion")] == lines


def test_a_retried_batch_is_not_taken_twice(ew: EventWorld, client: TestClient) -> None:
    token = _token(ew)
    body = ("\n".join(openssh_lines()[:50]) + "\n").encode()
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "shipper-7/000123"}
    first = client.post("/ingest/v1/sources/bastion/batch", content=body, headers=headers)
    again = client.post("/ingest/v1/sources/bastion/batch", content=body, headers=headers)
    assert (first.json()["raw"], first.json()["duplicate"]) == (50, False)
    assert (again.json()["raw"], again.json()["duplicate"]) == (0, True)
    assert len(ew.ledger("bastion")) == 50


def test_batch_intake_refuses_bad_tokens(ew: EventWorld, client: TestClient) -> None:
    ew.add_source("badges", "syslog", asset="A-APP", config={"parser": {"year": 2026}})
    token = _token(ew)
    other = _token(ew, "badges")
    body = openssh_lines()[0].encode()
    url = "/ingest/v1/sources/bastion/batch"
    assert client.post(url, content=body).status_code == 401
    assert client.post(url, content=body, headers={"Authorization": "Bearer pcs_nope.nope"}).status_code == 401
    assert client.post(url, content=body, headers={"Authorization": f"Bearer {other}"}).status_code == 401
    assert client.post(url, content=body, headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    # A user's API token is not a source token, whatever the user may do.
    admin = make_user(ew.rt, Role.ADMIN)
    assert client.post(url, content=body, headers=admin.headers).status_code == 401
    assert ew.ledger("bastion") == []
    # A new token replaces the old one.
    fresh = _token(ew)
    assert client.post(url, content=body, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert client.post(url, content=body, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_the_token_is_not_in_the_ledger(ew: EventWorld) -> None:
    from sqlalchemy import select

    from portcullis.ledger.models import LedgerRecord

    token = _token(ew)
    secret = token.split(".", 1)[1]
    with ew.rt.session() as s:
        payloads = b"".join(s.scalars(select(LedgerRecord.payload)))
    assert secret.encode() not in payloads
    assert token.split(".", 1)[0][len("pcs_") :].encode() in payloads  # the lookup id is, to say which token


def test_syslog_over_udp_and_tcp_reaches_the_source(ew: EventWorld) -> None:
    lines = openssh_lines()[:40]
    intake = SyslogIntake(ew.rt, SYSTEM, "bastion")

    async def run() -> None:
        receiver = SyslogReceiver(intake, batch_size=1000, flush_interval=0.05)
        await receiver.start(udp_port=0, tcp_port=0)
        assert receiver.tcp_port is not None
        assert receiver.udp_port is not None
        _reader, writer = await asyncio.open_connection("127.0.0.1", receiver.tcp_port)
        for line in lines[:20]:
            data = line.encode()
            writer.write(f"{len(data)} ".encode() + data)  # RFC 6587 octet counting
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for line in lines[20:]:
                udp.sendto(line.encode(), ("127.0.0.1", receiver.udp_port))
        await asyncio.sleep(0.3)
        await receiver.stop()

    asyncio.run(run())
    assert [json.loads(p)["raw"] for _, p, _ in ew.ledger("bastion")] == lines
    assert [json.loads(p)["line"] for _, p, _ in ew.ledger("bastion")] == list(range(1, 41))
    assert intake.totals.raw == 40


def test_syslog_senders_are_routed_by_address(ew: EventWorld) -> None:
    ew.add_source("gateway", "syslog", asset="A-APP", config={"parser": {"year": 2026}, "syslog_hosts": ["127.0.0.1"]})
    intake = SyslogIntake(ew.rt, SYSTEM, "bastion")

    async def run() -> None:
        receiver = SyslogReceiver(intake, flush_interval=0.05)
        await receiver.start(udp_port=0)
        assert receiver.udp_port is not None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.sendto(openssh_lines()[0].encode(), ("127.0.0.1", receiver.udp_port))
        await asyncio.sleep(0.3)
        await receiver.stop()

    asyncio.run(run())
    assert len(ew.ledger("gateway")) == 1
    assert ew.ledger("bastion") == []


@pytest.fixture
def officer(rt: Runtime, cli_env: None) -> str:
    return make_user(rt, Role.SECURITY_OFFICER).token


def _cli(token: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["events", *args], env={"PORTCULLIS_TOKEN": token, "COLUMNS": "250"})


def test_cli_source_ingest_search_and_quarantine(ew: EventWorld, officer: str, tmp_path: Path) -> None:
    config = tmp_path / "badge.json"
    config.write_text(json.dumps({"parser": {"year": 2026}}), encoding="utf-8")
    r = _cli(
        officer,
        "source",
        "add",
        "web",
        "--name",
        "Web",
        "--format",
        "syslog",
        "--asset",
        "A-APP",
        "--config",
        str(config),
        "--json",
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["stream"] == "events:web"
    r = _cli(officer, "ingest", "bastion", str(OPENSSH), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["raw"] == 2000
    r = _cli(officer, "search", "--person", "ana@kestrel.example.eu", "--json")
    assert r.exit_code == 0, r.output
    found = json.loads(r.output)
    assert found["total"] >= 1
    assert {e["actor"] for e in found["items"]} == {"fztu"}
    out = tmp_path / "events.csv"
    r = _cli(officer, "search", "--outcome", "failure", "--category", "authentication", "--csv", str(out))
    assert r.exit_code == 0, r.output
    rows = out.read_text(encoding="utf-8").splitlines()
    failures = [e for e in ew.events("bastion") if (e.outcome, e.category) == ("failure", "authentication")]
    assert len(rows) == len(failures) + 1
    bad = tmp_path / "bad.log"
    bad.write_bytes(b"Dec 10 06:55\n")
    r = _cli(officer, "ingest", "bastion", str(bad), "--json")
    assert json.loads(r.output)["quarantined"] == 1
    r = _cli(officer, "quarantine", "--source", "bastion", "--json")
    [q] = json.loads(r.output)["items"]
    assert (q["position"], q["raw"]) == (1, "Dec 10 06:55")
    r = _cli(officer, "search", "--outcome", "maybe")
    assert r.exit_code == 2
    assert "outcome" in r.output
    r = _cli(officer, "ingest", "nosuch", str(OPENSSH))
    assert r.exit_code == 3


def test_staff_cannot_ingest_or_search(ew: EventWorld, cli_env: None) -> None:
    staff = make_user(ew.rt, Role.STAFF).token
    assert _cli(staff, "ingest", "bastion", str(OPENSSH)).exit_code == 6
    assert _cli(staff, "search").exit_code == 6
    assert ew.ledger("bastion") == []
