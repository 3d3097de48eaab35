"""What every benchmark shares: throwaway PostgreSQL databases and its section of BENCHMARKS.md."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("PORTCULLIS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


class PgDatabases:
    """Throwaway PostgreSQL databases for one run, dropped at the end."""

    def __init__(self, admin: str = PG_ADMIN) -> None:
        self.admin = admin
        self.engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def available(self) -> bool:
        try:
            self.engine.connect().close()
        except Exception:  # any failure to connect means: no PostgreSQL here
            return False
        return True

    def __call__(self, name: str) -> str:
        db = f"portcullis_bench_{name}_{os.getpid()}"
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        self.names.append(db)
        return self.admin.rsplit("/", 1)[0] + "/" + db

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for db in self.names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        self.engine.dispose()


def write_section(name: str, lines: list[str]) -> None:
    """Replace this benchmark's section of BENCHMARKS.md (between its markers), or add it."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    path = ROOT / "BENCHMARKS.md"
    body = path.read_text() if path.exists() else "# Benchmarks\n\n"
    section = "\n".join([begin, *lines, end])
    if begin in body:
        head, rest = body.split(begin, 1)
        body = head + section + rest.split(end, 1)[1]
    else:
        body = body.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(body)
