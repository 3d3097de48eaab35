"""The access catalogue from the command line, as a real token holder, with --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from portcullis.access.cli_catalogue import register
from portcullis.core.errors import Conflict, PermissionDenied, ValidationFailed
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.access.test_catalogue import World, build_world
from tests.factories import make_user
from tests.inventory.test_cli import cli_env  # noqa: F401 - fixture
from tests.inventory.test_service import records

root = typer.Typer()
register(root)


@pytest.fixture
def world(rt: Runtime, cli_env: None) -> World:  # noqa: F811 - cli_env is the imported fixture
    return build_world(rt, make_user(rt, Role.ADMIN))


def run(token: str, *args: str) -> Any:
    return CliRunner().invoke(root, list(args), env={"PORTCULLIS_TOKEN": token, "COLUMNS": "250"})


def run_json(token: str, *args: str) -> Any:
    result = run(token, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_entitlements_add_update_list(rt: Runtime, world: World) -> None:
    t = world.admin.token
    e = run_json(
        t,
        "entitlements",
        "add",
        "--key",
        "signer.root",
        "--name",
        "Root on the signer",
        "--asset",
        "A-1",
        "--privileged",
        "--approver",
        "owner",
        "--approver",
        "security_officer",
        "--training",
        "SEC-1",
    )
    assert (e["asset_id"], e["approvers"], e["required_approvals"]) == (
        world.critical_asset_id,
        ["owner", "security_officer"],
        2,
    )
    bad = run(t, "entitlements", "add", "--key", "x", "--name", "X", "--asset", "NOPE")
    assert bad.exit_code == ValidationFailed.exit_code
    assert "--asset" in bad.output
    bad = run(
        t,
        "entitlements",
        "add",
        "--key",
        "y",
        "--name",
        "Y",
        "--asset",
        "A-1",
        "--remote-admin",
        "--approver",
        "manager",
    )
    assert bad.exit_code == ValidationFailed.exit_code
    assert "approvers" in bad.output
    dup = run(t, "entitlements", "add", "--key", "signer.root", "--name", "Again", "--zone", "Z-1")
    assert dup.exit_code == Conflict.exit_code

    run_json(t, "entitlements", "add", "--key", "door", "--name", "Server room door", "--zone", "Z-1")
    # Options not given keep their value; a new target replaces the old one.
    e = run_json(t, "entitlements", "update", "signer.root", "--max-days", "30")
    assert (e["max_duration_days"], e["privileged"], e["required_training"]) == (30, True, ["SEC-1"])
    e = run_json(t, "entitlements", "update", "door", "--key", "door.enter", "--inactive")
    assert (e["key"], e["active"], e["zone_external_id"]) == ("door.enter", False, "Z-1")
    page = run_json(t, "entitlements", "list", "--privileged")
    assert [x["key"] for x in page["items"]] == ["signer.root"]
    page = run_json(t, "entitlements", "list", "--zone", "Z-1")
    assert [x["key"] for x in page["items"]] == ["door.enter"]
    assert run_json(t, "entitlements", "show", "door.enter")["name"] == "Server room door"
    assert [r["action"] for r in records(rt, "entitlement")] == [
        "entitlement.created",
        "entitlement.created",
        "entitlement.updated",
        "entitlement.updated",
    ]
    table = run(t, "entitlements", "list")
    assert table.exit_code == 0
    assert "signer.root" in table.stdout


def test_roles_sod_training_mappings(rt: Runtime, world: World) -> None:
    t = world.admin.token
    run_json(t, "entitlements", "add", "--key", "pay", "--name", "Pay", "--asset", "A-2")
    run_json(t, "entitlements", "add", "--key", "chk", "--name", "Check", "--asset", "A-2")
    r = run_json(
        t,
        "roles",
        "add",
        "--key",
        "ops",
        "--name",
        "Ops",
        "--entitlement",
        "pay",
        "--department",
        "IT",
        "--kind",
        "employee",
        "--training",
        "AML",
    )
    assert (r["entitlement_keys"], r["departments"], r["person_kinds"]) == (["pay"], ["IT"], ["employee"])
    bad = run(t, "roles", "add", "--key", "x", "--name", "X", "--entitlement", "nope")
    assert bad.exit_code == ValidationFailed.exit_code
    assert "--entitlement" in bad.output
    r = run_json(t, "roles", "update", "ops", "--entitlement", "chk")
    assert (r["entitlement_keys"], r["departments"]) == (["chk"], ["IT"])
    assert run_json(t, "roles", "show", "ops")["required_training"] == ["AML"]

    rule = run_json(
        t, "sod", "add", "--name", "Maker-checker", "--left-entitlement", "pay", "--right-entitlement", "chk"
    )
    assert (rule["left"], rule["right"]) == ("entitlement pay", "entitlement chk")
    bad = run(t, "sod", "add", "--name", "Self", "--left-role", "ops", "--right-role", "ops")
    assert bad.exit_code == ValidationFailed.exit_code
    assert [x["name"] for x in run_json(t, "sod", "list")] == ["Maker-checker"]

    done = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    rec = run_json(
        t,
        "training",
        "record",
        "--person",
        "alice@firm.eu",
        "--course",
        "AML",
        "--completed",
        done,
        "--expires",
        (datetime.now(UTC) + timedelta(days=300)).date().isoformat(),
    )
    assert (rec["person_id"], rec["course"]) == (world.alice_id, "AML")
    bad = run(t, "training", "record", "--person", "alice@firm.eu", "--course", "AML", "--completed", "last week")
    assert bad.exit_code == ValidationFailed.exit_code
    assert "--completed" in bad.output
    bad = run(t, "training", "record", "--person", "nobody@firm.eu", "--course", "AML", "--completed", done)
    assert "--person" in bad.output
    assert [x["course"] for x in run_json(t, "training", "list", "--person", "alice@firm.eu")] == ["AML"]
    assert run_json(t, "training", "list", "--person", "bob@firm.eu") == []

    m = run_json(t, "mappings", "add", "--system", "ldap", "--group", "cn=pay,ou=groups", "--entitlement", "pay")
    assert m["entitlement_id"] == run_json(t, "entitlements", "show", "pay")["id"]
    again = run(t, "mappings", "add", "--system", "ldap", "--group", "cn=pay,ou=groups", "--entitlement", "chk")
    assert again.exit_code == Conflict.exit_code
    assert [x["group_name"] for x in run_json(t, "mappings", "list", "--system", "ldap")] == ["cn=pay,ou=groups"]


def test_identities_link(rt: Runtime, world: World) -> None:
    staff = make_user(rt, Role.STAFF)
    so = make_user(rt, Role.SECURITY_OFFICER)
    denied = run(so.token, "identities", "link", "--user", "staff@example.eu", "--person", "alice@firm.eu")
    assert denied.exit_code == PermissionDenied.exit_code
    out = run_json(world.admin.token, "identities", "link", "--user", "staff@example.eu", "--person", "alice@firm.eu")
    assert (out["user_id"], out["person_id"]) == (staff.user.id, world.alice_id)
    bad = run(world.admin.token, "identities", "link", "--user", "ghost@example.eu", "--person", "alice@firm.eu")
    assert bad.exit_code == ValidationFailed.exit_code
    assert "--user" in bad.output
    taken = run(
        world.admin.token, "identities", "link", "--user", "security_officer@example.eu", "--person", "alice@firm.eu"
    )
    assert taken.exit_code == Conflict.exit_code
    assert [r["object_id"] for r in records(rt, "user", "user.person_linked")] == [str(staff.user.id)]
    # Staff read the catalogue from the command line too, but cannot change it.
    run_json(world.admin.token, "entitlements", "add", "--key", "door", "--name", "Door", "--zone", "Z-1")
    assert [x["key"] for x in run_json(staff.token, "entitlements", "list")["items"]] == ["door"]
    refused = run(staff.token, "entitlements", "add", "--key", "x", "--name", "X", "--zone", "Z-1")
    assert refused.exit_code == PermissionDenied.exit_code
