"""`portcullis demo`: a believable firm to look at, built through the same services as real data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import pyotp
import typer
from sqlalchemy import func, select

from portcullis import demo_access, demo_certs, demo_events, demo_keys
from portcullis import demo_data as data
from portcullis.access.models import AccessRole, Entitlement, Finding, FindingStatus, Grant, GrantStatus
from portcullis.accounts import service as accounts
from portcullis.accounts.models import User
from portcullis.certs.models import Certificate
from portcullis.core import migrate
from portcullis.core import secrets as auth
from portcullis.core.context import Context, Principal
from portcullis.core.errors import Conflict
from portcullis.core.output import command, out
from portcullis.core.runtime import Runtime
from portcullis.core.settings import Settings, get_settings
from portcullis.events.models import AccessEvent, EventSource
from portcullis.inventory import service as inventory
from portcullis.inventory.models import Asset, Person, PersonKind, Provider, Site, Zone
from portcullis.inventory.schemas import AssetIn, OrganisationIn, OverrideIn, PersonIn, ProviderIn, SiteIn, ZoneIn
from portcullis.keys.models import CryptoKey
from portcullis.keys.service import keyring
from portcullis.ledger import operations
from portcullis.ledger.service import record_change

DEMO = Principal.system("demo")
_SQLITE_FILES = ("portcullis.db", "portcullis.db-wal", "portcullis.db-shm", "portcullis.db-journal")

T = TypeVar("T")


@dataclass
class Built:
    created: bool
    counts: dict[str, int]


def _in_dependency_order(items: Iterable[T], key: Callable[[T], str], needs: Callable[[T], Iterable[str]]) -> list[T]:
    """Order items so that each comes after those it refers to (managers, dependencies)."""
    pending = {key(i): i for i in items}
    done: set[str] = set()
    ordered: list[T] = []
    while pending:
        ready = [k for k, i in pending.items() if all(n in done for n in needs(i))]
        if not ready:
            raise ValueError(f"demo data refers in a circle or to unknown records: {sorted(pending)}")
        for k in ready:
            ordered.append(pending.pop(k))
            done.add(k)
    return ordered


def _build_people(ctx: Context) -> dict[str, int]:
    ids: dict[str, int] = {}
    specs = _in_dependency_order(data.PEOPLE_SPECS, lambda p: p.external_id, lambda p: [p.manager] if p.manager else [])
    for p in specs:
        person = inventory.create_person(
            ctx,
            PersonIn(
                external_id=p.external_id,
                email=p.email,
                full_name=p.full_name,
                kind=p.kind,
                department=p.department,
                job_title=p.job_title,
                manager_id=ids[p.manager] if p.manager else None,
                status=p.status,
                start_date=p.start_date,
                end_date=p.end_date,
                key_function_holder=p.key_function_holder,
                idp_id=p.idp_id,
                badge_id=p.badge_id,
                mfa_enrolled=p.mfa_enrolled,
            ),
        )
        ids[p.external_id] = person.id
    return ids


def _build_premises(ctx: Context, people: dict[str, int]) -> dict[str, int]:
    sites: dict[str, int] = {}
    for s in data.SITES:
        site = inventory.create_site(
            ctx,
            SiteIn(external_id=s.external_id, name=s.name, kind=s.kind, address=s.address, owner_id=people[s.owner]),
        )
        sites[s.external_id] = site.id
    zones: dict[str, int] = {}
    for z in data.ZONES:
        zone = inventory.create_zone(
            ctx,
            ZoneIn(
                external_id=z.external_id,
                site_id=sites[z.site],
                name=z.name,
                kind=z.kind,
                criticality=z.criticality,
                owner_id=people[z.owner],
            ),
        )
        zones[z.external_id] = zone.id
    return zones


def _build_providers(ctx: Context) -> dict[str, int]:
    ids: dict[str, int] = {}
    for p in data.PROVIDERS:
        provider = inventory.create_provider(
            ctx,
            ProviderIn(
                external_id=p.external_id,
                name=p.name,
                lei=p.lei,
                services=p.services,
                criticality=p.criticality,
                contract_start=p.contract_start,
                contract_end=p.contract_end,
                exit_plan=p.exit_plan,
                contact_email=p.contact_email,
            ),
        )
        ids[p.external_id] = provider.id
    return ids


def _build_assets(
    ctx: Context, people: dict[str, int], zones: dict[str, int], providers: dict[str, int]
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for a in _in_dependency_order(data.ASSETS, lambda a: a.external_id, lambda a: a.depends_on):
        asset = inventory.create_asset(
            ctx,
            AssetIn(
                external_id=a.external_id,
                name=a.name,
                type=a.type,
                criticality=a.criticality,
                owner_id=people[a.owner] if a.owner else None,
                business_function=a.business_function,
                zone_id=zones[a.zone] if a.zone else None,
                location=a.location,
                provider_id=providers[a.provider] if a.provider else None,
                description=a.description,
                tags=list(a.tags),
                depends_on=[ids[d] for d in a.depends_on],
            ),
        )
        ids[a.external_id] = asset.id
    return ids


def _build_users(ctx: Context) -> dict[str, User]:
    users: dict[str, User] = {}
    for u in data.USERS:
        user = accounts.create_user(ctx, u.email, u.full_name, u.role, u.password)
        if u.totp_secret:
            _enrol_fixed_totp(ctx, user, u.totp_secret)
        users[u.email] = user
    return users


def _enrol_fixed_totp(ctx: Context, user: User, secret: str) -> None:
    # Demo only: begin_totp_enrolment draws a random secret (as it must), which
    # would force everyone trying the demo to re-add it to their authenticator
    # after every --reset. A fixed, published secret is acceptable for a throwaway
    # demo login and nowhere else; the enrolment is still audited like a real one.
    user.totp_secret = secret
    user.totp_enrolled_at = ctx.now()
    record_change(ctx, "mfa.enrolled", "user", user.id, {"mfa_enrolled": False}, {"mfa_enrolled": True}, demo=True)


def build_demo(rt: Runtime) -> Built:
    """Build the demo organisation in one unit of work, unless it is already there."""
    # The key service's master key is unsealed (and its check value recorded) in a transaction of its own,
    # before the demo's long one holds the database.
    keyring(rt)
    with rt.work(DEMO) as base:
        existing = inventory.get_organisation(base)
        if existing is not None:
            if existing.legal_name != data.ORGANISATION["legal_name"]:
                raise Conflict(
                    f"This database already holds the organisation {existing.legal_name!r}; "
                    "the demo is only built into an empty database (or use --reset on the embedded one)"
                )
            return Built(False, counts(base))
        # The firm's first weeks on Portcullis, played on a clock that ends now (see demo_access).
        story = demo_access.Story.start(base, DEMO)
        ctx = story.ctx()
        inventory.set_organisation(ctx, OrganisationIn.model_validate(data.ORGANISATION))
        for override in data.OVERRIDES:
            inventory.set_override(ctx, OverrideIn.model_validate(override))
        people = _build_people(ctx)
        zones = _build_premises(ctx, people)
        providers = _build_providers(ctx)
        assets = _build_assets(ctx, people, zones, providers)
        users = _build_users(ctx)
        demo_keys.register_keys(story, rt)
        demo_access.build_access(story, people, assets, zones, users)
        demo_events.build_events(story)
        demo_keys.compromise_and_replace(story, rt)
        demo_certs.build_certificates(story, rt)
        base.session.flush()
        # A first signed checkpoint, so the demo's audit trail is anchored from the start.
        operations.sign_checkpoints(base, rt.signer)
        return Built(True, counts(base))


def counts(ctx: Context) -> dict[str, int]:
    s = ctx.session
    service_account = Person.kind == PersonKind.SERVICE_ACCOUNT.value
    active, open_ = GrantStatus.ACTIVE.value, FindingStatus.OPEN.value
    return {
        "people": s.scalar(select(func.count()).select_from(Person).where(~service_account)) or 0,
        "service accounts": s.scalar(select(func.count()).select_from(Person).where(service_account)) or 0,
        **{
            name: s.scalar(select(func.count()).select_from(model)) or 0
            for name, model in (
                ("sites", Site),
                ("zones", Zone),
                ("providers", Provider),
                ("assets", Asset),
                ("platform users", User),
                ("entitlements", Entitlement),
                ("roles", AccessRole),
            )
        },
        "active grants": s.scalar(select(func.count()).select_from(Grant).where(Grant.status == active)) or 0,
        "open findings": s.scalar(select(func.count()).select_from(Finding).where(Finding.status == open_)) or 0,
        "event sources": s.scalar(select(func.count()).select_from(EventSource)) or 0,
        "access events": s.scalar(select(func.count()).select_from(AccessEvent)) or 0,
        "keys": s.scalar(select(func.count()).select_from(CryptoKey)) or 0,
        "certificates": s.scalar(select(func.count()).select_from(Certificate)) or 0,
    }


def reset_database(settings: Settings) -> list[Path]:
    """Delete the embedded SQLite database; refused for any other database."""
    if settings.database_url:
        raise Conflict(
            "--reset only deletes the embedded SQLite database in the data directory; "
            "PORTCULLIS_DATABASE_URL is set, so drop and recreate that database yourself"
        )
    removed = []
    for name in _SQLITE_FILES:
        path = settings.data_dir / name
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


def _say(message: str) -> None:
    # soft_wrap keeps the URI and the secret on one line, whatever the terminal width.
    out.print(message, highlight=False, soft_wrap=True)


def current_code() -> str:
    return str(pyotp.TOTP(data.ADMIN_TOTP_SECRET).now())


def _print_logins(rt: Runtime) -> None:
    settings = rt.settings
    uri = auth.totp_uri(data.ADMIN_TOTP_SECRET, data.ADMIN_EMAIL)
    _say(f"\nOpen [bold]http://{settings.host}:{settings.port}/[/bold]")
    _say(f"  admin:   {data.ADMIN_EMAIL} / {data.ADMIN_PASSWORD}  (password, then a TOTP code)")
    _say(f"  auditor: {data.AUDITOR_EMAIL} / {data.AUDITOR_PASSWORD}  (password only)")
    _say(
        f"  The admin is {demo_access.ADMIN_PERSON_NAME} (CISO): a request waits in /access/approvals, "
        "and what is wrong with the firm's access is in /access/findings"
    )
    _say(f"\nAdmin TOTP secret: {data.ADMIN_TOTP_SECRET}")
    if out.is_terminal:
        import segno

        _say("Scan this with an authenticator app, or add the secret above by hand:")
        segno.make(uri, error="m").terminal(compact=True)
    _say(f"otpauth URI: {uri}")
    _say(f"Current code: [bold]{current_code()}[/bold]  (`portcullis demo --code` prints a fresh one)\n")
    _say("[dim]These credentials are published: use the demo only on your own machine.[/dim]")


@command
def demo(
    serve: Annotated[bool, typer.Option("--serve", help="Serve the web UI and API after building")] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete the embedded SQLite database first (no confirmation)")
    ] = False,
    code: Annotated[bool, typer.Option("--code", help="Only print a current TOTP code for the demo admin")] = False,
) -> None:
    """Build the demo organisation (a 60-person crypto-asset offeror) and print how to log in."""
    if code:
        _say(current_code())
        return
    if reset:
        removed = reset_database(get_settings())
        _say("Removed " + ", ".join(str(p) for p in removed) if removed else "No embedded database to remove")
    rt = Runtime.build()
    migrate.upgrade(rt.engine)
    built = build_demo(rt)
    summary = ", ".join(f"{n} {k}" for k, n in built.counts.items())
    if built.created:
        _say(f"Built the demo organisation {data.ORGANISATION['legal_name']}: {summary}")
        if not demo_events.available():
            _say(f"[dim]No event sources: the log samples are not at {demo_events.SAMPLES}.[/dim]")
    else:
        _say(f"The demo organisation already exists ({summary}); nothing changed")
    _print_logins(rt)
    rt.engine.dispose()
    if serve:
        # Deferred: portcullis.cli imports this module to register the command.
        from portcullis.cli import serve as serve_command

        serve_command(host=None, port=None)


def register_demo(app: typer.Typer) -> None:
    app.command("demo")(demo)
