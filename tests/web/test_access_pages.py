"""The access pages: who sees what, forms with the services' refusals next to their fields, CSRF."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from portcullis.access import catalogue, findings, requests
from portcullis.access.models import AccessRequest, Approval, Entitlement, Grant
from portcullis.access.schemas import AccessRoleIn, DecisionIn, EntitlementIn, RequestIn
from portcullis.core.clock import FrozenClock
from portcullis.core.context import Principal
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from portcullis.inventory import service as inventory
from portcullis.inventory.schemas import AssetIn, PersonIn, SiteIn, ZoneIn
from tests.factories import Made, make_user
from tests.web.helpers import csrf_of, inline_problems, login, post_form

SYSTEM = Principal.system("tests")


@dataclass
class World:
    staff: Made
    owner: Made  # approver role, the wallet's owner
    officer: Made  # security officer
    auditor: Made
    admin: Made
    staff_person: int
    owner_person: int
    officer_person: int
    other_person: int
    asset: int
    zone: int
    signer: int  # privileged, two approvers, at most 30 days
    reader: int  # one approver (the owner), at most 90 days
    door: int  # physical, on the server room


def _person(rt: Runtime, n: int, name: str, **kw: object) -> int:
    with rt.work(SYSTEM) as ctx:
        data = {"external_id": f"E-{n}", "email": f"{name.split()[0].lower()}@firm.eu", "full_name": name,
                "status": "active", **kw}
        return inventory.create_person(ctx, PersonIn.model_validate(data)).id


def _link(rt: Runtime, made: Made, person_id: int) -> None:
    with rt.work(SYSTEM) as ctx:
        catalogue.link_user_to_person(ctx, made.user.id, person_id)


def world(rt: Runtime) -> World:
    staff_p = _person(rt, 1, "Stan Staff", department="Operations", mfa_enrolled=True)
    owner_p = _person(rt, 2, "Olga Owner", department="Custody", mfa_enrolled=True)
    officer_p = _person(rt, 3, "Sam Security", department="Security", mfa_enrolled=True)
    other_p = _person(rt, 4, "Nora Nomfa", department="Operations", mfa_enrolled=False)
    with rt.work(SYSTEM) as ctx:
        site = inventory.create_site(ctx, SiteIn(external_id="S-1", name="HQ", kind="office", owner_id=owner_p))
        zone = inventory.create_zone(ctx, ZoneIn(external_id="Z-1", site_id=site.id, name="Server room",
                                                 kind="server_room", criticality="critical", owner_id=owner_p))
        asset = inventory.create_asset(ctx, AssetIn(external_id="A-1", name="Hot wallet", type="wallet",
                                                    criticality="critical", owner_id=owner_p))
        signer = catalogue.create_entitlement(ctx, EntitlementIn(
            key="wallet.signer", name="Hot wallet signer", asset_id=asset.id, privileged=True,
            approvers=["owner", "security_officer"], min_approvals=2, max_duration_days=30))
        reader = catalogue.create_entitlement(ctx, EntitlementIn(
            key="wallet.read", name="Hot wallet read-only", asset_id=asset.id, approvers=["owner"],
            max_duration_days=90))
        door = catalogue.create_entitlement(ctx, EntitlementIn(
            key="server-room.entry", name="Server room entry", zone_id=zone.id, approvers=["owner"]))
        ids = (site.id, zone.id, asset.id, signer.id, reader.id, door.id)
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    owner = make_user(rt, Role.APPROVER)
    officer = make_user(rt, Role.SECURITY_OFFICER)
    auditor = make_user(rt, Role.AUDITOR, enrol_mfa=False)
    admin = make_user(rt, Role.ADMIN)
    _link(rt, staff, staff_p)
    _link(rt, owner, owner_p)
    _link(rt, officer, officer_p)
    return World(staff, owner, officer, auditor, admin, staff_p, owner_p, officer_p, other_p,
                 ids[2], ids[1], ids[3], ids[4], ids[5])


def _client(client: TestClient) -> TestClient:
    return TestClient(client.app, base_url="https://testserver")


def _as(client: TestClient, rt: Runtime, clock: FrozenClock, made: Made) -> TestClient:
    c = _client(client)
    login(c, made, clock)
    return c


def _count(rt: Runtime, model: type[AccessRequest] | type[Grant] | type[Approval] | type[Entitlement]) -> int:
    with rt.session() as s:
        return s.scalar(select(func.count(model.id))) or 0


def _errors(html: str, name: str) -> str:
    block = re.search(rf'<ul class="field-errors" id="{name}-errors">(.*?)</ul>', html, re.S)
    assert block, f"no errors shown next to {name}"
    return block.group(1)


def _forms(html: str) -> list[str]:
    """The actions of the forms that change something (logout aside)."""
    return [a for a in re.findall(r'<form method="post" action="([^"]+)"', html) if a != "/logout"]


def _request(rt: Runtime, made: Made, subject: int, entitlement: int, days: int = 10) -> int:
    with rt.work(made.principal) as ctx:
        return requests.request_access(ctx, RequestIn(
            subject_id=subject, entitlement_id=entitlement, justification="Needed for the quarterly close.",
            duration_days=days)).id


def _approve(rt: Runtime, made: Made, request_id: int) -> None:
    with rt.work(made.principal) as ctx:
        requests.decide(ctx, request_id, DecisionIn(approve=True, comment="ok"))


def _granted(rt: Runtime, w: World) -> int:
    """A reader grant for the staff member, through the services: requested by the staff, approved by the owner."""
    rid = _request(rt, w.staff, w.staff_person, w.reader)
    _approve(rt, w.owner, rid)
    with rt.session() as s:
        gid = s.scalar(select(Grant.id).where(Grant.request_id == rid))
    assert gid is not None
    return gid


# --- who sees what -------------------------------------------------------------------


def test_staff_see_their_access_and_the_form_but_not_the_grants(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    w = world(rt)
    gid = _granted(rt, w)
    staff = _as(client, rt, clock, w.staff)
    home = staff.get("/")
    assert 'href="/access"' in home.text
    assert 'href="/access/grants"' not in home.text

    mine = staff.get("/access")
    assert mine.status_code == 200
    held = re.search(r'<table id="my-grants">(.*?)</table>', mine.text, re.S)
    assert held
    assert "Hot wallet read-only" in held.group(1)
    assert "ICT asset A-1" in held.group(1)
    assert "/access/requests" in _forms(mine.text)
    # The choices: the three entitlements; themselves first, then colleagues (names and emails only,
    # though staff cannot read the register itself).
    assert mine.text.count('value="entitlement:') == 3
    assert re.search(r'<select id="f-subject_id"[^>]*>\s*<option value="\d+" selected>Myself: Stan Staff', mine.text)
    assert re.search(rf'<option value="{w.other_person}">Nora Nomfa \(nora@firm.eu\)</option>', mine.text)
    assert staff.get("/people").status_code == 403

    for path in ("/access/grants", "/access/findings", "/access/approvals", "/access/entitlements/new"):
        r = staff.get(path)
        assert r.status_code == 403, path
        assert f"grant {gid}" not in r.text
    r = post_form(staff, "/access", f"/access/grants/{gid}/revoke", {"reason": "mine"})
    assert r.status_code == 403
    with rt.session() as s:
        assert s.get(Grant, gid).status == "active"  # type: ignore[union-attr]


def test_an_unlinked_user_is_told_what_is_missing(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    world(rt)
    lone = make_user(rt, Role.KEY_CUSTODIAN, email="kc@firm.eu")
    r = _as(client, rt, clock, lone).get("/access")
    assert r.status_code == 403
    assert "not linked to a person" in r.text


def test_approvers_see_their_inbox_and_decide(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    rid = _request(rt, w.staff, w.staff_person, w.signer)

    owner = _as(client, rt, clock, w.owner)
    assert 'href="/access/approvals"' in owner.get("/access").text
    inbox = owner.get("/access/approvals")
    assert inbox.status_code == 200
    card = re.search(rf'<section class="card request" id="request-{rid}">(.*?)</section>', inbox.text, re.S)
    assert card, inbox.text
    body = card.group(1)
    assert "Hot wallet signer" in body
    assert '<span class="badge bad">privileged</span>' in body
    assert "stan@firm.eu" in body
    assert "Needed for the quarterly close." in body
    assert re.search(r'class="approvals">0 of 2', body)
    assert "2026-11-" in body or "2026-12-" in body  # the decide-by date

    r = post_form(owner, "/access/approvals", f"/access/requests/{rid}/decide",
                  {"decision": "approve", "comment": "owner agrees"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/access/approvals?done=approved"
    with rt.session() as s:
        approvals = list(s.scalars(select(Approval).where(Approval.request_id == rid)))
    assert [(a.approver_id, a.approve, a.comment) for a in approvals] == [(w.owner_person, True, "owner agrees")]
    assert _count(rt, Grant) == 0  # one of two
    # Decided once, the request leaves this approver's inbox; it is still in the officer's.
    assert f'id="request-{rid}"' not in owner.get("/access/approvals").text
    officer = _as(client, rt, clock, w.officer)
    pending = officer.get("/access/approvals").text
    assert re.search(rf'id="request-{rid}">.*?class="approvals">1 of 2', pending, re.S)

    # The requester never sees their own request to decide.
    staff = _as(client, rt, clock, w.staff)
    assert staff.get("/access/approvals").status_code == 403
    assert "Hot wallet signer" in re.search(r'<table id="my-requests">(.*?)</table>', staff.get("/access").text,
                                            re.S).group(1)  # type: ignore[union-attr]


def test_a_rejection_and_a_bad_decision(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    rid = _request(rt, w.staff, w.staff_person, w.reader)
    owner = _as(client, rt, clock, w.owner)
    r = post_form(owner, "/access/approvals", f"/access/requests/{rid}/decide", {"decision": "maybe"})
    assert r.status_code == 400
    assert "choose approve or reject" in _errors(r.text, "decision")
    assert _count(rt, Approval) == 0
    r = post_form(owner, "/access/approvals", f"/access/requests/{rid}/decide",
                  {"decision": "reject", "comment": "read-only access is enough elsewhere"})
    assert r.status_code == 200
    assert "The request has been rejected." in r.text
    with rt.session() as s:
        req = s.get(AccessRequest, rid)
        assert req is not None
        assert req.status == "rejected"
    assert _count(rt, Grant) == 0


def test_auditors_read_everything_and_change_nothing(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    gid = _granted(rt, w)
    with rt.work(SYSTEM) as ctx:
        fid = findings.open_finding(ctx, key="test:1", kind="training_missing", severity="high",
                                    detail="Stan Staff has not completed WALLET-101", person_id=w.staff_person,
                                    owner_id=w.owner_person).id
    auditor = _as(client, rt, clock, w.auditor)
    home = auditor.get("/")
    assert 'href="/access/grants"' in home.text
    for path in ("/access/grants", "/access/findings", "/access/catalogue"):
        r = auditor.get(path)
        assert r.status_code == 200, path
        assert _forms(r.text) == [], path
    listing = auditor.get("/access/grants").text
    assert re.search(rf'<tr id="grant-{gid}">.*?stan@firm.eu.*?Hot wallet read-only', listing, re.S)
    assert "Revoke now" not in listing
    assert f'<tr id="finding-{fid}">' in auditor.get("/access/findings").text
    assert "New entitlement" not in auditor.get("/access/catalogue").text
    assert auditor.get("/access/entitlements/new").status_code == 403
    # An auditor is no requester: no "My access" page.
    assert auditor.get("/access").status_code == 403

    token = csrf_of(auditor.get("/account").text)
    r = auditor.post(f"/access/grants/{gid}/revoke", data={"reason": "audit", "csrf_token": token})
    assert r.status_code == 403
    r = auditor.post(f"/access/findings/{fid}/resolve", data={"resolution": "fine", "csrf_token": token})
    assert r.status_code == 403
    with rt.session() as s:
        assert s.get(Grant, gid).status == "active"  # type: ignore[union-attr]


# --- the request form ------------------------------------------------------------------


def test_a_request_through_the_form(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    staff = _as(client, rt, clock, w.staff)
    r = post_form(staff, "/access", "/access/requests", {
        "target": f"entitlement:{w.signer}", "subject_id": str(w.staff_person),
        "justification": "Signing the cold-to-hot top-up this week.", "duration_days": "7",
    }, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/access?done=requested"
    with rt.session() as s:
        req = s.scalars(select(AccessRequest)).one()
        assert (req.requester_id, req.subject_id, req.entitlement_id, req.duration_days, req.required_approvals) == (
            w.staff_person, w.staff_person, w.signer, 7, 2)
    page = staff.get("/access?done=requested").text
    assert "Your request has been recorded" in page
    waiting = re.search(r'<table id="my-requests">(.*?)</table>', page, re.S)
    assert waiting
    assert "Hot wallet signer" in waiting.group(1)
    assert "0 of 2" in waiting.group(1)

    r = post_form(staff, "/access", f"/access/requests/{req.id}/cancel", {}, follow_redirects=False)
    assert r.status_code == 303
    with rt.session() as s:
        assert s.get(AccessRequest, req.id).status == "cancelled"  # type: ignore[union-attr]
    assert "No request of yours is waiting." in staff.get("/access").text

    # A role: its entitlements together, named as the role.
    with rt.work(SYSTEM) as ctx:
        role = catalogue.create_role(ctx, AccessRoleIn(key="ops", name="Operations desk",
                                                       entitlement_ids=[w.reader, w.door])).id
    page = staff.get("/access").text
    assert f'<option value="role:{role}">Operations desk (ops)</option>' in page
    r = post_form(staff, "/access", "/access/requests", {
        "target": f"role:{role}", "subject_id": str(w.staff_person),
        "justification": "Joining the operations desk rota."}, follow_redirects=False)
    assert r.status_code == 303, r.text
    waiting = re.search(r'<table id="my-requests">(.*?)</table>', staff.get("/access").text, re.S)
    assert waiting
    assert "role Operations desk" in waiting.group(1)
    assert "ICT asset A-1, zone Z-1" in waiting.group(1)


def test_the_form_shows_each_refusal_next_to_its_field(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    staff = _as(client, rt, clock, w.staff)
    r = post_form(staff, "/access", "/access/requests",
                  {"target": "", "subject_id": str(w.staff_person), "justification": "pls", "duration_days": "x"})
    assert r.status_code == 400
    assert "choose an entitlement or a role" in _errors(r.text, "target")
    assert "at least 10 characters" in _errors(r.text, "justification")
    assert "whole number" in _errors(r.text, "duration_days")
    assert 'aria-invalid="true" aria-describedby="justification-errors"' in r.text
    assert ">pls</textarea>" in r.text  # what was typed comes back

    # The service's refusal: longer than the entitlement allows.
    r = post_form(staff, "/access", "/access/requests", {
        "target": f"entitlement:{w.signer}", "subject_id": str(w.staff_person),
        "justification": "Signing the cold-to-hot top-up.", "duration_days": "45"})
    assert r.status_code == 400
    shown = r.text
    assert "30" in shown
    assert "45" in shown
    assert re.search(r'id="(target|duration_days)-errors">.*?30', shown, re.S)
    assert _count(rt, AccessRequest) == 0


def test_asking_for_someone_else_with_the_person_picker(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    owner = _as(client, rt, clock, w.owner)  # approvers read the register, so they can pick someone
    page = owner.get("/access").text
    assert re.search(rf'<option value="{w.other_person}">Nora Nomfa \(nora@firm.eu\)</option>', page)
    # Privileged access for a person without MFA at the identity provider: refused, next to the person.
    r = post_form(owner, "/access", "/access/requests", {
        "target": f"entitlement:{w.signer}", "subject_id": str(w.other_person),
        "justification": "Nora covers the signing rota next week."})
    assert r.status_code == 400
    assert "MFA" in _errors(r.text, "subject_id")
    assert _count(rt, AccessRequest) == 0
    # The zone's owner is its only approver and may not approve a request they made, so the
    # security officer asks instead; the owner then decides.
    officer = _as(client, rt, clock, w.officer)
    r = post_form(officer, "/access", "/access/requests", {
        "target": f"entitlement:{w.door}", "subject_id": str(w.other_person),
        "justification": "Nora racks the new HSM on Monday.", "duration_days": "2"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    with rt.session() as s:
        req = s.scalars(select(AccessRequest)).one()
        assert (req.requester_id, req.subject_id) == (w.officer_person, w.other_person)


# --- revocation, findings, the catalogue ------------------------------------------------------


def test_an_access_admin_revokes_with_a_reason(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    gid = _granted(rt, w)
    admin = _as(client, rt, clock, w.admin)
    listing = admin.get(f"/access/grants?person_id={w.staff_person}")
    assert f'action="/access/grants/{gid}/revoke"' in listing.text
    r = post_form(admin, "/access/grants", f"/access/grants/{gid}/revoke", {"reason": ""})
    assert r.status_code == 400
    assert "must not be empty" in _errors(r.text, "reason")
    with rt.session() as s:
        assert s.get(Grant, gid).status == "active"  # type: ignore[union-attr]
    r = post_form(admin, f"/access/grants?person_id={w.staff_person}", f"/access/grants/{gid}/revoke",
                  {"reason": "moved to another desk", "back": f"/access/grants?person_id={w.staff_person}"},
                  follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/access/grants?person_id={w.staff_person}&done=revoked"
    with rt.session() as s:
        g = s.get(Grant, gid)
        assert g is not None
        assert (g.status, g.end_reason) == ("revoked", "moved to another desk")
    # Revoked grants leave the default (active) list and appear under "revoked".
    assert f'id="grant-{gid}"' not in admin.get("/access/grants").text
    ended = admin.get("/access/grants?status=revoked").text
    assert re.search(rf'id="grant-{gid}">.*?moved to another desk', ended, re.S)
    # The revoked grant is no longer on the holder's page.
    staff = _as(client, rt, clock, w.staff)
    assert "Hot wallet read-only" not in re.search(r'<table id="my-grants">(.*?)</table>',
                                                   staff.get("/access").text, re.S).group(1)  # type: ignore[union-attr]


def test_grants_filter_by_asset_zone_and_page(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    _granted(rt, w)
    _approve(rt, w.owner, _request(rt, w.staff, w.staff_person, w.door, days=1))
    admin = _as(client, rt, clock, w.admin)
    by_zone = admin.get(f"/access/grants?zone_id={w.zone}").text
    assert "Server room entry" in by_zone
    assert "Hot wallet read-only" not in by_zone
    by_asset = admin.get(f"/access/grants?asset_id={w.asset}").text
    assert "Hot wallet read-only" in by_asset
    assert "Server room entry" not in by_asset
    first = admin.get("/access/grants?limit=1").text
    assert "1 shown of 2" in first
    nxt = re.search(r'<a class="button secondary" href="([^"]+)" rel="next">', first)
    assert nxt
    second = admin.get(nxt.group(1).replace("&amp;", "&")).text
    assert "1 shown of 2" in second
    assert ("Server room entry" in first) != ("Server room entry" in second)


def test_an_access_admin_resolves_a_finding(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    with rt.work(SYSTEM) as ctx:
        fid = findings.open_finding(ctx, key="test:orphan", kind="orphan_account", severity="medium",
                                    detail="LDAP account jdoe belongs to nobody", owner_id=w.officer_person).id
    officer = _as(client, rt, clock, w.officer)
    page = officer.get("/access/findings").text
    row = re.search(rf'<tr id="finding-{fid}">(.*?)</tr>', page, re.S)
    assert row
    for text in ("orphan account", "medium", "LDAP account jdoe belongs to nobody", "sam@firm.eu", "2026-12-08"):
        assert text in row.group(1), text
    r = post_form(officer, "/access/findings", f"/access/findings/{fid}/resolve", {"resolution": " "})
    assert r.status_code == 400
    assert "must not be empty" in _errors(r.text, "resolution")
    r = post_form(officer, "/access/findings", f"/access/findings/{fid}/resolve",
                  {"resolution": "account disabled in LDAP", "back": "/access/findings"}, follow_redirects=False)
    assert r.status_code == 303
    assert f'id="finding-{fid}"' not in officer.get("/access/findings").text
    resolved = officer.get("/access/findings?status=resolved").text
    assert re.search(rf'id="finding-{fid}">.*?account disabled in LDAP', resolved, re.S)


def test_the_catalogue_through_its_forms(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    officer = _as(client, rt, clock, w.officer)
    before = _count(rt, Entitlement)
    # Neither an asset nor a zone, and a privileged entitlement with one approver: both refused, each by its field.
    r = post_form(officer, "/access/entitlements/new", "/access/entitlements",
                  {"key": "db.admin", "name": "Ledger DB admin", "privileged": "1", "approvers": ["owner"],
                   "min_approvals": "1"})
    assert r.status_code == 400
    assert "exactly one ICT asset" in _errors(r.text, "asset_id")
    r = post_form(officer, "/access/entitlements/new", "/access/entitlements",
                  {"key": "db.admin", "name": "Ledger DB admin", "privileged": "1", "approvers": ["owner"],
                   "min_approvals": "1", "asset_id": str(w.asset)})
    assert r.status_code == 400
    assert "at least 2" in _errors(r.text, "min_approvals")
    assert _count(rt, Entitlement) == before
    r = post_form(officer, "/access/entitlements/new", "/access/entitlements",
                  {"key": "db.admin", "name": "Ledger DB admin", "privileged": "1",
                   "approvers": ["owner", "security_officer"], "asset_id": str(w.asset),
                   "required_training": "PRIV-101, WALLET-101", "max_duration_days": "14", "active": "1"},
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    with rt.session() as s:
        e = s.scalars(select(Entitlement).where(Entitlement.key == "db.admin")).one()
        assert (e.privileged, e.approvers, e.required_training, e.max_duration_days, e.asset_id) == (
            True, ["owner", "security_officer"], ["PRIV-101", "WALLET-101"], 14, w.asset)
    # A duplicate key is a conflict shown next to the key.
    r = post_form(officer, "/access/entitlements/new", "/access/entitlements",
                  {"key": "db.admin", "name": "Again", "approvers": ["owner"], "zone_id": str(w.zone)})
    assert r.status_code == 409
    assert "already used" in _errors(r.text, "key")

    edit = officer.get(f"/access/entitlements/{e.id}/edit").text
    assert 'value="security_officer" checked' in edit
    assert 'value="PRIV-101, WALLET-101"' in edit

    r = post_form(officer, "/access/roles/new", "/access/roles",
                  {"key": "ops", "name": "Operations", "departments": "Operations",
                   "entitlement_ids": [str(w.reader), str(w.door)]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    listing = officer.get("/access/catalogue").text
    roles = re.search(r'<table id="roles">(.*?)</table>', listing, re.S)
    assert roles
    assert "Hot wallet read-only, Server room entry" in roles.group(1)


def test_every_access_form_needs_its_csrf_token(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    gid = _granted(rt, w)
    rid = _request(rt, w.staff, w.staff_person, w.signer)
    admin = _as(client, rt, clock, w.admin)
    staff = _as(client, rt, clock, w.staff)
    requests_before, approvals_before = _count(rt, AccessRequest), _count(rt, Approval)
    staff_token = csrf_of(staff.get("/access").text)
    refused = [
        staff.post("/access/requests", data={"target": f"entitlement:{w.reader}", "subject_id": w.staff_person,
                                             "justification": "Needed for the close."}),
        staff.post(f"/access/requests/{rid}/cancel", data={"csrf_token": "forged"}),
        admin.post(f"/access/requests/{rid}/decide", data={"decision": "approve"}),
        # A token from another session's page is no token for this one.
        admin.post(f"/access/grants/{gid}/revoke", data={"reason": "x", "csrf_token": staff_token}),
        admin.post("/access/entitlements", data={"key": "k", "name": "n", "zone_id": w.zone, "approvers": "owner"}),
    ]
    for r in refused:
        assert r.status_code == 403
        assert "Form expired or forged" in r.text
    assert (_count(rt, AccessRequest), _count(rt, Approval)) == (requests_before, approvals_before)
    with rt.session() as s:
        assert s.get(Grant, gid).status == "active"  # type: ignore[union-attr]
        assert s.get(AccessRequest, rid).status == "pending"  # type: ignore[union-attr]


def test_no_access_page_carries_inline_script_or_style(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    _granted(rt, w)
    _request(rt, w.staff, w.staff_person, w.signer)
    with rt.work(SYSTEM) as ctx:
        findings.open_finding(ctx, key="test:2", kind="sod_conflict", severity="high", detail="both sides",
                              person_id=w.staff_person)
    checked: dict[str, str] = {}
    officer = _as(client, rt, clock, w.officer)
    for path in ("/access", "/access/approvals", "/access/grants", "/access/findings", "/access/catalogue",
                 "/access/entitlements/new", f"/access/entitlements/{w.signer}/edit", "/access/roles/new",
                 "/access/grants?status=any&limit=1"):
        r = officer.get(path)
        assert r.status_code == 200, path
        checked[path] = r.text
    checked["request errors"] = post_form(officer, "/access", "/access/requests", {"justification": "x"}).text
    checked["entitlement errors"] = post_form(officer, "/access/entitlements/new", "/access/entitlements", {}).text
    staff = _as(client, rt, clock, w.staff)
    checked["staff /access"] = staff.get("/access").text
    checked["staff forbidden"] = staff.get("/access/grants").text
    for where, html in checked.items():
        assert "<html" in html, where
        assert inline_problems(html) == [], where


def test_an_approval_refused_by_the_checks_says_why(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    w = world(rt)
    rid = _request(rt, w.staff, w.staff_person, w.signer)
    # Between the request and the approval, the staff member's MFA at the identity provider was reset.
    with rt.work(SYSTEM) as ctx:
        inventory.update_person(ctx, w.staff_person, PersonIn(
            external_id="E-1", email="stan@firm.eu", full_name="Stan Staff", status="active",
            department="Operations", mfa_enrolled=False))
    officer = _as(client, rt, clock, w.officer)
    _approve(rt, w.owner, rid)
    r = post_form(officer, "/access/approvals", f"/access/requests/{rid}/decide", {"decision": "approve"})
    assert r.status_code == 400
    alert = re.search(r'<div class="alert" role="alert">(.*?)</div>', r.text, re.S)
    assert alert
    assert f"request {rid}" in alert.group(1)
    assert "MFA" in alert.group(1)
    with rt.session() as s:
        assert s.get(AccessRequest, rid).status == "pending"  # type: ignore[union-attr]
        assert s.scalar(select(func.count(Approval.id)).where(Approval.request_id == rid)) == 1
    assert _count(rt, Grant) == 0
