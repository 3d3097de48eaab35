"""Write a new Alembic revision from the difference between the models and head.

Usage: python scripts/make_migration.py "what changed"
Runs against a throwaway SQLite database brought up to head first.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from portcullis.core.db import make_engine
from portcullis.core.migrate import alembic_config


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "schema change"
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'm.db'}")
        cfg = alembic_config(engine)
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


if __name__ == "__main__":
    main()
