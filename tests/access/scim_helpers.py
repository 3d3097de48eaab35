"""Shared set-up for the SCIM tests: the app with the SCIM router, and an IdP token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from portcullis.accounts import service
from portcullis.core.permissions import Role
from portcullis.core.runtime import Runtime
from tests.factories import make_user

BASE = "/scim/v2"
SCIM_JSON = "application/scim+json"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


@contextmanager
def scim_client(rt: Runtime) -> Iterator[TestClient]:
    from portcullis.access.scim_api import router
    from portcullis.app import create_app

    app = create_app(rt)
    # The lead mounts the router in app.py; until then the tests mount it themselves.
    if not any(getattr(r, "path", "").startswith(BASE) for r in app.routes):
        app.include_router(router)
    with TestClient(app, base_url="https://testserver") as c:
        yield c


def idp_token(rt: Runtime, scopes: list[str] | None = None, role: Role = Role.ADMIN, email: str | None = None) -> str:
    """A token like the one an admin makes for the IdP: scoped to identity.provision only."""
    made = make_user(rt, role, email=email)
    with rt.work(made.principal) as ctx:
        _, token = service.create_api_token(ctx, "idp", scopes or ["identity.provision"], 30)
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}


def new_user(email: str, name: str = "Ada Lovelace", **extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "schemas": [USER_URN],
        "userName": email,
        "name": {"formatted": name},
        "emails": [{"value": email, "primary": True, "type": "work"}],
        "active": True,
    }
    body.update(extra)
    return body


def patch(*ops: dict[str, object]) -> dict[str, object]:
    return {"schemas": [PATCH_URN], "Operations": list(ops)}
