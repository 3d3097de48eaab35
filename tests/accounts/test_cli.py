from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.errors import AuthenticationFailed, Conflict
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.core.settings import get_settings
from tests.factories import make_user


@pytest.fixture
def cli_env(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("PORTCULLIS_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.setenv("PORTCULLIS_DATABASE_URL", rt.settings.effective_database_url)
    monkeypatch.delenv("PORTCULLIS_TOKEN", raising=False)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_first_admin_is_bootstrapped_then_commands_need_a_login(cli_env: CliRunner, rt: Runtime) -> None:
    args = ["user", "create", "--email", "ciso@aurora.example", "--role", "admin", "--name", "Ines Duarte"]
    first = cli_env.invoke(app, [*args, "--password", "a long first password", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["role"] == "admin"
    again = cli_env.invoke(app, ["user", "create", "--email", "b@aurora.example", "--role", "staff",
                                 "--password", "another long password"])
    assert again.exit_code == AuthenticationFailed.exit_code
    assert "portcullis login" in again.output


def test_a_second_bootstrap_is_refused_and_a_token_lists_users(
    cli_env: CliRunner, rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = make_user(rt, Role.ADMIN)
    monkeypatch.setenv("PORTCULLIS_TOKEN", admin.token)
    listed = cli_env.invoke(app, ["user", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [u["email"] for u in json.loads(listed.output)] == [admin.user.email]
    dup = cli_env.invoke(app, ["user", "create", "--email", admin.user.email, "--role", "staff",
                               "--password", "another long password"])
    assert dup.exit_code == Conflict.exit_code


def test_staff_token_cannot_create_users(cli_env: CliRunner, rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    make_user(rt, Role.ADMIN)
    staff = make_user(rt, Role.STAFF)
    monkeypatch.setenv("PORTCULLIS_TOKEN", staff.token)
    r = cli_env.invoke(app, ["user", "create", "--email", "x@aurora.example", "--role", "staff",
                             "--password", "another long password"])
    assert r.exit_code == 6
    assert "may not users.manage" in r.output
