from __future__ import annotations

import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.models import Asset, Person
from portcullis.inventory.schemas import PersonIn, ProviderIn
from tests.factories import make_user
from tests.web.helpers import csrf_of, login, post_form

ASSET = {
    "external_id": "A-100",
    "name": "Custody signing service",
    "type": "application",
    "criticality": "important",
    "business_function": "custody",
    "location": "eu-central-1",
    "tags": "custody, signing",
}


def _count(rt: Runtime, model: type[Asset] | type[Person]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count(model.id))) or 0


def _person(rt: Runtime, n: int, **kw: object) -> int:
    with rt.work(Principal.system("tests")) as ctx:
        data = {"external_id": f"E-{n}", "email": f"p{n}@firm.eu", "full_name": f"Person {n:02d}", **kw}
        return inventory.create_person(ctx, PersonIn.model_validate(data)).id


def _admin(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.ADMIN), clock)


def test_create_a_person_and_an_asset_through_the_forms(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    person = {"external_id": "E-1", "full_name": "Ada Owner", "email": "ada@firm.eu", "kind": "employee"}
    r = post_form(client, "/people/new", "/people", {**person, "status": "active"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert re.fullmatch(r"/people/\d+", r.headers["location"])
    person_id = r.headers["location"].rsplit("/", 1)[1]

    # A critical asset needs an owner: the service says so, next to the owner field.
    r = post_form(client, "/assets/new", "/assets", {**ASSET, "criticality": "critical"})
    assert r.status_code == 400
    assert re.search(r'id="owner_id-errors">\s*<li>a critical asset needs an owner', r.text)
    fields = {**ASSET, "criticality": "critical", "owner_id": person_id}
    r = post_form(client, "/assets/new", "/assets", fields, follow_redirects=False)
    assert r.status_code == 303, r.text
    detail = client.get(r.headers["location"])
    assert "Custody signing service" in detail.text
    assert f'href="/people/{person_id}">ada@firm.eu' in detail.text
    assert "custody, signing" in detail.text
    listing = client.get("/assets")
    assert "Custody signing service" in listing.text
    assert "ada@firm.eu" in listing.text
    assert _count(rt, Asset) == 1


def test_bad_input_comes_back_with_errors_next_to_the_fields(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    _admin(rt, client, clock)
    bad = {**ASSET, "external_id": "", "criticality": "", "owner_id": "9999"}
    r = post_form(client, "/assets/new", "/assets", bad)
    assert r.status_code == 400
    for name in ("external_id", "criticality"):
        block = re.search(rf'<ul class="field-errors" id="{name}-errors">(.*?)</ul>', r.text, re.S)
        assert block, name
        assert "is required" in block.group(1)
    # What was typed is kept.
    assert 'value="Custody signing service"' in r.text
    assert _count(rt, Asset) == 0

    r = post_form(client, "/assets/new", "/assets", {**ASSET, "owner_id": "9999"})
    assert r.status_code == 400
    assert 'id="owner_id-errors"' in r.text
    assert _count(rt, Asset) == 0

    r = post_form(client, "/people/new", "/people", {"external_id": "E-2", "full_name": "X", "email": "not-an-email"})
    assert r.status_code == 400
    assert re.search(r'id="email-errors">\s*<li>is not an email address', r.text)

    leaver = {"external_id": "E-3", "full_name": "Y", "email": "y@firm.eu", "status": "leaver"}
    r = post_form(client, "/people/new", "/people", leaver)
    assert r.status_code == 400
    assert re.search(r'id="end_date-errors">\s*<li>a leaver needs an end_date', r.text)
    assert _count(rt, Person) == 0


def test_duplicate_external_id_is_a_conflict_on_the_form(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    assert post_form(client, "/assets/new", "/assets", ASSET, follow_redirects=False).status_code == 303
    r = post_form(client, "/assets/new", "/assets", {**ASSET, "name": "Another"})
    assert r.status_code == 409
    assert "A-100" in r.text
    assert 'class="alert"' in r.text
    assert _count(rt, Asset) == 1


def test_edit_an_asset(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _admin(rt, client, clock)
    url = post_form(client, "/assets/new", "/assets", ASSET, follow_redirects=False).headers["location"]
    form = client.get(url + "/edit")
    assert 'value="A-100"' in form.text
    assert 'value="custody, signing"' in form.text
    r = client.post(url, data={**ASSET, "name": "Custody signer v2", "csrf_token": csrf_of(form.text)})
    assert r.status_code == 200
    assert "Custody signer v2" in r.text
    assert "Saved." in r.text
    with rt.session() as s:
        assert s.scalars(select(Asset.name)).one() == "Custody signer v2"
    assert client.get("/assets/4242").status_code == 404


def test_lists_filter_and_page_with_a_next_link(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    for n in range(1, 6):
        _person(rt, n, department="Ops" if n % 2 else "Legal")
    _admin(rt, client, clock)
    first = client.get("/people", params={"limit": 2})
    assert "Person 01" in first.text
    assert "Person 03" not in first.text
    assert "2 shown of 5" in first.text
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt
    second = client.get(nxt.group(1).replace("&amp;", "&"))
    assert "Person 03" in second.text
    assert "Person 01" not in second.text
    legal = client.get("/people", params={"department": "Legal"})
    assert "Person 02" in legal.text
    assert "Person 04" in legal.text
    assert "Person 01" not in legal.text
    assert "2 shown of 2" in legal.text


def test_auditor_reads_registers_but_gets_no_forms(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _person(rt, 1)
    login(client, make_user(rt, Role.AUDITOR, enrol_mfa=False), clock)
    listing = client.get("/people")
    assert listing.status_code == 200
    assert "Person 01" in listing.text
    assert 'href="/people/new"' not in listing.text
    assert client.get("/people/new").status_code == 403
    r = client.post("/assets", data={**ASSET, "csrf_token": csrf_of(listing.text)})
    assert r.status_code == 403
    assert _count(rt, Asset) == 0
    assert client.get("/organisation").status_code == 200
    assert 'action="/organisation"' not in client.get("/organisation").text


def test_staff_cannot_read_registers(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.STAFF, enrol_mfa=False), clock)
    for path in ("/people", "/assets", "/sites", "/zones", "/providers", "/organisation", "/import"):
        assert client.get(path).status_code == 403, path


def test_dashboard_shows_what_needs_doing(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    _person(rt, 1, status="leaver", end_date=date(2026, 10, 31))
    with rt.work(Principal.system("tests")) as ctx:
        soon = clock.now().date() + timedelta(days=30)
        later = clock.now().date() + timedelta(days=200)
        for ext, end in (("P-SOON", soon), ("P-LATER", later)):
            data = {"external_id": ext, "name": ext.title(), "criticality": "critical", "contract_end": end}
            inventory.create_provider(ctx, ProviderIn.model_validate(data))
    make_user(rt, Role.APPROVER, enrol_mfa=False)
    _admin(rt, client, clock)
    post_form(client, "/assets/new", "/assets", ASSET)
    home = client.get("/").text
    assert "Every critical asset has an owner." in home
    assert "Person 01" in home  # a leaver
    assert "P-Soon" in home
    assert "P-Later" not in home
    assert "approver@example.eu" in home  # role needs MFA, not enrolled
    assert "asset.created" in home  # latest audit records
    assert "standard" in home  # the tier without a profile


def test_detail_pages_show_what_points_at_a_record(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    from portcullis.inventory.schemas import AssetIn

    owner = _person(rt, 1, status="active")
    _person(rt, 2, status="active", manager_id=owner)
    with rt.work(Principal.system("tests")) as ctx:
        cloud = inventory.create_provider(
            ctx, ProviderIn(external_id="P-1", name="Nimbus Cloud", criticality="critical")
        ).id
        db = inventory.create_asset(
            ctx, AssetIn(external_id="A-1", name="Order database", type="database", criticality="critical",
                         owner_id=owner, provider_id=cloud)
        ).id
        inventory.create_asset(
            ctx, AssetIn(external_id="A-2", name="Matching engine", type="application", criticality="critical",
                         owner_id=owner, depends_on=[db])
        )
    _admin(rt, client, clock)
    provider_page = client.get(f"/providers/{cloud}").text
    assert "ICT assets it supports (1)" in provider_page
    assert f'href="/assets/{db}">Order database' in provider_page
    assert "Matching engine" in client.get(f"/assets/{db}").text  # its dependant
    person_page = client.get(f"/people/{owner}").text
    assert "Reports (1)" in person_page
    assert "ICT assets owned (2)" in person_page
