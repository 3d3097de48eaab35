"""No page, API answer, command output, log line, ledger record, export or evidence bundle carries key material.

The demo is built, every key's material is opened with the master key (the only
place it exists in the clear), and every output of a run through the web, the API
and the command line is searched for it, raw, hex and base64, along with the master
key itself and the sealed blobs.
"""

from __future__ import annotations

import base64
import json
import logging
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.demo import build_demo
from portcullis.keys.backends.base import Algorithm
from portcullis.keys.backends.software import SoftwareBackend
from portcullis.keys.models import CryptoKey, KeyVersion
from portcullis.keys.service import backends, keyring
from portcullis.ledger.models import LedgerRecord
from tests.factories import make_user
from tests.web.helpers import login


def _forms(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


@pytest.fixture
def demo_env(rt: Runtime, cli_env: None) -> Runtime:
    build_demo(rt)
    return rt


def test_no_output_of_a_full_run_carries_key_material(
    demo_env: Runtime, client: TestClient, clock: FrozenClock, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    rt = demo_env
    caplog.set_level(logging.DEBUG)
    software = backends(rt)["software"]
    assert isinstance(software, SoftwareBackend)
    secrets: list[bytes] = [keyring(rt).master]
    names: list[str] = []
    with rt.session() as s:
        for algorithm, name, ref in s.execute(
            select(CryptoKey.algorithm, CryptoKey.key, KeyVersion.ref).join(
                KeyVersion, KeyVersion.key_id == CryptoKey.id
            )
        ):
            names.append(name)
            if ref is not None:
                secrets += [software.open(Algorithm(algorithm), ref), ref]
        ledger = b"\n".join(bytes(p) for p in s.scalars(select(LedgerRecord.payload)))
    assert len(secrets) > 6  # the demo's software keys: material and sealed blob each, and the master key

    outputs: dict[str, bytes] = {"ledger": ledger}
    admin = make_user(rt, Role.ADMIN)
    login(client, admin, clock)
    for path in [
        "/",
        "/keys",
        *[f"/keys/{n}" for n in names],
        "/ledger",
        "/events",
        "/audit",
        "/ledger/audit",
        "/access/findings",
    ]:
        outputs[f"page {path}"] = client.get(path).content
    api = TestClient(client.app, base_url="https://testserver")
    for path in [
        "/api/v1/keys",
        *[f"/api/v1/keys/{n}" for n in names],
        "/api/v1/ledger/streams",
        "/api/v1/events/export.csv",
        "/api/v1/keys/seal/status",
    ]:
        outputs[f"api {path}"] = api.get(path, headers=admin.headers).content
    env = {"PORTCULLIS_TOKEN": admin.token, "COLUMNS": "250"}
    runner = CliRunner()
    for args in (
        ["keys", "list", "--json"],
        *[["keys", "show", n, "--json"] for n in names],
        ["ledger", "streams", "--json"],
        ["events", "search", "--json"],
    ):
        result = runner.invoke(app, args, env=env)
        outputs["cli " + " ".join(args)] = result.output.encode()
    bundle = f"{tmp_path}/bundle.zip"
    result = runner.invoke(app, ["evidence", "bundle", "--out", bundle], env=env)
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(bundle) as z:
        for member in z.namelist():
            outputs[f"bundle {member}"] = z.read(member)
    outputs["logs"] = "\n".join(r.getMessage() for r in caplog.records).encode()

    assert any(b"tls-exchange-2026" in out for out in outputs.values())  # the search does look at real output
    leaks = [
        (where, i)
        for where, out in outputs.items()
        for i, secret in enumerate(secrets)
        for form in _forms(secret)
        if form in out
    ]
    assert leaks == []


def test_the_grep_finds_material_when_it_is_there() -> None:
    """The search itself can fail: planted material in an output is found in every encoding."""
    secret = bytes(range(32))
    for form in _forms(secret):
        out = b"... " + form + b" ..."
        assert any(f in out for f in _forms(secret))
    assert not any(f in json.dumps({"x": 1}).encode() for f in _forms(secret))
