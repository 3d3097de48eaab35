"""`portcullis events ...`: sources, ingestion, search, quarantine, the syslog receiver."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.clock import as_utc
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.output import AfterOpt, LimitOpt, command, emit, emit_page, err, out
from portcullis.events import search, sources
from portcullis.events.ingest import BatchResult
from portcullis.events.runner import Ingestion
from portcullis.inventory import service as inventory
from portcullis.inventory.cli import by_external_id, person_id_by_email

app = typer.Typer(help="Access events (§18, §22, §23): sources, ingestion, search, quarantine.", no_args_is_help=True)
source_app = typer.Typer(help="Event sources: what feeds access records, and how they are read.", no_args_is_help=True)
app.add_typer(source_app, name="source")

_SOURCE_COLS = ["key", "name", "format", "raw_total", "events_total", "quarantined_total", "last_event_at"]
_QUARANTINE_COLS = ["id", "source", "input", "position", "reason", "raw"]
_EVENT_COLS = ["id", "time", "source", "category", "action", "outcome", "actor", "person", "asset", "zone"]


def _config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationFailed(f"{path}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise ValidationFailed(
            f"{path} is not JSON", [FieldError("config", f"{e.msg} at line {e.lineno}, column {e.colno}")]
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: the configuration must be a JSON object")
    return data


def _source_in(
    key: str,
    name: str,
    fmt: str,
    asset: str | None,
    zone: str | None,
    config: Path | None,
    retention_days: int | None,
    retention_reason: str,
    active: bool = True,
) -> sources.SourceIn:
    return sources.SourceIn(
        key=key,
        name=name,
        format=fmt,
        asset=asset,
        zone=zone,
        config=_config(config),
        retention_days=retention_days,
        retention_reason=retention_reason,
        active=active,
    )


NameOpt = Annotated[str, typer.Option("--name", help="What people call it")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="syslog, journald-json, badge-csv, cloudtrail, keycloak, json-mapped")
]
AssetOpt = Annotated[str | None, typer.Option("--asset", help="External id of the ICT asset it reports on")]
ZoneOpt = Annotated[str | None, typer.Option("--zone", help="External id of the zone it reports on")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="JSON: parser settings and mappings (see README)")]
RetentionOpt = Annotated[int | None, typer.Option("--retention-days", help="Override of the criticality's default")]
ReasonOpt = Annotated[str, typer.Option("--retention-reason", help="Why the override")]


@source_app.command("add")
@command
def source_add(
    key: str,
    name: NameOpt,
    fmt: FormatOpt,
    asset: AssetOpt = None,
    zone: ZoneOpt = None,
    config: ConfigOpt = None,
    retention_days: RetentionOpt = None,
    retention_reason: ReasonOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """Register an event source."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        src = sources.create_source(
            ctx, _source_in(key, name, fmt, asset, zone, config, retention_days, retention_reason)
        )
        emit(sources.source_view(src, ctx.session), as_json)


