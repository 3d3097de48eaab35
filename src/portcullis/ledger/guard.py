"""Database-side refusal of UPDATE and DELETE on the ledger tables.

The triggers stop mistakes and ordinary application code; they do not stop a
database owner, which is what the Merkle tree and the signed checkpoints are for.
Purging expired payloads is the one sanctioned deletion: it opens the gate by
inserting a row into ledger_purge_gate inside its own transaction.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

PROTECTED = ("ledger_record", "ledger_node", "ledger_checkpoint")

_PG = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'ledger_record'
     AND EXISTS (SELECT 1 FROM ledger_purge_gate) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'ledger tables are append-only: % on % refused', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION ledger_refuse_shrink() RETURNS trigger AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'ledger streams cannot be deleted' USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.size < OLD.size OR NEW.name <> OLD.name THEN
    RAISE EXCEPTION 'a ledger stream cannot shrink or be renamed' USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


def install(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text(_PG))
        for table in PROTECTED:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
            conn.execute(
                text(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
                )
            )
        conn.execute(text("DROP TRIGGER IF EXISTS ledger_stream_grows ON ledger_stream"))
        conn.execute(
            text(
                "CREATE TRIGGER ledger_stream_grows BEFORE UPDATE OR DELETE ON ledger_stream "
                "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_shrink()"
            )
        )
        return
    for table in PROTECTED:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
        conn.execute(
            text(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger tables are append-only: UPDATE on {table} refused'); END"
            )
        )
        gate = " WHEN NOT EXISTS (SELECT 1 FROM ledger_purge_gate)" if table == "ledger_record" else ""
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        conn.execute(
            text(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}{gate} "
                f"BEGIN SELECT RAISE(ABORT, 'ledger tables are append-only: DELETE on {table} refused'); END"
            )
        )
    conn.execute(text("DROP TRIGGER IF EXISTS ledger_stream_grows"))
    conn.execute(
        text(
            "CREATE TRIGGER ledger_stream_grows BEFORE UPDATE ON ledger_stream "
            "WHEN NEW.size < OLD.size OR NEW.name <> OLD.name "
            "BEGIN SELECT RAISE(ABORT, 'a ledger stream cannot shrink or be renamed'); END"
        )
    )
    conn.execute(text("DROP TRIGGER IF EXISTS ledger_stream_no_delete"))
    conn.execute(
        text(
            "CREATE TRIGGER ledger_stream_no_delete BEFORE DELETE ON ledger_stream "
            "BEGIN SELECT RAISE(ABORT, 'ledger streams cannot be deleted'); END"
        )
    )


def grant_app_role(conn: Connection, role: str) -> list[str]:
    """SQL that lets `role` run Portcullis without UPDATE or DELETE on the ledger (PostgreSQL)."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"role name {role!r} must be letters, digits and underscores")
    stmts = [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        # The ledger: append and read only. The stream row holds the head
        # (size, frontier), which grows; a trigger refuses shrinking it.
        *(f"REVOKE UPDATE, DELETE, TRUNCATE ON {t} FROM {role}" for t in PROTECTED),
        f"REVOKE DELETE, TRUNCATE ON ledger_stream FROM {role}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ledger_purge_gate FROM {role}",
    ]
    for s in stmts:
        conn.execute(text(s))
    return stmts
