"""`portcullis entitlements|roles|sod|training|mappings|identities ...`: the access catalogue from the command line.

Entitlements and roles are named by key, people by email, assets and zones by
external id, as in files, so commands can be written without looking up ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from portcullis.access import catalogue
from portcullis.access.models import ApproverKind
from portcullis.access.schemas import AccessRoleIn, EntitlementIn, GroupMappingIn, SodRuleIn, TrainingRecordIn
from portcullis.accounts import service as accounts
from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.clock import as_utc
from portcullis.core.context import Context
from portcullis.core.errors import FieldError, NotFound, ValidationFailed
from portcullis.core.output import AfterOpt, LimitOpt, command, emit, emit_page, resolve_ref
from portcullis.inventory import service as inventory
from portcullis.inventory.cli import build, by_external_id, person_id_by_email
from portcullis.inventory.models import PersonKind

entitlements_app = typer.Typer(help="Entitlements on ICT assets and zones (§19, §21).", no_args_is_help=True)
roles_app = typer.Typer(help="Roles: bundles of entitlements with eligibility rules (§22).", no_args_is_help=True)
sod_app = typer.Typer(help="Separation-of-duties rules (§22).", no_args_is_help=True)
training_app = typer.Typer(help="Training records (§13, §19, §21).", no_args_is_help=True)
mappings_app = typer.Typer(
    help="Groups in target systems that stand for entitlements (§21, §25).", no_args_is_help=True
)
identities_app = typer.Typer(help="Which person in the register a platform user is.", no_args_is_help=True)

GROUPS: dict[str, typer.Typer] = {
    "entitlements": entitlements_app,
    "roles": roles_app,
    "sod": sod_app,
    "training": training_app,
    "mappings": mappings_app,
    "identities": identities_app,
}

QOpt = Annotated[str | None, typer.Option("--q", help="Search key, name or description")]
TrainingOpt = Annotated[list[str] | None, typer.Option("--training", help="Required course code; repeat for more")]
_ENT_COLS = [
    "id",
    "key",
    "name",
    "target_kind",
    "asset_external_id",
    "zone_external_id",
    "privileged",
    "remote_admin",
    "required_approvals",
    "approvers",
    "required_training",
    "max_duration_days",
    "active",
]
_ROLE_COLS = ["id", "key", "name", "departments", "person_kinds", "required_training", "entitlement_keys"]


def register(app: typer.Typer) -> None:
    """Adds the access catalogue command groups to the root command."""
    for name, group in GROUPS.items():
        app.add_typer(group, name=name)


def _entitlement_id(ctx: Context, key: str | None, option: str) -> int | None:
    return resolve_ref(lambda k: catalogue.find_entitlement_by_key(ctx, k), key, option, "entitlement with key")


def _role_id(ctx: Context, key: str | None, option: str) -> int | None:
    return resolve_ref(lambda k: catalogue.find_role_by_key(ctx, k), key, option, "role with key")


def _when(value: str | None, option: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except ValueError as exc:
        raise ValidationFailed(
            f"Bad {option}", [FieldError(option, f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time")]
        ) from exc


def _entitlement_by_key(ctx: Context, key: str) -> Any:
    e = catalogue.find_entitlement_by_key(ctx, key)
    if e is None:
        raise NotFound(f"No entitlement with key {key}")
    return e


def _role_by_key(ctx: Context, key: str) -> Any:
    r = catalogue.find_role_by_key(ctx, key)
    if r is None:
        raise NotFound(f"No role with key {key}")
    return r


# --- entitlements ---------------------------------------------------------------------------------


@entitlements_app.command("list")
@command
def entitlements_list(
    asset: Annotated[str | None, typer.Option(help="Only on this asset (external id)")] = None,
    zone: Annotated[str | None, typer.Option(help="Only on this zone (external id)")] = None,
    privileged: Annotated[
        bool | None, typer.Option("--privileged/--not-privileged", help="Only (not) privileged")
    ] = None,
    q: QOpt = None,
    after: AfterOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """List entitlements."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        asset_id = by_external_id(ctx, inventory.find_asset_by_external_id, asset, "--asset", "ICT asset")
        zone_id = by_external_id(ctx, inventory.find_zone_by_external_id, zone, "--zone", "zone")
        result = catalogue.list_entitlements(
            ctx, asset_id=asset_id, zone_id=zone_id, privileged=privileged, q=q, after=after, limit=limit
        )
        emit_page(result, catalogue.entitlement_view, _ENT_COLS, as_json, "Entitlements")


