from __future__ import annotations

from http.cookies import SimpleCookie

from fastapi.testclient import TestClient

from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.factories import PASSWORD, make_user
from tests.web.helpers import csrf_of, login, post_form


def _set_cookies(headers: list[str]) -> dict[str, SimpleCookie]:
    out: dict[str, SimpleCookie] = {}
    for h in headers:
        c: SimpleCookie = SimpleCookie()
        c.load(h)
        for name in c:
            out[name] = c
    return out


def test_login_post_without_or_with_a_wrong_csrf_token_is_refused(rt: Runtime, client: TestClient) -> None:
    make_user(rt, Role.STAFF, enrol_mfa=False)
    client.get("/login")  # the browser now holds its CSRF key
    r = client.post("/login", data={"email": "staff@example.eu", "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    assert "security token" in r.text
    r = client.post(
        "/login",
        data={"email": "staff@example.eu", "password": PASSWORD, "csrf_token": "0" * 64},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert "pc_session" not in client.cookies


def test_a_token_from_another_browser_is_refused(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    login(client, staff, clock)
    attacker = TestClient(client.app, base_url="https://testserver")
    foreign = csrf_of(attacker.get("/login").text)
    new = "a brand new passphrase"
    form = {"current_password": PASSWORD, "new_password": new, "repeat_password": new}
    r = client.post("/account/password", data={**form, "csrf_token": foreign})
    assert r.status_code == 403
    r = client.post("/account/password", data=form)
    assert r.status_code == 403
    # The password is unchanged: the old one still logs in.
    other = TestClient(client.app, base_url="https://testserver")
    r = post_form(other, "/login", "/login", {"email": staff.user.email, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303


def test_session_and_csrf_cookies_are_locked_down(rt: Runtime, client: TestClient) -> None:
    make_user(rt, Role.STAFF, enrol_mfa=False)
    page = client.get("/login")
    csrf_cookie = _set_cookies(page.headers.get_list("set-cookie"))["pc_csrf"]["pc_csrf"]
    r = client.post(
        "/login",
        data={"email": "staff@example.eu", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    session = _set_cookies(r.headers.get_list("set-cookie"))["pc_session"]["pc_session"]
    for morsel in (csrf_cookie, session):
        assert morsel["httponly"] is True
        assert morsel["secure"] is True
        assert morsel["samesite"] == "strict"
        assert morsel["path"] == "/"


def test_cookie_is_not_secure_when_settings_say_so(rt: Runtime) -> None:
    from portcullis.app import create_app

    rt.settings.cookie_secure = False
    with TestClient(create_app(rt), base_url="http://testserver") as c:
        header = c.get("/login").headers["set-cookie"]
    assert "secure" not in header.lower()
    assert "samesite=strict" in header.lower()


def test_pages_carry_the_security_headers(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    admin = make_user(rt, Role.ADMIN)
    login(client, admin, clock)
    for path in ("/login", "/", "/account", "/users", "/audit"):
        h = client.get(path).headers
        csp = h["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "style-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert h["x-frame-options"] == "DENY"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"
        assert h["content-type"].startswith("text/html")


def test_staff_cannot_reach_users_or_audit(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    staff = make_user(rt, Role.STAFF, enrol_mfa=False)
    login(client, staff, clock)
    for path in ("/users", "/audit"):
        r = client.get(path)
        assert r.status_code == 403
        assert "may not" in r.text
    home = client.get("/").text
    assert 'href="/users"' not in home
    assert 'href="/audit"' not in home
    r = post_form(
        client,
        "/account",
        "/users",
        {"email": "x@example.eu", "full_name": "X", "role": "admin", "password": "long enough password"},
    )
    assert r.status_code == 403


def test_auditor_sees_users_but_cannot_change_them(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    make_user(rt, Role.STAFF, enrol_mfa=False)
    auditor = make_user(rt, Role.AUDITOR, enrol_mfa=False)
    login(client, auditor, clock)
    page = client.get("/users")
    assert page.status_code == 200
    assert "staff@example.eu" in page.text
    assert "New user" not in page.text
    assert "Reset MFA" not in page.text
    r = client.post(
        "/users",
        data={
            "email": "x@example.eu",
            "full_name": "X",
            "role": "admin",
            "password": "long enough password",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.status_code == 403
    assert "x@example.eu" not in client.get("/users").text
