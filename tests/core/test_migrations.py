"""Alembic migrations build exactly the schema the models describe, and a server
refuses to start on a database whose schema is behind."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from portcullis.cli import app as cli_app
from portcullis.core import migrate
from portcullis.core.db import make_engine
from portcullis.core.errors import SchemaBehind
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from portcullis.models import metadata
from tests.conftest import PG_ADMIN_URL, need


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        admin.connect().close()
    except Exception as exc:
        need(f"PostgreSQL not reachable: {exc.__class__.__name__}")
    name = f"portcullis_empty_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_match_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    assert diff == [], "models and migrations differ: run `make migration`"


def test_server_refuses_a_schema_that_is_behind(empty_url: str, tmp_path: Path) -> None:
    from portcullis.app import create_app

    rt = Runtime.build(Settings(data_dir=tmp_path, database_url=empty_url))
    with pytest.raises(SchemaBehind) as exc, TestClient(create_app(rt)):
        pass
    assert "portcullis db upgrade" in str(exc.value)
    rt.engine.dispose()


def test_cli_upgrade_then_serve_check(empty_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", empty_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        refused = runner.invoke(cli_app, ["serve", "--port", "1"])
        assert refused.exit_code == SchemaBehind.exit_code
        assert "portcullis db upgrade" in refused.output
        assert runner.invoke(cli_app, ["db", "upgrade"]).exit_code == 0
        current = runner.invoke(cli_app, ["db", "current", "--json"])
        assert current.exit_code == 0
        assert json.loads(current.output)["up_to_date"] is True
    finally:
        get_settings.cache_clear()