@entitlements_app.command("show")
@command
def entitlements_show(key: Annotated[str, typer.Argument(help="Entitlement key")], as_json: JsonOpt = False) -> None:
    """Show one entitlement."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(catalogue.entitlement_view(_entitlement_by_key(ctx, key)), as_json)


def _entitlement_fields(ctx: Context, given: dict[str, Any], asset: str | None, zone: str | None) -> dict[str, Any]:
    fields = {k: v for k, v in given.items() if v is not None}
    if asset is not None or zone is not None:
        fields["asset_id"] = by_external_id(ctx, inventory.find_asset_by_external_id, asset, "--asset", "ICT asset")
        fields["zone_id"] = by_external_id(ctx, inventory.find_zone_by_external_id, zone, "--zone", "zone")
    return fields


@entitlements_app.command("add")
@command
def entitlements_add(
    key: Annotated[str, typer.Option(help="Unique key, e.g. exchange-db.admin")],
    name: Annotated[str, typer.Option(help="What it allows, in words")],
    asset: Annotated[str | None, typer.Option(help="ICT asset (external id): logical access")] = None,
    zone: Annotated[str | None, typer.Option(help="Zone (external id): physical access")] = None,
    description: Annotated[str, typer.Option()] = "",
    privileged: Annotated[bool, typer.Option(help="Privileged access")] = False,
    remote_admin: Annotated[bool, typer.Option(help="Remote administration")] = False,
    training: TrainingOpt = None,
    max_days: Annotated[int | None, typer.Option(help="Longest grant, in days")] = None,
    approver: Annotated[list[ApproverKind] | None, typer.Option(help="Who approves; repeat (default: owner)")] = None,
    min_approvals: Annotated[int | None, typer.Option(help="Distinct approvers needed (default: the tier's)")] = None,
    scope: Annotated[str, typer.Option(help="For service accounts: the minimum the service needs")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add an entitlement on one asset or one zone."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        given: dict[str, Any] = {
            "key": key,
            "name": name,
            "description": description,
            "privileged": privileged,
            "remote_admin": remote_admin,
            "required_training": training,
            "max_duration_days": max_days,
            "approvers": [a.value for a in approver] if approver else None,
            "min_approvals": min_approvals,
            "scope": scope,
        }
        fields = _entitlement_fields(ctx, given, asset, zone)
        e = catalogue.create_entitlement(ctx, build(EntitlementIn, **fields))
        emit(catalogue.entitlement_view(e), as_json)


@entitlements_app.command("update")
@command
def entitlements_update(
    current_key: Annotated[str, typer.Argument(metavar="KEY", help="Entitlement key")],
    key: Annotated[str | None, typer.Option(help="New key")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    asset: Annotated[str | None, typer.Option(help="Move to this ICT asset (external id)")] = None,
    zone: Annotated[str | None, typer.Option(help="Move to this zone (external id)")] = None,
    description: Annotated[str | None, typer.Option()] = None,
    privileged: Annotated[bool | None, typer.Option("--privileged/--not-privileged")] = None,
    remote_admin: Annotated[bool | None, typer.Option("--remote-admin/--no-remote-admin")] = None,
    training: TrainingOpt = None,
    max_days: Annotated[int | None, typer.Option(help="Longest grant, in days")] = None,
    approver: Annotated[list[ApproverKind] | None, typer.Option(help="Who approves; repeat")] = None,
    min_approvals: Annotated[int | None, typer.Option()] = None,
    scope: Annotated[str | None, typer.Option()] = None,
    active: Annotated[bool | None, typer.Option("--active/--inactive", help="Offered for request or not")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change an entitlement; options not given keep their current value."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        e = _entitlement_by_key(ctx, current_key)
        view = catalogue.entitlement_view(e)
        fields = {k: view[k] for k in EntitlementIn.model_fields}
        given: dict[str, Any] = {
            "key": key,
            "name": name,
            "description": description,
            "privileged": privileged,
            "remote_admin": remote_admin,
            "required_training": training,
            "max_duration_days": max_days,
            "approvers": [a.value for a in approver] if approver else None,
            "min_approvals": min_approvals,
            "scope": scope,
            "active": active,
        }
        fields.update(_entitlement_fields(ctx, given, asset, zone))
        e = catalogue.update_entitlement(ctx, e.id, build(EntitlementIn, **fields))
        emit(catalogue.entitlement_view(e), as_json)


# --- roles ------------------------------------------------------------------------------------------


@roles_app.command("list")
@command
def roles_list(q: QOpt = None, after: AfterOpt = None, limit: LimitOpt = 50, as_json: JsonOpt = False) -> None:
    """List roles."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit_page(
            catalogue.list_roles(ctx, q=q, after=after, limit=limit), catalogue.role_view, _ROLE_COLS, as_json, "Roles"
        )


