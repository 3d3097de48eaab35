"""Alembic, driven from code so that `portcullis db upgrade` needs no alembic.ini."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from portcullis.core.errors import SchemaBehind


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "portcullis:migrations")
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def ensure_current(engine: Engine) -> None:
    """Refuse to run against a schema the code does not match, with the fix in the message."""
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise SchemaBehind(
            f"The database schema is at revision {current or 'none (empty database)'} "
            f"but this version of Portcullis needs {head}. Run `portcullis db upgrade` first."
        )