@source_app.command("update")
@command
def source_update(
    key: str,
    name: NameOpt,
    fmt: FormatOpt,
    asset: AssetOpt = None,
    zone: ZoneOpt = None,
    config: ConfigOpt = None,
    retention_days: RetentionOpt = None,
    retention_reason: ReasonOpt = "",
    active: Annotated[bool, typer.Option("--active/--inactive")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Replace an event source's settings (its key and, once it has records, its format stay)."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = _source_in(key, name, fmt, asset, zone, config, retention_days, retention_reason, active)
        src = sources.update_source(ctx, key, data)
        emit(sources.source_view(src, ctx.session), as_json)


@source_app.command("list")
@command
def source_list(as_json: JsonOpt = False) -> None:
    """Event sources with their counts."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit([sources.source_view(s) for s in sources.list_sources(ctx)], as_json, _SOURCE_COLS, title="Sources")


@source_app.command("show")
@command
def source_show(key: str, as_json: JsonOpt = False) -> None:
    """One source: settings, counts, retention in force."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(sources.source_view(sources.get_source(ctx, key), ctx.session), as_json)


@source_app.command("token")
@command
def source_token(key: str) -> None:
    """Issue the source's token for the HTTP batch endpoint (the previous one stops working). Shown once."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        token = sources.issue_token(ctx, key)
    out.print(token, highlight=False, soft_wrap=True)
    err.print(f"POST batches to /api/v1/events/sources/{key}/batch with 'Authorization: Bearer <token>'.")


def _progress_bar(total: int | None) -> tuple[Progress, Any]:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[events]} events, {task.fields[quarantined]} quarantined"),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    task = bar.add_task("ingesting", total=total, events=0, quarantined=0)
    return bar, task


@app.command("ingest")
@command
def ingest(
    source: Annotated[str, typer.Argument(help="The source's key")],
    file: Annotated[str, typer.Argument(help="A file, or - for standard input")],
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep taking lines as the file grows (Ctrl-C stops)")
    ] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, max=100_000)] = 5000,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Take a file's new records into the source: ledger, events, quarantine. Resumes where it stopped."""
    rt = runtime()
    run = Ingestion(rt, cli_principal(rt), source, batch_size)
    stop = threading.Event()
    show = not quiet and not as_json and err.is_terminal
    if file == "-":
        totals = run.stream(sys.stdin.buffer, "stdin")
    else:
        path = Path(file)
        if not path.is_file():
            raise ValidationFailed(f"{file}: no such file")
        size = None if follow else path.stat().st_size
        bar, task = _progress_bar(size)

        def progress(done: int, t: BatchResult) -> None:
            bar.update(task, completed=done, events=t.events, quarantined=t.quarantined)

        try:
            if show:
                bar.start()
            totals = run.file(path, follow=follow, progress=progress if show else None, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            totals = run.totals
        finally:
            if show:
                bar.stop()
    result = {"source": source, "input": file, **totals.as_dict()}
    if as_json:
        emit(result, True)
    else:
        out.print(
            f"{source}: {totals.raw} records taken, {totals.events} events, {totals.quarantined} quarantined, "
            f"{totals.findings} findings opened",
            highlight=False,
        )


def _when(value: str | None, option: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("Not a time", [FieldError(option, f"{value!r} is not ISO 8601")]) from None
    return as_utc(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


@app.command("search")
@command
def search_cmd(
    person: Annotated[str | None, typer.Option("--person", help="Email")] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="External id")] = None,
    zone: Annotated[str | None, typer.Option("--zone", help="External id")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Source key")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO 8601, UTC unless it says")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601, exclusive")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="success, failure, unknown")] = None,
    category: Annotated[
        str | None, typer.Option("--category", help="authentication, physical_entry, privileged_action, session")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="As the source wrote it")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write every match to this CSV file")] = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search access events; --csv exports every match."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        q = search.EventQuery(
            person_id=person_id_by_email(ctx, person, "--person"),
            asset_id=by_external_id(ctx, inventory.find_asset_by_external_id, asset, "--asset", "asset"),
            zone_id=by_external_id(ctx, inventory.find_zone_by_external_id, zone, "--zone", "zone"),
            source_key=source,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            outcome=outcome,
            category=category,
            actor=actor,
        )
        if csv_out is not None:
            with csv_out.open("w", encoding="utf-8", newline="") as f:
                for chunk in search.export_events_csv(ctx, q):
                    f.write(chunk)
            err.print(f"written to {csv_out}")
            return
        emit_page(search.search_events(ctx, q, after=after, limit=limit), dict, _EVENT_COLS, as_json, "Events")


@app.command("quarantine")
@command
def quarantine(
    source: Annotated[str | None, typer.Option("--source", help="Source key")] = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Records that could not be understood, with the reason and where they were."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        page = search.list_quarantine(ctx, source, after=after, limit=limit)
        emit_page(page, dict, _QUARANTINE_COLS, as_json, "Quarantine")


@app.command("listen")
@command
def listen(
    source: Annotated[str, typer.Option("--source", help="Where messages from unlisted senders go")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    udp: Annotated[int | None, typer.Option("--udp", help="UDP port (RFC 5426)")] = None,
    tcp: Annotated[int | None, typer.Option("--tcp", help="TCP port (RFC 6587 framing)")] = None,
    tls: Annotated[int | None, typer.Option("--tls", help="TLS port (RFC 5425)")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", help="TLS certificate (PEM)")] = None,
    key: Annotated[Path | None, typer.Option("--key", help="TLS private key (PEM)")] = None,
    client_ca: Annotated[
        Path | None, typer.Option("--client-ca", help="Require client certificates from this CA")
    ] = None,
) -> None:
    """Receive syslog over the network into sources until Ctrl-C; senders are routed by their
    address to the source listing it in its config's syslog_hosts, else to --source."""
    from portcullis.events.listen import SyslogIntake
    from portcullis.events.syslog_server import SyslogReceiver, run_receiver

    if udp is None and tcp is None and tls is None:
        raise ValidationFailed(
            "Nothing to listen on", [FieldError("--udp", "give at least one of --udp, --tcp, --tls")]
        )
    if tls is not None and (cert is None or key is None):
        raise ValidationFailed("TLS needs a certificate", [FieldError("--cert", "--tls needs --cert and --key")])
    rt = runtime()
    intake = SyslogIntake(rt, cli_principal(rt), source)

    def ready(r: SyslogReceiver) -> None:
        ports = {"udp": r.udp_port, "tcp": r.tcp_port, "tls": r.tls_port}
        bound = ", ".join(f"{k} {v}" for k, v in ports.items() if v is not None)
        err.print(f"listening on {host}: {bound}; Ctrl-C stops (buffered messages are taken first)")

    receiver = run_receiver(
        intake,
        host=host,
        udp_port=udp,
        tcp_port=tcp,
        tls_port=tls,
        tls_cert=cert,
        tls_key=key,
        tls_client_ca=client_ca,
        ready=ready,
    )
    t = intake.totals
    out.print(
        f"{t.raw} messages taken, {t.events} events, {t.quarantined} quarantined; "
        f"{receiver.dropped} dropped (UDP buffer full), {receiver.framing_errors} framing errors",
        highlight=False,
    )
