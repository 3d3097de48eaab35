from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from portcullis.core.clock import FrozenClock
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.factories import make_user


def test_token_authenticates_and_expires(rt: Runtime, client: TestClient, clock: FrozenClock) -> None:
    admin = make_user(rt, Role.ADMIN)
    r = client.get("/api/v1/me", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "admin@example.eu"
    clock.advance(timedelta(days=31))
    r = client.get("/api/v1/me", headers=admin.headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert "expired" in r.json()["detail"]


def test_missing_and_forged_tokens_are_refused(rt: Runtime, client: TestClient) -> None:
    admin = make_user(rt, Role.ADMIN)
    assert client.get("/api/v1/me").status_code == 401
    forged = admin.token[:-4] + "AAAA"
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
