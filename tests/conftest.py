"""Fixtures shared by the whole suite.

Every database test runs twice: on SQLite and on the PostgreSQL server at
127.0.0.1:5432 (PORTCULLIS_TEST_PG to point elsewhere). Without PostgreSQL the
second run is skipped, unless CI=true, when it fails: CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from portcullis.core.clock import FrozenClock
from portcullis.core.db import make_engine
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from portcullis.ledger.guard import install as install_guards
from portcullis.models import metadata

PG_ADMIN_URL = os.environ.get("PORTCULLIS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"
START = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now, for a server a test starts as a separate process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def need(reason: str) -> None:
    """Skip for a missing component, or fail under CI=true."""
    if IN_CI:
        pytest.fail(f"CI=true and a required component is missing: {reason}")
    pytest.skip(reason)


def _stamp(engine_url: str) -> None:
    from alembic import command

    from portcullis.core.migrate import alembic_config

    engine = make_engine(engine_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        install_guards(conn)
    command.stamp(alembic_config(engine), "head")
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _stamp(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this test run, dropped at the end."""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # any connection failure means "not available"
        need(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    name = f"portcullis_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    _stamp(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "var" / "portcullis.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=db_url)


@pytest.fixture
def rt(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = Runtime.build(settings, clock)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def client(rt: Runtime) -> Iterator[TestClient]:
    from portcullis.app import create_app

    with TestClient(create_app(rt), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def cli_env(rt: Runtime, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The command line (which reads its settings from the environment) on this test's database.

    It runs on the real clock: the test clock moves to now first, so tokens made for it are valid.
    """
    real_now = datetime.now(UTC)
    if real_now > clock.now():
        clock.advance(real_now - clock.now())
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", settings.effective_database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
