from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.clock import FrozenClock
from portcullis.core.runtime import Runtime
from portcullis.core.settings import get_settings
from portcullis.ledger.models import LedgerCheckpoint, LedgerRecord
from portcullis.ledger.store import get_stream
from portcullis.scheduler import run_once
from tests.ledger.test_tamper import _fill, _verify


def test_tick_purges_then_checkpoints(rt: Runtime, clock: FrozenClock) -> None:
    _fill(rt, 50)
    clock.advance(timedelta(days=2000))  # past the standard tier's 1825 days for the audit trail
    _fill(rt, 5)
    results = run_once(rt)
    assert all(r["ok"] for r in results.values()), results
    assert results["ledger.purge"]["result"][0]["purged_to"] == 48
    with rt.session() as s:
        stream = get_stream(s, "audit")
        latest = s.scalar(select(func.max(LedgerCheckpoint.size)).where(LedgerCheckpoint.stream_id == stream.id))
        # The checkpoint covers the purge record and its own request record.
        assert latest == stream.size
        actions = set(s.scalars(select(LedgerRecord.action).where(LedgerRecord.seq >= 55)))
    assert {"ledger.purged", "ledger.checkpointed"} <= actions
    assert _verify(rt).ok
    again = run_once(rt)
    assert again["ledger.purge"]["result"] == []
    assert again["ledger.checkpoint"]["result"] == []


def test_tick_command(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", rt.settings.effective_database_url)
    get_settings.cache_clear()
    try:
        _fill(rt, 3)
        result = CliRunner().invoke(app, ["tick", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["ledger.checkpoint"]["ok"] is True
    finally:
        get_settings.cache_clear()


def test_a_failing_job_neither_stops_nor_hides(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from portcullis import scheduler

    ran: list[str] = []

    def broken(ctx: object, rt_: object) -> None:
        raise RuntimeError("the disk is full")

    def after(ctx: object, rt_: object) -> str:
        ran.append("after")
        return "done"

    monkeypatch.setattr(scheduler, "JOBS", [("broken", broken), ("after", after)])
    results = scheduler.run_once(rt)
    assert results["broken"] == {"ok": False, "error": "RuntimeError: the disk is full"}
    assert results["after"] == {"ok": True, "result": "done"}
    assert ran == ["after"]
