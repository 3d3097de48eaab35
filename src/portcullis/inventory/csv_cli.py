"""`portcullis import KIND FILE` and `portcullis export KIND`: the registers as CSV files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.output import command, emit, err, out
from portcullis.inventory.csv_columns import SPECS
from portcullis.inventory.csv_read import MAX_BYTES
from portcullis.inventory.csvio import KINDS, ImportReport, export_csv, run_import

KindArg = Annotated[str, typer.Argument(help="The register: " + ", ".join(KINDS), show_default=False)]
# The exit code of a file with errors, as for any other invalid input.
EXIT_INVALID = ValidationFailed.exit_code
_IMPORT_HELP = (
    "Import a register from a CSV file. Every bad row is listed by line and column, and a file with any error "
    "changes nothing. Rows are matched on external_id, so importing the same file again changes nothing.\n\n"
)


def _columns_help() -> str:
    lines = [
        f"{kind}: " + ", ".join(f"{c.name}*" if c.required else c.name for c in spec) for kind, spec in SPECS.items()
    ]
    return "Columns (* required):\n\n" + "\n\n".join(lines)


def read_file(file: str) -> bytes:
    if file == "-":
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
    else:
        path = Path(file)
        if not path.is_file():
            raise ValidationFailed(f"No such file: {file}", [FieldError("file", f"{file} is not a file")])
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    # Passed on even when over the cap: the import refuses it with the size in the message.
    return data


def _show(report: ImportReport, as_json: bool) -> None:
    if as_json:
        emit(report.as_dict(), True)
        return
    if report.dry_run:
        counts = f"{report.created} to create, {report.updated} to update, {report.unchanged} unchanged"
        verdict = "dry run: nothing written" if report.ok else "dry run: the file has errors"
    else:
        counts = f"{report.created} created, {report.updated} updated, {report.unchanged} unchanged"
        verdict = "imported" if report.committed else "NOT imported: the file has errors, nothing was written"
    out.print(f"{report.kind}: {report.rows} rows; {counts} ({verdict})", highlight=False)
    if report.errors:
        emit([e.as_dict() for e in report.errors], False, ["line", "field", "message"], title="Errors")


def register_csv(app: typer.Typer) -> None:
    """Adds the top-level `import` and `export` commands."""

    @app.command(
        "import",
        help=_IMPORT_HELP + _columns_help(),
        short_help="Import a register from a CSV file (--dry-run to check; all or nothing).",
    )
    @command
    def import_(
        kind: KindArg,
        file: Annotated[str, typer.Argument(help="CSV file (UTF-8), or - for standard input", show_default=False)],
        dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report only; write nothing")] = False,
        as_json: JsonOpt = False,
    ) -> None:
        data = read_file(file)
        rt = runtime()
        with rt.work(cli_principal(rt)) as ctx:
            report = run_import(ctx, kind, data, dry_run=dry_run)
        _show(report, as_json)
        if not report.ok:
            raise typer.Exit(EXIT_INVALID)

    @app.command("export")
    @command
    def export(
        kind: KindArg,
        out_file: Annotated[
            Path | None, typer.Option("--out", help="Write to this file instead of standard output")
        ] = None,
    ) -> None:
        """Export a register as CSV, with the columns `portcullis import` reads."""
        rt = runtime()
        with rt.work(cli_principal(rt)) as ctx:
            text = export_csv(ctx, kind)
        if out_file is None:
            sys.stdout.write(text)
            sys.stdout.flush()
            return
        with out_file.open("w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        err.print(f"Wrote the {kind} register to {out_file}", highlight=False)
