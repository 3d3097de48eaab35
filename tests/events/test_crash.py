"""A SIGKILL in the middle of a 1,000,000-line ingest: after resuming, the ledger is the same as an uninterrupted run's.

Both runs go through the real command line in a child process (with its second,
preparing process), on SQLite files of their own.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portcullis.core.clock import FrozenClock
from portcullis.core.migrate import upgrade
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.events import sources
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn
from tests.access.workflow_world import SYSTEM
from tests.events.world import OPENSSH
from tests.factories import make_user

LINES = 1_000_000


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sample = OPENSSH.read_bytes().rstrip(b"\n") + b"\n"
    assert sample.count(b"\n") == 2000
    path = tmp_path_factory.mktemp("crash") / "auth.log"
    with path.open("wb") as f:
        for _ in range(LINES // 2000):
            f.write(sample)
    return path


def _install(data_dir: Path) -> dict[str, str]:
    """A fresh installation with the bastion source; the environment for the command line."""
    rt = Runtime.build(Settings(data_dir=data_dir), FrozenClock(datetime.now(UTC)))
    upgrade(rt.engine)
    with rt.work(SYSTEM) as ctx:
        owner = inventory.create_person(
            ctx, PersonIn(external_id="HR-1", email="owner@example.eu", full_name="Owner", status="active")
        )
        inventory.create_asset(
            ctx,
            AssetIn(external_id="A-BASTION", name="Bastion", type="server", criticality="critical", owner_id=owner.id),
        )
        sources.create_source(
            ctx,
            sources.SourceIn(
                key="bastion",
                name="Bastion sshd",
                format="syslog",
                asset="A-BASTION",
                config={"parser": {"year": 2026}, "accounts": {"fztu": "HR-1"}},
            ),
        )
    token = make_user(rt, Role.SECURITY_OFFICER).token
    rt.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(PORTCULLIS_DATA_DIR=str(data_dir), PORTCULLIS_TOKEN=token)
    return env


def _ingest(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "portcullis", "events", "ingest", "bastion", str(log), "--quiet", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _position(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            row = con.execute("SELECT position FROM event_cursor").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0]) if row else 0


def _ledger(db: Path) -> tuple[list[tuple[int, bytes, bytes]], tuple[int, bytes], list[tuple[object, ...]]]:
    with sqlite3.connect(db) as con:
        sid, size, frontier = con.execute(
            "SELECT id, size, frontier FROM ledger_stream WHERE name = 'events:bastion'"
        ).fetchone()
        records = con.execute(
            "SELECT seq, payload, leaf_hash FROM ledger_record WHERE stream_id = ? ORDER BY seq", (sid,)
        ).fetchall()
        events = con.execute(
            "SELECT ledger_seq, time, category, action, outcome, actor, person_id, asset_id, source_address"
            " FROM access_event ORDER BY ledger_seq"
        ).fetchall()
    return records, (size, frontier), events


def test_sigkill_mid_ingest_then_resume_gives_the_same_ledger(tmp_path: Path, big_log: Path) -> None:
    killed_env = _install(tmp_path / "killed")
    whole_env = _install(tmp_path / "whole")
    db = tmp_path / "killed" / "portcullis.db"

    proc = _ingest(killed_env, big_log)
    deadline = time.monotonic() + 120
    while _position(db) < 200_000:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the ingest made no progress"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    taken = _position(db)
    assert 200_000 <= taken < LINES, "the kill must land in the middle of the ingest"

    resumed = _ingest(killed_env, big_log)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    whole = _ingest(whole_env, big_log)
    out_whole, err = whole.communicate(timeout=300)
    assert whole.returncode == 0, err.decode()

    assert json.loads(out)["raw"] == LINES - taken  # the resumed run took exactly what was left
    assert json.loads(out_whole)["raw"] == LINES
    killed = _ledger(db)
    uninterrupted = _ledger(tmp_path / "whole" / "portcullis.db")
    assert len(killed[0]) == LINES
    assert killed[0] == uninterrupted[0]  # every record: same index, same bytes, same leaf hash
    assert killed[1] == uninterrupted[1]  # same tree (size and frontier, hence root)
    assert killed[2] == uninterrupted[2]  # the same events, each pointing at the same record
