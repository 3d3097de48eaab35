"""Certificates through the command line, the API and the pages: scan, register, expiring, the internal CA."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from portcullis.cli import app
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn
from portcullis.keys.register import KeyIn, register_key
from portcullis.keys.service import backends
from tests.certs.pki import issue, make_pki
from tests.certs.test_discovery import TlsServers, fp
from tests.factories import Made, make_user
from tests.web.helpers import inline_problems, login

SYSTEM = Principal.system("tests")
OWNER = "sofia@kestrel.example.eu"


@pytest.fixture
def servers(tmp_path: Path) -> Any:
    s = TlsServers(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def officer(rt: Runtime) -> Made:
    with rt.work(SYSTEM) as ctx:
        p = inventory.create_person(
            ctx, PersonIn(external_id="HR-1", email=OWNER, full_name="Sofia", status="active", mfa_enrolled=True)
        )
        inventory.create_asset(
            ctx, AssetIn(external_id="A-WEB", name="Web", type="application", criticality="important", owner_id=p.id)
        )
    return make_user(rt, Role.SECURITY_OFFICER, OWNER)


def run(token: str, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"PORTCULLIS_TOKEN": token, "COLUMNS": "250"})


def run_json(token: str, *args: str) -> Any:
    result = run(token, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_scan_register_and_expiring_from_the_command_line(
    rt: Runtime, cli_env: None, officer: Made, servers: TlsServers
) -> None:
    now = rt.clock.now()
    pki = make_pki("shop.kestrel.test", now=now, leaf={"not_after": now + timedelta(days=20)})
    port = servers.serve(pki)
    t = officer.token
    [report] = run_json(t, "certs", "scan", f"127.0.0.1:{port}@shop.kestrel.test", "--timeout", "5")
    assert (report["reached"], report["new"]) == (1, 2)
    listed = {c["fingerprint"]: c for c in run_json(t, "certs", "list")}
    leaf_fp = fp(pki.leaf.cert)
    assert listed[leaf_fp]["status"] == "unregistered"
    reg = run_json(t, "certs", "register", leaf_fp[:12], "--owner", OWNER, "--asset", "A-WEB")
    assert (reg["status"], reg["owner_id"] is not None) == ("active", True)
    soon = run_json(t, "certs", "expiring", "--days", "30")
    assert [c["fingerprint"] for c in soon] == [leaf_fp]
    assert run_json(t, "certs", "expiring", "--days", "10") == []
    shown = run_json(t, "certs", "show", leaf_fp[:12])
    assert shown["assets"] == ["A-WEB"]
    assert shown["deployments"][0]["location"] == f"127.0.0.1:{port}/shop.kestrel.test"
    # Nothing to scan, and renewing a hand-renewed certificate: refused with meaningful exit codes.
    assert run(t, "certs", "scan").exit_code == 2
    refused = run(t, "certs", "renew", leaf_fp[:12])
    assert refused.exit_code == 4
    assert "renewed by hand" in refused.output


def test_internal_ca_from_the_command_line(rt: Runtime, cli_env: None, officer: Made, tmp_path: Path) -> None:
    with rt.work(officer.principal) as ctx:
        register_key(
            ctx,
            KeyIn(
                key="ca-key",
                name="CA key",
                purpose="internal CA",
                algorithm="ecdsa-p256",
                policy={"sign": ["system:certs.ca"]},
            ),
            backends(rt)["software"],
        )
    t = officer.token
    run_json(
        t,
        "certs",
        "ca",
        "create",
        "kestrel",
        "--crypto-key",
        "ca-key",
        "--cn",
        "Kestrel CA",
        "--allow",
        "kestrel.internal",
    )
    issued = run_json(
        t,
        "certs",
        "ca",
        "issue",
        "kestrel",
        "--san",
        "db.kestrel.internal",
        "--out-cert",
        str(tmp_path / "db.pem"),
        "--out-key",
        str(tmp_path / "db.key"),
    )
    chain = x509.load_pem_x509_certificates((tmp_path / "db.pem").read_bytes())
    key = serialization.load_pem_private_key((tmp_path / "db.key").read_bytes(), None)
    assert chain[0].public_key() == key.public_key()
    assert (tmp_path / "db.key").stat().st_mode & 0o777 == 0o600
    assert issued["fingerprint"] == fp(chain[0])
    outside = run(
        t,
        "certs",
        "ca",
        "issue",
        "kestrel",
        "--san",
        "evil.example",
        "--out-cert",
        str(tmp_path / "e.pem"),
        "--out-key",
        str(tmp_path / "e.key"),
    )
    assert outside.exit_code == 2
    assert "evil.example" in outside.output
    run_json(t, "certs", "ca", "revoke", issued["fingerprint"][:12], "--reason", "key_compromise")
    assert run(t, "certs", "ca", "crl", "kestrel", "--out", str(tmp_path / "crl.der")).exit_code == 0
    crl = x509.load_der_x509_crl((tmp_path / "crl.der").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(chain[0].serial_number) is not None


def test_api_and_pages(rt: Runtime, client: TestClient, clock: FrozenClock, officer: Made) -> None:
    now = clock.now()
    leaf = issue("portal.kestrel.test", sans=["portal.kestrel.test"], now=now, not_after=now + timedelta(days=12))
    body = {
        "file_base64": base64.b64encode(leaf.pem).decode(),
        "file_name": "portal.pem",
        "entry": {"owner_email": OWNER, "asset_external_ids": ["A-WEB"]},
    }
    auditor = make_user(rt, Role.AUDITOR, "aude@kestrel.example.eu")
    assert client.post("/api/v1/certs", json=body, headers=auditor.headers).status_code == 403
    r = client.post("/api/v1/certs", json=body, headers=officer.headers)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["fingerprint"] == fp(leaf.cert)
    bad = client.post(
        "/api/v1/certs", json={**body, "file_base64": base64.b64encode(b"junk").decode()}, headers=officer.headers
    )
    assert bad.status_code == 422
    assert "portal.pem" in bad.json()["detail"]
    listed = client.get("/api/v1/certs?expiring_within_days=30", headers=auditor.headers).json()
    assert [c["id"] for c in listed["items"]] == [cid]
    assert client.get("/api/v1/certs?expiring_within_days=5", headers=auditor.headers).json()["items"] == []
    soon = client.get("/api/v1/certs/expiring?days=30", headers=auditor.headers).json()
    assert soon[0]["fingerprint"] == fp(leaf.cert)
    login(client, make_user(rt, Role.ADMIN), clock)
    for path in ("/certs", f"/certs/{cid}", "/certs/calendar", "/certs/devices"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert inline_problems(page.text) == []
    assert "portal.kestrel.test" in client.get("/certs").text
    assert "portal.kestrel.test" in client.get("/certs/calendar").text
    assert fp(leaf.cert) in client.get(f"/certs/{cid}").text
    # The dashboard lists what expires within the month.
    dashboard = client.get("/").text
    assert "Certificates expiring within a month" in dashboard
    assert f'href="/certs/{cid}"' in dashboard


def test_a_discovered_certificate_is_registered_and_retired_from_its_page(
    rt: Runtime, client: TestClient, clock: FrozenClock, officer: Made
) -> None:
    from sqlalchemy import select

    from portcullis.access.models import Finding
    from portcullis.certs.models import Certificate, DeploymentKind
    from portcullis.certs.register import Place, record_found
    from tests.web.helpers import post_form

    leaf = issue("intranet.kestrel.test", sans=["intranet.kestrel.test"], now=clock.now())
    with rt.work(officer.principal) as ctx:
        cid = record_found(ctx, [leaf.cert], Place(DeploymentKind.FILE, "/etc/ssl/intranet.pem")).leaf.id
    login(client, make_user(rt, Role.ADMIN), clock)
    page = f"/certs/{cid}"
    assert "Take into the register" in client.get(page).text
    bad = post_form(client, page, f"{page}/register", {"owner_email": OWNER, "assets": "NOPE"})
    assert "asset_external_ids[0]" in bad.text
    assert "NOPE" in bad.text
    ok = post_form(client, page, f"{page}/register", {"owner_email": OWNER, "assets": "A-WEB", "notes": "intranet"})
    assert "The certificate is in the register." in ok.text
    with rt.session() as s:
        c = s.get(Certificate, cid)
        assert c is not None
        assert (c.status, c.notes) == ("active", "intranet")
        unregistered = s.scalars(select(Finding).where(Finding.key == f"cert_unregistered:cert:{cid}")).one()
        assert unregistered.status == "resolved"
    refused = post_form(client, page, f"{page}/retire", {"reason": " "})
    assert "reason" in refused.text
    retired = post_form(client, page, f"{page}/retire", {"reason": "decommissioned"})
    assert "The certificate is retired." in retired.text
    with rt.session() as s:
        assert s.get(Certificate, cid).status == "retired"  # type: ignore[union-attr]
