"""`portcullis ledger ...`, `portcullis evidence bundle` and `portcullis verify-bundle`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.errors import ValidationFailed
from portcullis.core.output import command, emit, err, out
from portcullis.core.permissions import Permission
from portcullis.ledger import operations, queries, retention
from portcullis.ledger.bundle import Selection, verify_bundle, write_bundle
from portcullis.ledger.service import record_change

app = typer.Typer(help="The tamper-evident ledger: streams, checkpoints, proofs, verification.", no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence for auditors.", no_args_is_help=True)


@app.command("streams")
@command
def streams(as_json: JsonOpt = False) -> None:
    """List streams with their size, root and latest checkpoint."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        ctx.require(Permission.AUDIT_READ)
        rows = queries.stream_rows(ctx.session)
    emit(rows, as_json, ["name", "size", "last_checkpoint_size", "purged_below", "retention_days", "root"])


@app.command("pubkey")
@command
def pubkey() -> None:
    """Print the verifier key (C2SP note format) that checks every checkpoint. Publish it."""
    out.print(str(runtime().signer.verifier), highlight=False, soft_wrap=True)


@app.command("checkpoint")
@command
def checkpoint(as_json: JsonOpt = False) -> None:
    """Sign a checkpoint of every stream that grew since its last one."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = operations.sign_checkpoints(ctx, rt.signer)
    emit(rows, as_json, ["stream", "size", "root"])


@app.command("verify")
@command
def verify(
    stream: Annotated[str | None, typer.Option(help="Only this stream")] = None,
    checkpoint: Annotated[
        list[Path] | None, typer.Option("--checkpoint", help="A signed checkpoint kept outside the database")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute every stream and check it against its signed checkpoints; exit 9 on any problem."""
    rt = runtime()
    external = [p.read_text() for p in checkpoint or []]
    with rt.work(cli_principal(rt)) as ctx:
        # The result is itself evidence: who checked, when, and what was found.
        reports = operations.run_verification(ctx, rt.signer.verifier, stream, external)
    summary = [r.as_dict() for r in reports]
    if as_json:
        emit(summary, True)
    else:
        for r in reports:
            mark = "[green]ok[/green]" if r.ok else "[red]FAILED[/red]"
            out.print(f"{r.stream}: {mark}  {r.records} records, {r.checkpoints} checkpoints")
            for p in r.problems:
                out.print(f"  - {p}", highlight=False)
    if any(not r.ok for r in reports):
        raise typer.Exit(9)


@app.command("purge")
@command
def purge(
    stream: Annotated[str | None, typer.Option(help="Only this stream")] = None,
    days: Annotated[int | None, typer.Option(help="Override the retention period, in days")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be purged")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Drop the payloads of expired records (whole tiles of 16); hashes stay, so the ledger still verifies."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        if stream:
            results = [retention.purge_stream(ctx, stream, days=days, dry_run=dry_run)]
        else:
            results = retention.purge_all(ctx, dry_run=dry_run)
    emit([r.as_dict() for r in results], as_json, ["stream", "retention_days", "purged_from", "purged_to", "records"])


@app.command("prove")
@command
def prove(stream: str, index: int, as_json: JsonOpt = False) -> None:
    """Print record INDEX of STREAM with its inclusion proof against the latest checkpoint."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        ctx.require(Permission.AUDIT_READ)
        proof = queries.inclusion(ctx.session, stream, index)
    emit(proof, as_json)


@evidence_app.command("bundle")
@command
def bundle(
    output: Annotated[Path, typer.Option("--out", help="Zip file to write")],
    stream: Annotated[list[str] | None, typer.Option(help="Streams to include (default: all)")] = None,
    action: Annotated[str | None, typer.Option(help="Only records of this action")] = None,
    object_type: Annotated[str | None, typer.Option(help="Only records about this kind of object")] = None,
    object_id: Annotated[str | None, typer.Option(help="Only records about this object")] = None,
) -> None:
    """Write an evidence bundle an auditor can verify offline."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        ctx.require(Permission.EVIDENCE_EXPORT)
        operations.sign_checkpoints(ctx, rt.signer)  # cover everything up to now
        names = stream or [r["name"] for r in queries.stream_rows(ctx.session)]
        selections = [Selection(n, action, object_type, object_id) for n in names]
        manifest = write_bundle(ctx.session, rt.signer.verifier, selections, output, ctx.now())
        record_change(ctx, "evidence.bundled", "ledger", ",".join(names), None, None,
                      streams=manifest["streams"], sha256_manifest=manifest["files"])
    err.print(f"Wrote {output} ({sum(s['records'] for s in manifest['streams'])} records)")


def verify_bundle_command(
    path: Path,
    key: Annotated[str | None, typer.Option(help="The verifier key you trust (`portcullis ledger pubkey`)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check an evidence bundle offline, without any database. Exit 9 if it does not verify."""
    _verify_bundle(path, key, as_json)


@command
def _verify_bundle(path: Path, key: str | None, as_json: bool) -> None:
    if not path.exists():
        raise ValidationFailed(f"{path} does not exist")
    report = verify_bundle(path, key)
    if as_json:
        emit(vars(report), True)
    else:
        for s in report.streams:
            size = s.get("checkpoint_size")
            out.print(f"{s['stream']}: {s.get('records', 0)} records against the checkpoint of size {size}")
        for p in report.problems:
            out.print(f"[red]problem:[/red] {p}", highlight=False)
        if not report.key_pinned:
            err.print("note: trusted the key inside the bundle; pass --key with the published key to pin it")
        out.print("[green]bundle verifies[/green]" if report.ok else "[red]bundle does NOT verify[/red]")
    if not report.ok:
        raise typer.Exit(9)
