"""Builds the command line from the domains' commands."""

from __future__ import annotations

from typing import Annotated

import typer

from portcullis import __version__
from portcullis.access import cli_catalogue, cli_reconcile, cli_workflow
from portcullis.accounts import cli as accounts_cli
from portcullis.certs import cli as certs_cli
from portcullis.core import migrate
from portcullis.core.output import command, emit, err, out
from portcullis.core.runtime import Runtime
from portcullis.demo import register_demo
from portcullis.events import cli as events_cli
from portcullis.inventory import cli as inventory_cli
from portcullis.inventory.csv_cli import register_csv
from portcullis.keys import cli as keys_cli
from portcullis.ledger import cli as ledger_cli

app = typer.Typer(
    name="portcullis",
    help="Keep, and prove, systems and security access protocols (MiCA Art. 14(1)(d)).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_cli.app, name="user")
app.command("login")(accounts_cli.login)
inventory_cli.register(app)
register_csv(app)
cli_catalogue.register(app)
cli_workflow.register(app)
cli_reconcile.register(app)
register_demo(app)
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(events_cli.app, name="events")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(certs_cli.app, name="certs")
app.add_typer(ledger_cli.evidence_app, name="evidence")
app.command("verify-bundle")(ledger_cli.verify_bundle_command)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", help="Print the version")] = False) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()


@db_app.command("upgrade")
@command
def db_upgrade() -> None:
    """Bring the database schema up to this version of Portcullis."""
    rt = Runtime.build()
    before = migrate.current_revision(rt.engine)
    migrate.upgrade(rt.engine)
    after = migrate.current_revision(rt.engine)
    out.print(f"Schema: {before or 'empty'} -> {after}")
    # The checkpoint-signing key is made at initialisation, and its public half shown for publishing.
    out.print(f"Ledger verifier key: {rt.signer.verifier}", highlight=False, soft_wrap=True)


@db_app.command("current")
@command
def db_current(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the schema revision of the database and the one this code needs."""
    rt = Runtime.build()
    cur, head = migrate.current_revision(rt.engine), migrate.head_revision(rt.engine)
    emit({"database": cur, "code": head, "up_to_date": cur == head}, as_json)


@db_app.command("grant-app-role")
@command
def db_grant_app_role(role: str) -> None:
    """PostgreSQL: let ROLE run Portcullis with only INSERT and SELECT on the ledger tables.

    Run as the database owner after every `db upgrade`, then point the server at
    ROLE in PORTCULLIS_DATABASE_URL.
    """
    from portcullis.core.errors import ValidationFailed
    from portcullis.ledger.guard import grant_app_role

    rt = Runtime.build()
    if rt.engine.dialect.name != "postgresql":
        raise ValidationFailed("roles exist on PostgreSQL only; SQLite relies on the triggers alone")
    try:
        with rt.engine.begin() as conn:
            for stmt in grant_app_role(conn, role):
                out.print(stmt + ";", highlight=False)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc


@app.command("tick")
@command
def tick(
    loop: Annotated[bool, typer.Option("--loop", help="Keep running, one pass every --every seconds")] = False,
    every: Annotated[int, typer.Option(help="Seconds between passes with --loop")] = 3600,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run the scheduler: sign checkpoints of grown streams, purge expired payloads (more jobs come later)."""
    import time

    from portcullis.scheduler import run_once

    rt = Runtime.build()
    migrate.ensure_current(rt.engine)
    while True:
        results = run_once(rt)
        emit(results, as_json)
        if not loop:
            if any(not r["ok"] for r in results.values()):
                raise typer.Exit(1)
            return
        time.sleep(max(1, every))


@app.command("serve")
@command
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind")] = None,
) -> None:
    """Serve the web UI and the REST API."""
    import uvicorn

    from portcullis.app import create_app

    rt = Runtime.build()
    migrate.ensure_current(rt.engine)  # refuse before binding, with the command that fixes it
    h, p = host or rt.settings.host, port or rt.settings.port
    err.print(f"Portcullis {__version__} on http://{h}:{p}/  (database: {_safe_url(rt)})")
    if rt.settings.tick_seconds:
        _start_scheduler(rt, rt.settings.tick_seconds)
    uvicorn.run(create_app(rt), host=h, port=p, log_level="info", proxy_headers=False)


def _start_scheduler(rt: Runtime, every: int) -> None:
    """The scheduler beside the server, in a daemon thread: the jobs are idempotent and
    lock what they change, so several servers doing the same is harmless."""
    import threading
    import time

    from portcullis.scheduler import run_once

    def loop() -> None:
        while True:
            time.sleep(every)
            try:
                run_once(rt)
            except Exception as exc:  # a failed pass must not kill the loop; the next one retries
                err.print(f"scheduler pass failed: {exc.__class__.__name__}: {exc}")

    threading.Thread(target=loop, name="portcullis-scheduler", daemon=True).start()


def _safe_url(rt: Runtime) -> str:
    return rt.engine.url.render_as_string(hide_password=True)


def main() -> None:
    app()
