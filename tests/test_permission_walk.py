"""Walks every API route for every platform role and checks allow or deny against
the one permission table (core.permissions.PERMISSIONS)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from portcullis.core.permissions import PERMISSIONS, Permission, Role
from portcullis.core.runtime import Runtime
from tests.factories import make_user

PUBLIC = {"/api/v1/health"}


def _permission_of(route: APIRoute) -> tuple[Permission, ...] | None:
    found = [
        d.call.permissions
        for d in route.dependant.dependencies
        if d.call is not None and hasattr(d.call, "permissions")
    ]
    assert len(found) <= 1, f"{route.path} declares several permission gates: {found}"
    return tuple(found[0]) if found else None


class _Op:
    def __init__(self, path: str, route: APIRoute) -> None:
        self.path, self.route, self.methods = path, route, set(route.methods or ())


def _walk(routes: list[Any], prefix: str) -> list[_Op]:
    # FastAPI keeps included routers nested; flatten them with their prefixes.
    ops: list[_Op] = []
    for r in routes:
        if isinstance(r, APIRoute):
            ops.append(_Op(prefix + r.path, r))
        elif hasattr(r, "original_router"):
            ops.extend(_walk(r.original_router.routes, prefix + r.include_context.prefix))
    return ops


def _api_routes(client: TestClient) -> list[_Op]:
    return [op for op in _walk(client.app.routes, "") if op.path.startswith("/api/v1")]  # type: ignore[attr-defined]


def test_every_api_route_declares_a_permission(client: TestClient) -> None:
    routes = _api_routes(client)
    assert len(routes) > 5
    undeclared = [r.path for r in routes if _permission_of(r.route) is None and r.path not in PUBLIC]
    assert undeclared == []


def test_every_route_for_every_role(rt: Runtime, client: TestClient) -> None:
    makers = {role: make_user(rt, role) for role in Role}
    checked = 0
    for route in _api_routes(client):
        permission = _permission_of(route.route)
        if permission is None:
            continue
        path = re.sub(r"\{[^}]+\}", "999999", route.path)  # ids that exist nowhere: nothing is changed
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            for role, made in makers.items():
                r = client.request(method, path, headers=made.headers, json={})
                expected_allowed = any(p in PERMISSIONS[role] for p in permission)
                if expected_allowed:
                    assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (method, path, role, r.status_code, r.text)
                    assert r.headers["content-type"] == "application/problem+json"
                checked += 1
    assert checked >= len(Role) * 5


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SECURITY_OFFICER])
def test_token_scope_narrows_the_role(rt: Runtime, client: TestClient, role: Role) -> None:
    from portcullis.accounts import service

    made = make_user(rt, role)
    with rt.work(made.principal) as ctx:
        _, narrow = service.create_api_token(ctx, "read only", [Permission.INVENTORY_READ.value], 7)
    headers = {"Authorization": f"Bearer {narrow}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    assert client.get("/api/v1/users", headers=made.headers).status_code == 200


def test_mfa_role_without_mfa_cannot_change_anything(rt: Runtime, client: TestClient) -> None:
    made = make_user(rt, Role.ADMIN, enrol_mfa=False)
    assert client.get("/api/v1/me", headers=made.headers).status_code == 200  # own account: allowed
    r = client.post(
        "/api/v1/users",
        headers=made.headers,
        json={"email": "x@example.eu", "full_name": "X", "role": "staff", "password": "a long enough password"},
    )
    assert r.status_code == 403
    assert "MFA" in r.json()["detail"]
