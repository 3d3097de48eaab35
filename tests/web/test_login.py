from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pyotp
from fastapi.testclient import TestClient

from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.factories import PASSWORD, make_user
from tests.web.helpers import csrf_of, login, next_code, password_step, post_form


def _secret_from(html: str) -> str:
    uri = re.search(r'id="otpauth-uri">([^<]+)<', html)
    assert uri, "the enrolment page shows no otpauth URI"
    return parse_qs(urlsplit(uri.group(1).replace("&amp;", "&")).query)["secret"][0]


def test_admin_enrols_totp_at_first_login(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    make_user(rt, Role.ADMIN, enrol_mfa=False)
    r = password_step(client, "admin@example.eu")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login/enrol")
    pending_cookie = client.cookies["pc_session"]
    # Half-way in, nothing but the enrolment is reachable.
    assert client.get("/users", follow_redirects=False).headers["location"] == "/login/enrol"

    page = client.get("/login/enrol")
    assert page.status_code == 200
    assert 'src="data:image/svg+xml;base64,' in page.text
    totp = pyotp.TOTP(_secret_from(page.text))

    wrong = client.post("/login/enrol", data={"code": "000000", "csrf_token": csrf_of(page.text)})
    assert wrong.status_code == 400
    assert "does not match" in wrong.text
    # The same secret is shown again after a wrong code: the app has already scanned it.
    assert _secret_from(wrong.text) == totp.secret

    r = client.post(
        "/login/enrol",
        data={"code": totp.at(clock.now()), "csrf_token": csrf_of(wrong.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert client.cookies["pc_session"] != pending_cookie
    assert client.get("/users").status_code == 200

    # The half-way session ended when the full one began.
    stale = TestClient(client.app, base_url="https://testserver")
    stale.cookies.set("pc_session", pending_cookie)
    assert stale.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_login_with_totp_refuses_wrong_and_replayed_codes(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    officer = make_user(rt, Role.SECURITY_OFFICER)
    assert officer.totp is not None
    r = password_step(client, officer.user.email)
    assert r.headers["location"].startswith("/login/totp")

    page = client.get("/login/totp")
    r = client.post("/login/totp", data={"code": "123456", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 401
    assert "wrong or was already used" in r.text
    assert client.get("/audit", follow_redirects=False).headers["location"] == "/login/totp"

    code = next_code(officer.totp, clock)
    r = client.post("/login/totp", data={"code": code, "csrf_token": csrf_of(r.text)}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/audit").status_code == 200

    # Same code, second browser, same 30 seconds: refused.
    other = TestClient(client.app, base_url="https://testserver")
    password_step(other, officer.user.email)
    page = other.get("/login/totp")
    r = other.post("/login/totp", data={"code": code, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 401


def test_wrong_password_is_refused_without_saying_which_part(rt: Runtime, client: TestClient) -> None:
    make_user(rt, Role.STAFF, enrol_mfa=False)
    r = password_step(client, "staff@example.eu", "not the password at all")
    assert r.status_code == 401
    assert "email or password is wrong" in r.text
    assert "pc_session" not in client.cookies
    r = password_step(client, "nobody@example.eu")
    assert r.status_code == 401
    assert "email or password is wrong" in r.text


def test_five_failures_lock_the_account(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    make_user(rt, Role.STAFF, enrol_mfa=False)
    for _ in range(5):
        assert password_step(client, "staff@example.eu", "wrong wrong wrong").status_code == 401
    r = password_step(client, "staff@example.eu", PASSWORD)
    assert r.status_code == 429
    assert "Too many failed logins" in r.text
    assert "pc_session" not in client.cookies
    clock.advance(timedelta(minutes=rt.settings.login_lock_minutes + 1))
    assert password_step(client, "staff@example.eu", PASSWORD).status_code == 303


def test_staff_without_mfa_goes_straight_in_and_logout_ends_the_session(
    rt: Runtime, client: TestClient, clock: FrozenClock
) -> None:
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    login(client, staff, clock)
    cookie = client.cookies["pc_session"]
    r = post_form(client, "/account", "/logout", {}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"
    replay = TestClient(client.app, base_url="https://testserver")
    replay.cookies.set("pc_session", cookie)
    assert replay.get("/account", follow_redirects=False).status_code == 303


def test_unauthenticated_pages_redirect_to_login_with_a_local_next(rt: Runtime, client: TestClient) -> None:
    r = client.get("/assets?criticality=critical", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/assets%3Fcriticality%3Dcritical"
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        page = client.get("/login", params={"next": evil})
        assert 'name="next" value="/"' in page.text
        r = client.post(
            "/login",
            data={"email": staff.user.email, "password": PASSWORD, "next": evil, "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/"
        client.cookies.clear()
    page = client.get("/login", params={"next": "/account"})
    r = client.post(
        "/login",
        data={"email": staff.user.email, "password": PASSWORD, "next": "/account", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/account"
