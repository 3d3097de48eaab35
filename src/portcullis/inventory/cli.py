"""`portcullis org|people|sites|zones|providers|assets ...`: the registers from the command line.

People are named by email and other records by external id, as in the CSV files,
so a command line can be written without first looking up database ids.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from portcullis.accounts.cli import JsonOpt, cli_principal, runtime
from portcullis.core.context import Context
from portcullis.core.errors import FieldError, NotFound, ValidationFailed
from portcullis.core.output import AfterOpt, LimitOpt, command, emit, emit_page, resolve_ref
from portcullis.inventory import service
from portcullis.inventory.models import AssetType, Criticality, Level, PersonKind, PersonStatus, SiteKind, ZoneKind
from portcullis.inventory.proportionality import KEYS
from portcullis.inventory.schemas import AssetIn, OrganisationIn, OverrideIn, PersonIn, ProviderIn, SiteIn, ZoneIn

org_app = typer.Typer(help="Organisation profile and proportionality defaults (§11).", no_args_is_help=True)
people_app = typer.Typer(help="People: staff, contractors, service accounts.", no_args_is_help=True)
sites_app = typer.Typer(help="Premises (§18).", no_args_is_help=True)
zones_app = typer.Typer(help="Zones within premises (§18-20).", no_args_is_help=True)
providers_app = typer.Typer(help="ICT third-party service providers (§17 i-ii).", no_args_is_help=True)
assets_app = typer.Typer(help="ICT assets (§17 i).", no_args_is_help=True)

# The CSV import/export commands attach to these same groups.
GROUPS: dict[str, typer.Typer] = {
    "org": org_app,
    "people": people_app,
    "sites": sites_app,
    "zones": zones_app,
    "providers": providers_app,
    "assets": assets_app,
}

QOpt = Annotated[str | None, typer.Option("--q", help="Search name, email or external id")]


def register(app: typer.Typer) -> None:
    """Adds the inventory command groups to the root command."""
    for name, group in GROUPS.items():
        app.add_typer(group, name=name)


InT = TypeVar("InT", bound=BaseModel)


def build(model: type[InT], **fields: Any) -> InT:
    """The input model, or ValidationFailed naming each bad option."""
    try:
        return model(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        errors = [
            FieldError(
                "--" + (str(e["loc"][0]).replace("_", "-") if e["loc"] else "input"),
                str(e["msg"]).removeprefix("Value error, "),
            )
            for e in exc.errors()
        ]
        raise ValidationFailed(f"The {model.__name__.removesuffix('In').lower()} is not valid", errors) from exc


def by_external_id(
    ctx: Context, finder: Callable[[Context, str], Any], external_id: str | None, option: str, label: str
) -> int | None:
    return resolve_ref(lambda x: finder(ctx, x), external_id, option, f"{label} with external id")


def person_id_by_email(ctx: Context, email: str | None, option: str) -> int | None:
    return resolve_ref(lambda e: service.find_person_by_email(ctx, e), email, option, "person with email")


# --- organisation ---------------------------------------------------------------


@org_app.command("show")
@command
def org_show(as_json: JsonOpt = False) -> None:
    """Show the organisation profile and its proportionality tier."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        org = service.get_organisation(ctx)
        if org is None:
            raise NotFound("No organisation profile yet; create it with `portcullis org set`")
        emit(service.organisation_view(org), as_json)


