"""Every page renders under the strict CSP: no inline script, no style attribute or element."""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient

from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn, ProviderIn, SiteIn, ZoneIn
from tests.factories import make_user
from tests.web.helpers import csrf_of, inline_problems, login, password_step, post_form


def _fill(rt: Runtime) -> dict[str, int]:
    with rt.work(Principal.system("tests")) as ctx:
        p = inventory.create_person(ctx, PersonIn(external_id="E-1", email="ada@firm.eu", full_name="Ada"))
        s = inventory.create_site(ctx, SiteIn(external_id="S-1", name="HQ", kind="office", owner_id=p.id))
        z = inventory.create_zone(ctx, ZoneIn(external_id="Z-1", site_id=s.id, name="Server room",
                                              kind="server_room", criticality="critical"))
        pr = inventory.create_provider(ctx, ProviderIn(external_id="P-1", name="Cloud", criticality="critical",
                                                       contract_end=date(2027, 1, 1)))
        a = inventory.create_asset(ctx, AssetIn(external_id="A-1", name="Wallet", type="wallet",
                                                criticality="critical", owner_id=p.id, zone_id=z.id,
                                                provider_id=pr.id))
    return {"people": p.id, "sites": s.id, "zones": z.id, "providers": pr.id, "assets": a.id}


def test_no_page_carries_inline_script_or_style(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    ids = _fill(rt)
    checked: dict[str, str] = {}

    anonymous = TestClient(client.app, base_url="https://testserver")
    checked["/login"] = anonymous.get("/login").text
    checked["csrf refusal"] = anonymous.post("/login", data={"email": "x"}).text

    fresh = TestClient(client.app, base_url="https://testserver")
    make_user(rt, Role.KEY_CUSTODIAN, enrol_mfa=False)
    password_step(fresh, "key_custodian@example.eu")
    checked["/login/enrol"] = fresh.get("/login/enrol").text
    half = TestClient(client.app, base_url="https://testserver")
    make_user(rt, Role.APPROVER)
    password_step(half, "approver@example.eu")
    checked["/login/totp"] = half.get("/login/totp").text

    login(client, make_user(rt, Role.ADMIN), clock)
    pages = ["/", "/account", "/users", "/audit", "/organisation", "/import", "/assets/999999",
             "/ledger", "/ledger/audit", "/ledger/audit?index=0", "/events",
             "/events/quarantine", "/keys", "/certs", "/certs/devices", "/certs/calendar", "/certs/999999"]
    for slug, item in ids.items():
        pages += [f"/{slug}", f"/{slug}/new", f"/{slug}/{item}", f"/{slug}/{item}/edit"]
    for path in pages:
        r = client.get(path)
        assert r.status_code in (200, 404), path
        checked[path] = r.text
    checked["form errors"] = post_form(client, "/assets/new", "/assets", {"name": ""}).text
    checked["import report"] = client.post(
        "/import",
        data={"kind": "people", "action": "dry_run", "csrf_token": csrf_of(checked["/import"])},
        files={"file": ("x.csv", b"wrong,header\n1,2\n", "text/csv")},
    ).text
    checked["new token"] = post_form(client, "/account", "/account/tokens",
                                     {"name": "ci", "days": "30", "scopes": ["inventory.read"]}).text
    assert re.search(r'<code id="new-token">pc_', checked["new token"])

    for where, html in checked.items():
        assert "<html" in html, where
        assert inline_problems(html) == [], where
    staff = TestClient(client.app, base_url="https://testserver")
    login(staff, make_user(rt, Role.STAFF, enrol_mfa=False), clock)
    forbidden = staff.get("/users")
    assert forbidden.status_code == 403
    assert inline_problems(forbidden.text) == []


def test_the_checker_catches_what_the_csp_would_block() -> None:
    assert inline_problems('<script>alert(1)</script><p style="color:red">x</p><style>p{}</style>') == [
        "inline <script>",
        "style attribute on <p>",
        "<style> element",
    ]
    assert inline_problems('<script src="/static/x.js"></script><img src="data:x" onerror="x">') == [
        "event handler attribute on <img>"
    ]
