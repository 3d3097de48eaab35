"""`portcullis user ...` and `portcullis login`: platform users from the command line.

Commands act as a principal like every other interface: the one whose API token is
in PORTCULLIS_TOKEN, or the one that ran `portcullis login` (token kept in the data
directory, readable only by its owner).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from portcullis.accounts import service
from portcullis.core.context import Principal
from portcullis.core.errors import AuthenticationFailed
from portcullis.core.output import command, emit, out
from portcullis.core.permissions import PERMISSIONS, Role
from portcullis.core.runtime import Runtime

app = typer.Typer(help="Platform users, MFA and API tokens.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output")]
CLI_TOKEN_FILE = "cli-token"  # noqa: S105 - a file name, not a secret


def runtime() -> Runtime:
    rt = Runtime.build()
    from portcullis.core.migrate import ensure_current

    ensure_current(rt.engine)
    return rt


def cli_principal(rt: Runtime) -> Principal:
    token = os.environ.get("PORTCULLIS_TOKEN", "").strip()
    token_file = rt.settings.data_dir / CLI_TOKEN_FILE
    if not token and token_file.exists():
        token = token_file.read_text().strip()
    if not token:
        raise AuthenticationFailed(
            "Not logged in: run `portcullis login`, or set PORTCULLIS_TOKEN to an API token"
        )
    with rt.session() as s:
        p = service.token_principal(s, rt.clock, token)
    return Principal(name=p.name, role=p.role, user_id=p.user_id, via="cli", mfa=p.mfa, scopes=p.scopes)


@app.command("create")
@command
def create(
    email: Annotated[str, typer.Option(help="Login email")],
    role: Annotated[str, typer.Option(help="One of: " + ", ".join(r.value for r in Role))],
    name: Annotated[str, typer.Option(help="Full name")] = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a user. With no users yet, bootstraps the first admin."""
    rt = runtime()
    with rt.session() as s:
        first = service.count_users(s) == 0
    if first:
        with rt.session() as s:
            user = service.bootstrap_first_user(s, rt.clock, email, name or email, role, password)
    else:
        with rt.work(cli_principal(rt)) as ctx:
            user = service.create_user(ctx, email, name or email, role, password)
    view = service.user_view(user)
    emit(view, as_json)
    if not as_json and Role(user.role) in {Role.ADMIN, Role.SECURITY_OFFICER, Role.APPROVER, Role.KEY_CUSTODIAN}:
        out.print("This role needs MFA: log in to the web UI to enrol TOTP before changing anything.")


@app.command("list")
@command
def list_(as_json: JsonOpt = False) -> None:
    """List platform users."""
    rt = runtime()
    with rt.work(cli_principal(rt)) as ctx:
        rows = [service.user_view(u) for u in service.list_users(ctx)]
    emit(rows, as_json, ["id", "email", "full_name", "role", "active", "mfa_enrolled"])


def login(
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    hours: Annotated[int, typer.Option(help="How long the CLI session lasts")] = 12,
) -> None:
    """Log the command line in (password and TOTP); keeps a short-lived token in the data directory."""
    with_reported_login(email, password, hours)


@command
def with_reported_login(email: str, password: str, hours: int) -> None:
    rt = runtime()
    with rt.session() as s:
        user = service.check_password(s, rt.clock, rt.settings, email, password, "cli")
    if user is None:
        raise AuthenticationFailed("Email or password is wrong")
    mfa = False
    with rt.session() as s:
        user = service.get_user(s, user.id)
        if service.needs_mfa(user):
            if user.totp_enrolled_at is None:
                raise AuthenticationFailed("This role needs MFA: enrol TOTP in the web UI first")
            code = typer.prompt("TOTP code")
            service.check_totp(s, rt.clock, user, code, rt.settings)
            mfa = True
    principal = service.principal_for(user, "cli", mfa)
    with rt.work(principal) as ctx:
        scopes = [p.value for p in PERMISSIONS[Role(user.role)]]
        _, plain = service.create_api_token(ctx, "cli login", scopes, max(1, (hours + 23) // 24))
    path = rt.settings.data_dir / CLI_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain)
    out.print(f"Logged in as {user.email} ({user.role}); token kept in {path}")