@org_app.command("set")
@command
def org_set(
    legal_name: Annotated[str | None, typer.Option(help="Registered legal name")] = None,
    lei: Annotated[str | None, typer.Option(help="Legal Entity Identifier (ISO 17442)")] = None,
    competent_authority: Annotated[str | None, typer.Option(help="National competent authority")] = None,
    country: Annotated[str | None, typer.Option(help="ISO 3166 country code")] = None,
    staff_count: Annotated[int | None, typer.Option(help="Number of staff")] = None,
    risk_profile: Annotated[Level | None, typer.Option(help="Overall risk profile")] = None,
    complexity: Annotated[Level | None, typer.Option(help="Complexity of activities")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create or change the profile; options not given keep their current value."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        current = service.get_organisation(ctx)
        fields: dict[str, Any] = {}
        if current is not None:
            view = service.organisation_view(current)
            fields = {k: view[k] for k in OrganisationIn.model_fields}
        given = {
            "legal_name": legal_name,
            "lei": lei,
            "competent_authority": competent_authority,
            "country": country.upper() if country else country,
            "staff_count": staff_count,
            "risk_profile": risk_profile.value if risk_profile else None,
            "complexity": complexity.value if complexity else None,
        }
        fields.update({k: v for k, v in given.items() if v is not None})
        org = service.set_organisation(ctx, build(OrganisationIn, **fields))
        emit(service.organisation_view(org), as_json)


def _defaults_rows(ctx: Context) -> list[dict[str, Any]]:
    return [{"key": k, **v} for k, v in service.effective_defaults(ctx).items()]


_DEFAULT_COLUMNS = ["key", "value", "default", "tier", "overridden", "reason", "set_by"]


@org_app.command("defaults")
@command
def org_defaults(as_json: JsonOpt = False) -> None:
    """The defaults of the proportionality tier and the firm's overrides."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(_defaults_rows(ctx), as_json, _DEFAULT_COLUMNS, title="Proportionality defaults")


@org_app.command("override")
@command
def org_override(
    key: Annotated[str, typer.Argument(help="One of: " + ", ".join(KEYS))],
    value: Annotated[int, typer.Argument(help="The value to use instead of the tier's default")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail; at least 10 characters)")],
    as_json: JsonOpt = False,
) -> None:
    """Replace one default of the tier, with the reason."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        service.set_override(ctx, build(OverrideIn, key=key, value=value, reason=reason))
        emit(_defaults_rows(ctx), as_json, _DEFAULT_COLUMNS, title="Proportionality defaults")


@org_app.command("clear-override")
@command
def org_clear_override(
    key: Annotated[str, typer.Argument(help="The overridden default")],
    reason: Annotated[str, typer.Option(help="Why the tier's default applies again")],
    as_json: JsonOpt = False,
) -> None:
    """Return one default to the tier's value, with the reason."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        service.clear_override(ctx, key, reason)
        emit(_defaults_rows(ctx), as_json, _DEFAULT_COLUMNS, title="Proportionality defaults")


# --- people -------------------------------------------------------------------------


@people_app.command("list")
@command
def people_list(
    status: Annotated[PersonStatus | None, typer.Option(help="Only this status")] = None,
    department: Annotated[str | None, typer.Option(help="Only this department")] = None,
    kind: Annotated[PersonKind | None, typer.Option(help="Only this kind")] = None,
    q: QOpt = None,
    after: AfterOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """List people."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = service.list_people(
            ctx,
            status=status.value if status else None,
            department=department,
            kind=kind.value if kind else None,
            q=q,
            after=after,
            limit=limit,
        )
        cols = ["id", "external_id", "email", "full_name", "kind", "department", "status", "manager_email"]
        emit_page(result, service.person_view, cols, as_json, "People")


@people_app.command("show")
@command
def people_show(person_id: Annotated[int, typer.Argument(help="Person id")], as_json: JsonOpt = False) -> None:
    """Show one person."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(service.person_view(service.get_person(ctx, person_id)), as_json)


@people_app.command("add")
@command
def people_add(
    external_id: Annotated[str, typer.Option(help="HR system id")],
    email: Annotated[str, typer.Option(help="Work email")],
    name: Annotated[str, typer.Option(help="Full name")],
    kind: Annotated[PersonKind, typer.Option(help="Kind of person")] = PersonKind.EMPLOYEE,
    department: Annotated[str, typer.Option()] = "",
    job_title: Annotated[str, typer.Option()] = "",
    manager: Annotated[str | None, typer.Option(help="Manager's email")] = None,
    status: Annotated[PersonStatus, typer.Option()] = PersonStatus.JOINER,
    start_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    end_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    key_function_holder: Annotated[bool, typer.Option(help="Holds a key function")] = False,
    mfa_enrolled: Annotated[bool, typer.Option(help="MFA enrolled at the identity provider")] = False,
    idp_id: Annotated[str | None, typer.Option(help="Identity provider id")] = None,
    badge_id: Annotated[str | None, typer.Option(help="Badge id at the door readers")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a person."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            PersonIn,
            external_id=external_id,
            email=email,
            full_name=name,
            kind=kind.value,
            department=department,
            job_title=job_title,
            manager_id=person_id_by_email(ctx, manager, "--manager"),
            status=status.value,
            start_date=start_date,
            end_date=end_date,
            key_function_holder=key_function_holder,
            mfa_enrolled=mfa_enrolled,
            idp_id=idp_id,
            badge_id=badge_id,
        )
        emit(service.person_view(service.create_person(ctx, data)), as_json)


# --- sites and zones -----------------------------------------------------------------


@sites_app.command("list")
@command
def sites_list(
    kind: Annotated[SiteKind | None, typer.Option(help="Only this kind")] = None,
    q: QOpt = None,
    after: AfterOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """List sites."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = service.list_sites(ctx, kind=kind.value if kind else None, q=q, after=after, limit=limit)
        emit_page(result, service.site_view, ["id", "external_id", "name", "kind", "owner_email"], as_json, "Sites")


@sites_app.command("show")
@command
def sites_show(site_id: Annotated[int, typer.Argument(help="Site id")], as_json: JsonOpt = False) -> None:
    """Show one site."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(service.site_view(service.get_site(ctx, site_id)), as_json)


@sites_app.command("add")
@command
def sites_add(
    external_id: Annotated[str, typer.Option(help="Your id for the site")],
    name: Annotated[str, typer.Option()],
    kind: Annotated[SiteKind, typer.Option()],
    address: Annotated[str, typer.Option()] = "",
    owner: Annotated[str | None, typer.Option(help="Owner's email")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a site."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            SiteIn,
            external_id=external_id,
            name=name,
            kind=kind.value,
            address=address,
            owner_id=person_id_by_email(ctx, owner, "--owner"),
        )
        emit(service.site_view(service.create_site(ctx, data)), as_json)


@zones_app.command("list")
@command
def zones_list(
    site: Annotated[str | None, typer.Option(help="Only zones of this site (external id)")] = None,
    criticality: Annotated[Criticality | None, typer.Option()] = None,
    q: QOpt = None,
    after: AfterOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """List zones."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        site_id = by_external_id(ctx, service.find_site_by_external_id, site, "--site", "site")
        result = service.list_zones(
            ctx, site_id=site_id, criticality=criticality.value if criticality else None, q=q, after=after, limit=limit
        )
        cols = ["id", "external_id", "site_external_id", "name", "kind", "criticality", "owner_email"]
        emit_page(result, service.zone_view, cols, as_json, "Zones")


@zones_app.command("show")
@command
def zones_show(zone_id: Annotated[int, typer.Argument(help="Zone id")], as_json: JsonOpt = False) -> None:
    """Show one zone."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(service.zone_view(service.get_zone(ctx, zone_id)), as_json)


@zones_app.command("add")
@command
def zones_add(
    external_id: Annotated[str, typer.Option(help="Your id for the zone")],
    site: Annotated[str, typer.Option(help="The site's external id")],
    name: Annotated[str, typer.Option()],
    criticality: Annotated[Criticality, typer.Option()],
    kind: Annotated[ZoneKind, typer.Option()] = ZoneKind.OTHER,
    owner: Annotated[str | None, typer.Option(help="Owner's email")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a zone to a site."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            ZoneIn,
            external_id=external_id,
            site_id=by_external_id(ctx, service.find_site_by_external_id, site, "--site", "site"),
            name=name,
            kind=kind.value,
            criticality=criticality.value,
            owner_id=person_id_by_email(ctx, owner, "--owner"),
        )
        emit(service.zone_view(service.create_zone(ctx, data)), as_json)


# --- providers -------------------------------------------------------------------------


@providers_app.command("list")
@command
def providers_list(
    criticality: Annotated[Criticality | None, typer.Option()] = None,
    contract_end_before: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    q: QOpt = None,
    after: AfterOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """List ICT third-party providers."""
    end_before = None
    if contract_end_before:
        try:
            end_before = date.fromisoformat(contract_end_before)
        except ValueError as exc:
            raise ValidationFailed(
                "Bad date", [FieldError("--contract-end-before", f"{contract_end_before!r} is not YYYY-MM-DD")]
            ) from exc
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = service.list_providers(
            ctx,
            criticality=criticality.value if criticality else None,
            contract_end_before=end_before,
            q=q,
            after=after,
            limit=limit,
        )
        cols = ["id", "external_id", "name", "criticality", "lei", "contract_end"]
        emit_page(result, service.provider_view, cols, as_json, "ICT third-party providers")


@providers_app.command("show")
@command
def providers_show(provider_id: Annotated[int, typer.Argument(help="Provider id")], as_json: JsonOpt = False) -> None:
    """Show one provider."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(service.provider_view(service.get_provider(ctx, provider_id)), as_json)


@providers_app.command("add")
@command
def providers_add(
    external_id: Annotated[str, typer.Option(help="Your id for the provider")],
    name: Annotated[str, typer.Option()],
    criticality: Annotated[Criticality, typer.Option()],
    lei: Annotated[str | None, typer.Option(help="Legal Entity Identifier")] = None,
    services: Annotated[str, typer.Option(help="ICT services provided")] = "",
    contract_start: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    contract_end: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    exit_plan: Annotated[str, typer.Option()] = "",
    contact_email: Annotated[str | None, typer.Option()] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an ICT third-party provider."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        data = build(
            ProviderIn,
            external_id=external_id,
            name=name,
            criticality=criticality.value,
            lei=lei,
            services=services,
            contract_start=contract_start,
            contract_end=contract_end,
            exit_plan=exit_plan,
            contact_email=contact_email,
        )
        emit(service.provider_view(service.create_provider(ctx, data)), as_json)


# --- assets --------------------------------------------------------------------------------


@assets_app.command("list")
@command
def assets_list(
    type: Annotated[AssetType | None, typer.Option("--type")] = None,
    criticality: Annotated[Criticality | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option(help="Owner's email")] = None,
    provider: Annotated[str | None, typer.Option(help="Provider's external id")] = None,
    zone: Annotated[str | None, typer.Option(help="Zone's external id")] = None,
    q: QOpt = None,
    after: AfterOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """List ICT assets."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        result = service.list_assets(
            ctx,
            type=type.value if type else None,
            criticality=criticality.value if criticality else None,
            owner_id=person_id_by_email(ctx, owner, "--owner"),
            provider_id=by_external_id(ctx, service.find_provider_by_external_id, provider, "--provider", "provider"),
            zone_id=by_external_id(ctx, service.find_zone_by_external_id, zone, "--zone", "zone"),
            q=q,
            after=after,
            limit=limit,
        )
        cols = ["id", "external_id", "name", "type", "criticality", "owner_email", "provider_external_id"]
        emit_page(result, service.asset_view, cols, as_json, "ICT assets")


@assets_app.command("show")
@command
def assets_show(asset_id: Annotated[int, typer.Argument(help="Asset id")], as_json: JsonOpt = False) -> None:
    """Show one asset."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        emit(service.asset_view(service.get_asset(ctx, asset_id)), as_json)


@assets_app.command("add")
@command
def assets_add(
    external_id: Annotated[str, typer.Option(help="Your id for the asset")],
    name: Annotated[str, typer.Option()],
    type: Annotated[AssetType, typer.Option("--type")],
    criticality: Annotated[Criticality, typer.Option()],
    owner: Annotated[str | None, typer.Option(help="Owner's email (required for critical assets)")] = None,
    business_function: Annotated[str, typer.Option()] = "",
    zone: Annotated[str | None, typer.Option(help="Zone's external id")] = None,
    location: Annotated[str, typer.Option(help="Where it is, if not in a zone")] = "",
    provider: Annotated[str | None, typer.Option(help="Provider's external id")] = None,
    description: Annotated[str, typer.Option()] = "",
    tag: Annotated[list[str] | None, typer.Option(help="A tag; repeat for more")] = None,
    depends_on: Annotated[list[str] | None, typer.Option(help="External id of an asset it depends on; repeat")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add an ICT asset."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        find_asset = service.find_asset_by_external_id
        deps = [by_external_id(ctx, find_asset, d, "--depends-on", "asset") for d in depends_on or []]
        data = build(
            AssetIn,
            external_id=external_id,
            name=name,
            type=type.value,
            criticality=criticality.value,
            owner_id=person_id_by_email(ctx, owner, "--owner"),
            business_function=business_function,
            zone_id=by_external_id(ctx, service.find_zone_by_external_id, zone, "--zone", "zone"),
            location=location,
            provider_id=by_external_id(ctx, service.find_provider_by_external_id, provider, "--provider", "provider"),
            description=description,
            tags=tag or [],
            depends_on=[d for d in deps if d is not None],
        )
        emit(service.asset_view(service.create_asset(ctx, data)), as_json)
