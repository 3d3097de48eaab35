from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from portcullis.accounts.models import ApiToken, User
from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.factories import PASSWORD, make_user
from tests.web.helpers import csrf_of, login, password_step, post_form


def test_api_token_is_shown_once_and_can_be_revoked(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.AUDITOR, enrol_mfa=False), clock)
    r = post_form(client, "/account", "/account/tokens", {"name": "evidence export", "days": "30",
                                                          "scopes": ["inventory.read", "audit.read"]})
    assert r.status_code == 200
    token = re.search(r'<code id="new-token">(pc_[^<]+)</code>', r.text)
    assert token
    me = client.get("/api/v1/ledger/records", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert me.status_code == 200
    assert me.json()["total"] > 0
    again = client.get("/account").text
    assert token.group(1) not in again
    assert "evidence export" in again

    bad = post_form(client, "/account", "/account/tokens", {"name": "", "days": "30", "scopes": ["users.manage"]})
    assert bad.status_code == 400
    assert re.search(r'id="scopes-errors">\s*<li>your role auditor does not have', bad.text)
    assert re.search(r'id="name-errors">\s*<li>is required', bad.text)

    with rt.session() as s:
        tok_id = s.scalars(select(ApiToken.id).where(ApiToken.name == "evidence export")).one()
    post_form(client, "/account", f"/account/tokens/{tok_id}/revoke", {})
    me = client.get("/api/v1/ledger/records", headers={"Authorization": f"Bearer {token.group(1)}"})
    assert me.status_code == 401


def test_change_password(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    login(client, staff, clock)
    new = "another long passphrase"
    r = post_form(client, "/account", "/account/password",
                  {"current_password": "wrong one entirely", "new_password": new, "repeat_password": new})
    assert r.status_code == 400
    assert 'id="current_password-errors"' in r.text
    r = post_form(client, "/account", "/account/password",
                  {"current_password": PASSWORD, "new_password": new, "repeat_password": new + "x"})
    assert 'id="repeat_password-errors"' in r.text
    r = post_form(client, "/account", "/account/password",
                  {"current_password": PASSWORD, "new_password": new, "repeat_password": new})
    assert "Your password has been changed" in r.text
    other = TestClient(client.app, base_url="https://testserver")
    assert password_step(other, staff.user.email, PASSWORD).status_code == 401
    assert password_step(other, staff.user.email, new).status_code == 303


def test_admin_manages_users(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    login(client, make_user(rt, Role.ADMIN), clock)
    r = post_form(client, "/users", "/users", {"email": "bad", "full_name": "", "role": "staff", "password": "short"})
    assert r.status_code == 400
    for field in ("email", "full_name", "password"):
        assert f'id="{field}-errors"' in r.text
    r = post_form(client, "/users", "/users",
                  {"email": "new@example.eu", "full_name": "New Person", "role": "staff", "password": PASSWORD})
    assert "The user has been created" in r.text
    r = post_form(client, "/users", "/users",
                  {"email": "new@example.eu", "full_name": "Again", "role": "staff", "password": PASSWORD})
    assert r.status_code == 409
    assert "already exists" in r.text
    with rt.session() as s:
        uid = s.scalars(select(User.id).where(User.email == "new@example.eu")).one()
    post_form(client, "/users", f"/users/{uid}/role", {"role": "reviewer"})
    post_form(client, "/users", f"/users/{uid}/active", {"active": "false"})
    with rt.session() as s:
        u = s.get(User, uid)
        assert u is not None
        assert (u.role, u.active) == ("reviewer", False)
    other = TestClient(client.app, base_url="https://testserver")
    assert password_step(other, "new@example.eu").status_code == 401


def test_reset_mfa_sends_the_user_back_to_enrolment(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    officer = make_user(rt, Role.SECURITY_OFFICER)
    login(client, make_user(rt, Role.ADMIN), clock)
    r = post_form(client, "/users", f"/users/{officer.user.id}/reset-mfa", {})
    assert "must enrol again" in r.text
    other = TestClient(client.app, base_url="https://testserver")
    r = password_step(other, officer.user.email)
    assert r.headers["location"].startswith("/login/enrol")
    assert csrf_of(other.get("/login/enrol").text)
