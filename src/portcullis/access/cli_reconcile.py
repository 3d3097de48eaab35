"""`portcullis reconcile ldap|csv|accounts`: real accounts against approved grants (§21, §25)."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from portcullis.access.ldap_source import DEFAULT_GROUP_FILTER, DEFAULT_USER_FILTER, LdapQuery
from portcullis.access.reconcile import ReconcileReport, account_views, list_accounts, reconcile_csv, reconcile_ldap
from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.context import Context
from portcullis.core.errors import ValidationFailed
from portcullis.core.output import command, emit, out
from portcullis.core.permissions import Permission
from portcullis.inventory.csv_cli import read_file

PASSWORD_ENV = "PORTCULLIS_LDAP_PASSWORD"  # noqa: S105 - the variable's name, not a secret
SystemOpt = Annotated[str, typer.Option("--system", help="The target system's name, as group mappings use it")]
_ACCOUNT_COLS = ["id", "system", "account_name", "person_email", "active", "groups", "last_seen_at"]

app = typer.Typer(
    help="Reconcile the accounts that really exist (LDAP, CSV exports) against approved grants (§21, §25).",
    no_args_is_help=True,
)


def _show(report: ReconcileReport, as_json: bool) -> None:
    if as_json:
        emit(report.as_dict(), True)
        return
    if not report.ok:
        out.print(f"{report.system}: NOT reconciled: the export has errors, nothing was written", highlight=False)
        emit([e.as_dict() for e in report.errors], False, ["line", "field", "message"], title="Errors")
        return
    c = report.counts()
    out.print(
        f"{report.system}: {c['accounts']} accounts ({c['created']} new, {c['updated']} changed, "
        f"{c['deactivated']} gone); {c['orphans']} orphan(s); {c['grants_provisioned']} grant(s) seen provisioned; "
        f"findings: {c['findings_opened']} opened, {c['findings_resolved']} resolved",
        highlight=False,
    )
    emit([{"kind": k, "open": v} for k, v in report.open_by_kind.items()], False, ["kind", "open"], title="Open")


def _password(bind_dn: str) -> str:
    if not bind_dn:
        return ""
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env is not None:
        return from_env
    # Never an option: a password on the command line ends up in shell history and the process list.
    value: str = typer.prompt(f"Password for {bind_dn}", hide_input=True, err=True)
    return value


@app.command("ldap")
@command
def ldap(
    url: Annotated[str, typer.Option("--url", help="ldap://host[:port] or ldaps://host[:port]")],
    base: Annotated[str, typer.Option("--base", help="Where to search for accounts")],
    system: SystemOpt,
    bind_dn: Annotated[
        str, typer.Option("--bind-dn", help=f"Empty for anonymous; password from {PASSWORD_ENV} or a prompt")
    ] = "",
    user_filter: Annotated[str, typer.Option("--user-filter")] = DEFAULT_USER_FILTER,
    group_base: Annotated[
        str | None, typer.Option("--group-base", help="Where to search for groups (default: --base)")
    ] = None,
    group_filter: Annotated[str, typer.Option("--group-filter")] = DEFAULT_GROUP_FILTER,
    start_tls: Annotated[
        bool, typer.Option("--start-tls", help="StartTLS before binding (certificate checked)")
    ] = False,
    ca_file: Annotated[str | None, typer.Option("--ca-file", help="CA certificates for TLS")] = None,
    account_attribute: Annotated[str, typer.Option("--account-attribute")] = "uid",
    email_attribute: Annotated[str, typer.Option("--email-attribute")] = "mail",
    employee_id_attribute: Annotated[str, typer.Option("--employee-id-attribute")] = "employeeNumber",
    idp_id_attribute: Annotated[str | None, typer.Option("--idp-id-attribute", help="e.g. entryUUID")] = None,
    disabled_attribute: Annotated[str | None, typer.Option("--disabled-attribute", help="true = disabled")] = None,
    timeout: Annotated[int, typer.Option("--timeout", min=1, max=120, help="Seconds")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Read a directory's accounts and groups and reconcile them as --system."""
    rt = runtime()
    principal = cli_principal(rt)
    # Refused before the prompt: nobody types a directory password only to be told they may not.
    Context(rt.factory(), principal, rt.clock).require(Permission.ACCESS_ADMIN)
    query = LdapQuery(
        url=url,
        base=base,
        bind_dn=bind_dn,
        password=_password(bind_dn),
        user_filter=user_filter,
        group_base=group_base,
        group_filter=group_filter,
        start_tls=start_tls,
        ca_file=ca_file,
        account_attribute=account_attribute,
        email_attribute=email_attribute,
        employee_id_attribute=employee_id_attribute,
        idp_id_attribute=idp_id_attribute,
        disabled_attribute=disabled_attribute,
        timeout=timeout,
    )
    with rt.work(principal) as ctx:
        report = reconcile_ldap(ctx, query, system)
    _show(report, as_json)


@app.command("csv")
@command
def csv_(
    file: Annotated[str, typer.Argument(help="CSV file (UTF-8), or - for standard input", show_default=False)],
    system: SystemOpt,
    as_json: JsonOpt = False,
) -> None:
    """Reconcile --system from a CSV export: system, account, email, employee_id, active, groups (a;b).

    Every bad row is listed by line and column, and a file with any error changes nothing.
    """
    data = read_file(file)
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        report = reconcile_csv(ctx, data, system, filename=None if file == "-" else os.path.basename(file))
    _show(report, as_json)
    if not report.ok:
        raise typer.Exit(ValidationFailed.exit_code)


@app.command("accounts")
@command
def accounts(
    system: Annotated[str | None, typer.Option("--system")] = None,
    person: Annotated[int | None, typer.Option("--person-id")] = None,
    orphan: Annotated[
        bool | None, typer.Option("--orphan/--owned", help="Only accounts of nobody / of someone")
    ] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    after: Annotated[int | None, typer.Option("--after", help="next_after of the previous page")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The accounts seen in target systems, and whose they are."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows, total, nxt = list_accounts(
            ctx, system=system, person_id=person, orphan=orphan, active=active, after=after, limit=limit
        )
        views: list[dict[str, Any]] = account_views(ctx, rows)
    if as_json:
        emit({"items": views, "total": total, "next_after": nxt}, True)
        return
    emit(views, False, _ACCOUNT_COLS, title=f"Target accounts ({total})")
    if nxt is not None:
        out.print(f"More: --after {nxt}", highlight=False)


def register(app_: typer.Typer) -> None:
    """Adds the top-level `reconcile` group."""
    app_.add_typer(app, name="reconcile")
