"""`portcullis access ...`: request, approve, hold and withdraw access from the command line.

People are named by email, entitlements and roles by key, assets and zones by
external id, as in the CSV files; requests, grants and findings by their id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy import func, select

from portcullis.access import catalogue, findings, grants, policy, requests
from portcullis.access.schemas import DecisionIn, RequestIn
from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.context import Context
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.output import AfterOpt, LimitOpt, command, emit, emit_page, resolve_ref
from portcullis.inventory import service as inventory
from portcullis.inventory.models import Person

app = typer.Typer(help="Access requests, approvals, grants and findings (§19, §21, §22, §25).", no_args_is_help=True)

REQUEST_COLUMNS = [
    "id",
    "subject_email",
    "entitlement_key",
    "role_key",
    "status",
    "approvals",
    "required_approvals",
    "decide_by",
]
GRANT_COLUMNS = ["id", "person_email", "entitlement_key", "kind", "status", "starts_at", "expires_at", "end_reason"]
FINDING_COLUMNS = ["id", "kind", "severity", "person_email", "owner_email", "due_on", "status", "detail"]


def register(root: typer.Typer) -> None:
    """Adds the top-level `access` group."""
    root.add_typer(app, name="access")


def _person_id(ctx: Context, email: str | None, option: str) -> int | None:
    # A plain lookup, not a read of the register: staff naming a colleague they ask for need no inventory access.
    def find(e: str) -> int | None:
        return ctx.session.scalar(select(Person.id).where(func.lower(Person.email) == e.lower()))

    return resolve_ref(find, email, option, "person with email")


def _by_key(
    ctx: Context, finder: Callable[[Context, str], Any], key: str | None, option: str, label: str
) -> int | None:
    return resolve_ref(lambda k: finder(ctx, k), key, option, label)


# --- requests --------------------------------------------------------------------------


@app.command("request")
@command
def request(
    justification: Annotated[str, typer.Option(help="Why the access is needed (the need to know)")],
    entitlement: Annotated[str | None, typer.Option(help="Entitlement key")] = None,
    role: Annotated[str | None, typer.Option(help="Role key")] = None,
    for_: Annotated[str | None, typer.Option("--for", help="Email of who would hold it; default: yourself")] = None,
    days: Annotated[int | None, typer.Option(help="Duration in days; default: the entitlement's maximum or 30")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask for an entitlement or a role, for yourself or someone else."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        subject = _person_id(ctx, for_, "--for") or catalogue.acting_person(ctx).id
        fields = {
            "subject_id": subject,
            "entitlement_id": _by_key(
                ctx, catalogue.find_entitlement_by_key, entitlement, "--entitlement", "entitlement"
            ),
            "role_id": _by_key(ctx, catalogue.find_role_by_key, role, "--role", "role"),
            "justification": justification,
            "duration_days": days,
        }
        try:
            data = RequestIn(**{k: v for k, v in fields.items() if v is not None})
        except ValidationError as exc:
            errors = [
                FieldError(
                    "--" + (str(e["loc"][0]).replace("_", "-") if e["loc"] else "input"),
                    str(e["msg"]).removeprefix("Value error, "),
                )
                for e in exc.errors()
            ]
            raise ValidationFailed("The request is not valid", errors) from exc
        emit(requests.request_view(requests.request_access(ctx, data)), as_json)


@app.command("decide")
@command
def decide(
    request_id: int,
    approve: Annotated[bool, typer.Option("--approve/--reject", help="Approve or reject")],
    comment: Annotated[str, typer.Option(help="Why")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Approve or reject a request you are an eligible approver of."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        r = requests.decide(ctx, request_id, DecisionIn(approve=approve, comment=comment))
        emit(requests.request_view(r), as_json)


@app.command("cancel")
@command
def cancel(request_id: int, as_json: JsonOpt = False) -> None:
    """Withdraw a pending request you made or that is for you."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(requests.request_view(requests.cancel_request(ctx, request_id)), as_json)


@app.command("requests")
@command
def list_requests(
    status: Annotated[str | None, typer.Option(help="pending, approved, rejected, expired, cancelled")] = None,
    for_: Annotated[str | None, typer.Option("--for", help="Email of the subject")] = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests: all of them for readers, your own otherwise."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = requests.list_requests(
            ctx, status=status, subject_id=_person_id(ctx, for_, "--for"), after=after, limit=limit
        )
        emit_page(result, requests.request_view, REQUEST_COLUMNS, as_json, "Access requests")