@roles_app.command("show")
@command
def roles_show(key: Annotated[str, typer.Argument(help="Role key")], as_json: JsonOpt = False) -> None:
    """Show one role."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(catalogue.role_view(_role_by_key(ctx, key)), as_json)


def _role_given(
    ctx: Context,
    department: list[str] | None,
    kind: list[PersonKind] | None,
    training: list[str] | None,
    entitlement: list[str] | None,
) -> dict[str, Any]:
    given: dict[str, Any] = {
        "departments": department,
        "person_kinds": [k.value for k in kind] if kind else None,
        "required_training": training,
        "entitlement_ids": [_entitlement_id(ctx, k, "--entitlement") for k in entitlement] if entitlement else None,
    }
    return {k: v for k, v in given.items() if v is not None}


DeptOpt = Annotated[list[str] | None, typer.Option("--department", help="Eligible department; repeat (none: any)")]
KindOpt = Annotated[list[PersonKind] | None, typer.Option("--kind", help="Eligible kind of person; repeat (none: any)")]
EntOpt = Annotated[list[str] | None, typer.Option("--entitlement", help="Entitlement key in the role; repeat")]


@roles_app.command("add")
@command
def roles_add(
    key: Annotated[str, typer.Option(help="Unique key, e.g. trading-desk")],
    name: Annotated[str, typer.Option()],
    description: Annotated[str, typer.Option()] = "",
    department: DeptOpt = None,
    kind: KindOpt = None,
    training: TrainingOpt = None,
    entitlement: EntOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a role."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        fields: dict[str, Any] = {"key": key, "name": name, "description": description}
        fields.update(_role_given(ctx, department, kind, training, entitlement))
        emit(catalogue.role_view(catalogue.create_role(ctx, build(AccessRoleIn, **fields))), as_json)


@roles_app.command("update")
@command
def roles_update(
    current_key: Annotated[str, typer.Argument(metavar="KEY", help="Role key")],
    key: Annotated[str | None, typer.Option(help="New key")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    department: DeptOpt = None,
    kind: KindOpt = None,
    training: TrainingOpt = None,
    entitlement: EntOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a role; options not given keep their current value (a repeated option replaces the whole list)."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        role = _role_by_key(ctx, current_key)
        view = catalogue.role_view(role)
        fields = {k: view[k] for k in AccessRoleIn.model_fields}
        fields.update(
            {k: v for k, v in {"key": key, "name": name, "description": description}.items() if v is not None}
        )
        fields.update(_role_given(ctx, department, kind, training, entitlement))
        emit(catalogue.role_view(catalogue.update_role(ctx, role.id, build(AccessRoleIn, **fields))), as_json)


# --- separation of duties -------------------------------------------------------------------------------


@sod_app.command("list")
@command
def sod_list(as_json: JsonOpt = False) -> None:
    """List separation-of-duties rules."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [catalogue.sod_rule_view(r) for r in catalogue.list_sod_rules(ctx)]
        emit(rows, as_json, ["id", "name", "left", "right", "reason"], title="Separation of duties")


