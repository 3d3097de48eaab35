"""Driving the pages as a browser would: forms with their CSRF tokens, login with TOTP."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from html.parser import HTMLParser

import httpx
import pyotp
from fastapi.testclient import TestClient

from portcullis.core.clock import FrozenClock
from tests.factories import PASSWORD, Made

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def post_form(client: TestClient, page: str, action: str, data: Mapping[str, object], **kw: object) -> httpx.Response:
    """GET the page that holds the form, then POST with its token, as a browser does."""
    token = csrf_of(client.get(page).text)
    response: httpx.Response = client.post(action, data={**data, "csrf_token": token}, **kw)
    return response


def password_step(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return post_form(client, "/login", "/login", {"email": email, "password": password}, follow_redirects=False)


def next_code(totp: pyotp.TOTP, clock: FrozenClock) -> str:
    # A code is good once: move to the next 30-second step before making another.
    clock.advance(timedelta(seconds=30))
    return str(totp.at(clock.now()))


def login(client: TestClient, made: Made, clock: FrozenClock) -> None:
    r = password_step(client, made.user.email)
    assert r.status_code == 303, r.text
    if made.totp is not None:
        assert r.headers["location"].startswith("/login/totp")
        code = next_code(made.totp, clock)
        r = post_form(client, "/login/totp", "/login/totp", {"code": code}, follow_redirects=False)
        assert r.status_code == 303, r.text
    assert client.get("/", follow_redirects=False).status_code == 200


class InlineFinder(HTMLParser):
    """Collects what the CSP would block: inline scripts, style elements, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k.lower() for k, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        if "style" in names:
            self.problems.append(f"style attribute on <{tag}>")
        if any(n.startswith("on") for n in names):
            self.problems.append(f"event handler attribute on <{tag}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


def inline_problems(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.problems