@app.command("inbox")
@command
def inbox(as_json: JsonOpt = False) -> None:
    """Pending requests you may still decide, soonest deadline first."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [requests.request_view(r) for r in requests.approvals_inbox(ctx)]
    emit(rows, as_json, [*REQUEST_COLUMNS, "justification"], title="Approvals inbox")


# --- grants ------------------------------------------------------------------------------


@app.command("grants")
@command
def list_grants(
    person: Annotated[str | None, typer.Option(help="Email of the holder")] = None,
    entitlement: Annotated[str | None, typer.Option(help="Entitlement key")] = None,
    asset: Annotated[str | None, typer.Option(help="ICT asset external id")] = None,
    zone: Annotated[str | None, typer.Option(help="Zone external id")] = None,
    status: Annotated[str | None, typer.Option(help="active, expired, revoked")] = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grants by person, entitlement, asset or zone."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = grants.list_grants(
            ctx,
            person_id=_person_id(ctx, person, "--person"),
            entitlement_id=_by_key(ctx, catalogue.find_entitlement_by_key, entitlement, "--entitlement", "entitlement"),
            asset_id=_by_key(ctx, inventory.find_asset_by_external_id, asset, "--asset", "ICT asset"),
            zone_id=_by_key(ctx, inventory.find_zone_by_external_id, zone, "--zone", "zone"),
            status=status,
            after=after,
            limit=limit,
        )
        emit_page(result, grants.grant_view, GRANT_COLUMNS, as_json, "Grants")


@app.command("my-access")
@command
def my_access(as_json: JsonOpt = False) -> None:
    """The access you hold now."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [grants.grant_view(g) for g in grants.my_access(ctx)]
    emit(rows, as_json, GRANT_COLUMNS, title="My access")


@app.command("grant-role")
@command
def grant_role(
    person: Annotated[str, typer.Option(help="Email of who gets the role")],
    role: Annotated[str, typer.Option(help="Role key")],
    reason: Annotated[str, typer.Option(help="Why")],
    as_json: JsonOpt = False,
) -> None:
    """Give a person a role: standing grants for each of its entitlements."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        pid = _person_id(ctx, person, "--person")
        rid = _by_key(ctx, catalogue.find_role_by_key, role, "--role", "role")
        rows = [grants.grant_view(g) for g in grants.grant_role(ctx, pid or 0, rid or 0, reason)]
    emit(rows, as_json, GRANT_COLUMNS, title="Grants made")


@app.command("revoke")
@command
def revoke(
    grant_id: int,
    reason: Annotated[str, typer.Option(help="Why the access is withdrawn")],
    as_json: JsonOpt = False,
) -> None:
    """Withdraw a grant now."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(grants.grant_view(grants.revoke_grant(ctx, grant_id, reason)), as_json)


# --- findings ------------------------------------------------------------------------------


@app.command("findings")
@command
def list_findings(
    kind: Annotated[str | None, typer.Option(help="e.g. training_missing, mfa_missing, mover_review")] = None,
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    owner: Annotated[str | None, typer.Option(help="Email of the owner")] = None,
    person: Annotated[str | None, typer.Option(help="Email of the person concerned")] = None,
    limit: LimitOpt = 50,
    after: AfterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Findings, open ones by default."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = findings.list_findings(
            ctx,
            kind=kind,
            status=None if status == "all" else status,
            owner_id=_person_id(ctx, owner, "--owner"),
            person_id=_person_id(ctx, person, "--person"),
            after=after,
            limit=limit,
        )
        emit_page(result, findings.finding_view, FINDING_COLUMNS, as_json, "Findings")


@app.command("resolve-finding")
@command
def resolve_finding(
    finding_id: int,
    resolution: Annotated[str, typer.Option(help="What was done about it")],
    as_json: JsonOpt = False,
) -> None:
    """Close a finding, saying what was done."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(findings.finding_view(findings.resolve_finding(ctx, finding_id, resolution)), as_json)


@app.command("daily-pass")
@command
def daily_pass(as_json: JsonOpt = False) -> None:
    """Run every active grant through the policy checks now (the scheduler does it on each tick)."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(policy.daily_pass(ctx), as_json)