@sod_app.command("add")
@command
def sod_add(
    name: Annotated[str, typer.Option()],
    left_entitlement: Annotated[str | None, typer.Option(help="Entitlement key on one side")] = None,
    left_role: Annotated[str | None, typer.Option(help="...or a role key")] = None,
    right_entitlement: Annotated[str | None, typer.Option(help="Entitlement key on the other side")] = None,
    right_role: Annotated[str | None, typer.Option(help="...or a role key")] = None,
    reason: Annotated[str, typer.Option(help="Why one person must not hold both")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Add a rule: nobody holds both sides."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            SodRuleIn,
            name=name,
            left_entitlement_id=_entitlement_id(ctx, left_entitlement, "--left-entitlement"),
            left_role_id=_role_id(ctx, left_role, "--left-role"),
            right_entitlement_id=_entitlement_id(ctx, right_entitlement, "--right-entitlement"),
            right_role_id=_role_id(ctx, right_role, "--right-role"),
            reason=reason,
        )
        emit(catalogue.sod_rule_view(catalogue.create_sod_rule(ctx, data)), as_json)


# --- training --------------------------------------------------------------------------------------------


@training_app.command("list")
@command
def training_list(
    person: Annotated[str | None, typer.Option(help="Only this person (email)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List training records."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        person_id = person_id_by_email(ctx, person, "--person")
        rows = [catalogue.training_view(t) for t in catalogue.list_training(ctx, person_id)]
        emit(rows, as_json, ["id", "person_id", "course", "completed_at", "expires_at"], title="Training")


@training_app.command("record")
@command
def training_record(
    person: Annotated[str, typer.Option(help="Who completed it (email)")],
    course: Annotated[str, typer.Option(help="Course code")],
    completed: Annotated[str, typer.Option(help="When: YYYY-MM-DD or ISO 8601 time (UTC if no offset)")],
    expires: Annotated[str | None, typer.Option(help="When it lapses (none: never)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a completed training course."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            TrainingRecordIn,
            person_id=person_id_by_email(ctx, person, "--person"),
            course=course,
            completed_at=_when(completed, "--completed"),
            expires_at=_when(expires, "--expires"),
        )
        emit(catalogue.training_view(catalogue.record_training(ctx, data)), as_json)


# --- group mappings -----------------------------------------------------------------------------------------


@mappings_app.command("list")
@command
def mappings_list(
    system: Annotated[str | None, typer.Option(help="Only this system")] = None, as_json: JsonOpt = False
) -> None:
    """List group mappings."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [catalogue.group_mapping_view(m) for m in catalogue.list_group_mappings(ctx, system)]
        emit(rows, as_json, ["id", "system", "group_name", "entitlement_key"], title="Group mappings")


@mappings_app.command("add")
@command
def mappings_add(
    system: Annotated[str, typer.Option(help="Target system, e.g. ldap")],
    group: Annotated[str, typer.Option(help="Group name (or DN) there")],
    entitlement: Annotated[str, typer.Option(help="Entitlement key the membership stands for")],
    as_json: JsonOpt = False,
) -> None:
    """Say which entitlement membership of a group stands for."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            GroupMappingIn,
            system=system,
            group_name=group,
            entitlement_id=_entitlement_id(ctx, entitlement, "--entitlement"),
        )
        emit(catalogue.group_mapping_view(catalogue.create_group_mapping(ctx, data)), as_json)


# --- identities ----------------------------------------------------------------------------------------------


@identities_app.command("link")
@command
def identities_link(
    user: Annotated[str, typer.Option(help="Platform user (login email)")],
    person: Annotated[str, typer.Option(help="Person in the register (email)")],
    as_json: JsonOpt = False,
) -> None:
    """Link a platform user to the person they are: who requests and approves access."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        try:
            u = accounts.find_user(ctx.session, user)
        except NotFound as exc:
            raise ValidationFailed(
                "Unknown --user", [FieldError("--user", f"no platform user {user.strip()}")]
            ) from exc
        person_id = person_id_by_email(ctx, person, "--person")
        assert person_id is not None
        catalogue.link_user_to_person(ctx, u.id, person_id)
        emit({"user_id": u.id, "user_email": u.email, "person_id": person_id, "person_email": person.strip()}, as_json)
