"""On PostgreSQL the application can run as a role that cannot UPDATE or DELETE the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from portcullis.core.context import Principal
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings
from portcullis.ledger.guard import grant_app_role
from portcullis.ledger.service import record_change
from tests.ledger.test_tamper import _verify

# Roles are PostgreSQL's; on SQLite the triggers alone guard the ledger (test_tamper).
pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.fixture
def app_role(rt: Runtime) -> Iterator[str]:
    role = f"portcullis_app_{uuid.uuid4().hex[:8]}"
    with rt.engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        grant_app_role(conn, role)
    yield role
    with rt.engine.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
        conn.execute(text(f"DROP ROLE {role}"))


def test_app_role_appends_but_cannot_rewrite(rt: Runtime, app_role: str) -> None:
    url = rt.engine.url.set(username=app_role).render_as_string(hide_password=False)
    as_app = Runtime.build(Settings(data_dir=rt.settings.data_dir, database_url=url), rt.clock)
    try:
        with as_app.work(Principal.system("t")) as ctx:
            for i in range(20):
                record_change(ctx, "thing.created", "thing", i, None, {"n": i})
        for stmt in (
            "UPDATE ledger_record SET action = 'x'",
            "DELETE FROM ledger_record",
            "DELETE FROM ledger_node",
            "UPDATE ledger_checkpoint SET size = 0",
            "TRUNCATE ledger_record",
            "INSERT INTO ledger_purge_gate (opened_at, reason) VALUES (now(), 'x')",
        ):
            with pytest.raises(ProgrammingError, match="permission denied"), as_app.engine.begin() as conn:
                conn.execute(text(stmt))
    finally:
        as_app.engine.dispose()
    assert _verify(rt).records == 20


def test_role_names_are_checked(db_url: str) -> None:
    engine = create_engine("sqlite://")
    with engine.begin() as conn, pytest.raises(ValueError, match="letters, digits"):
        grant_app_role(conn, "x; DROP TABLE person")
