"""The SCIM endpoint passes scim2-tester's conformance checks, every one, on both databases.

scim2-tester drives the server through a scim2-client synchronous client; the
one here sends its requests through the FastAPI TestClient (an httpx client
bound to the ASGI app), so the whole application runs, token check included.
No check is excluded: any check that errs fails the test.

The run is in two parts, Users (with discovery) and Groups. For Groups, the
tester makes the members it needs by creating users with `active` drawn at
random; an inactive user is a leaver, and a leaver may hold no access, so the
server rightly refuses them as members (400 with the reason; tested in
test_scim_groups). The client used for the Groups part therefore creates its
member users active, and changes nothing else; the Users part runs untouched.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from scim2_client import BaseSyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from portcullis.core.runtime import Runtime
from tests.access.scim_helpers import BASE, auth, idp_token, scim_client

FAILED = {Status.ERROR, Status.CRITICAL}
CRUD_AND_PATCH = (
    "object_creation",
    "object_query",
    "object_replacement",
    "object_deletion",
    "check_add_attribute",
    "check_remove_attribute",
    "check_replace_attribute",
)


class TestClientSCIM(BaseSyncSCIMClient):
    """scim2-client over Starlette's TestClient: requests go to the app in-process."""

    __test__ = False

    def __init__(self, client: TestClient, headers: dict[str, str], *, active_members: bool = False) -> None:
        super().__init__()
        self.http = client
        self.headers = headers
        self.active_members = active_members

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if not url.startswith("http"):
            url = BASE + url
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if self.active_members and method.upper() == "POST" and url.endswith("/Users"):
            body = kwargs.pop("json", None)
            if body is None and "content" in kwargs:
                body = json.loads(kwargs.pop("content"))
            kwargs["json"] = {**body, "active": True}
        return self.http.request(method, url, headers=headers, **kwargs)


def _run(rt: Runtime, resource_type: str) -> list[CheckResult]:
    token = idp_token(rt)
    with scim_client(rt) as c:
        client = TestClientSCIM(c, auth(token), active_members=resource_type == "Group")
        return check_server(client, resource_types=[resource_type])


def _failed(results: list[CheckResult]) -> list[str]:
    return [f"{r.resource_type or ''} {r.title}: {r.reason}" for r in results if r.status in FAILED]


def _ran(results: list[CheckResult], resource_type: str) -> set[str]:
    return {r.title or "" for r in results if r.status is not Status.SKIPPED and r.resource_type == resource_type}


def test_scim2_tester_passes_every_check_for_users(rt: Runtime) -> None:
    results = _run(rt, "User")
    assert _failed(results) == []
    titles = _ran(results, "User")
    for expected in CRUD_AND_PATCH:
        assert expected in titles, f"{expected} did not run"
    assert len([r for r in results if r.status is not Status.SKIPPED]) > 30


def test_scim2_tester_passes_every_check_for_groups(rt: Runtime) -> None:
    results = _run(rt, "Group")
    assert _failed(results) == []
    titles = _ran(results, "Group")
    for expected in CRUD_AND_PATCH:
        assert expected in titles, f"{expected} did not run"
    # members were added, removed and replaced, not skipped for want of a user to add
    reasons = " ".join(r.reason or "" for r in results if r.resource_type == "Group")
    for attempt in ("added attribute 'members'", "removed attribute 'members'", "replaced attribute 'members'"):
        assert attempt in reasons.replace("Successfully ", ""), f"{attempt} did not run"


def test_the_conformance_run_can_fail(rt: Runtime) -> None:
    """A server without a valid token answers nothing well: the run reports errors, so the tests above can fail."""
    idp_token(rt)
    with scim_client(rt) as c:
        results = check_server(TestClientSCIM(c, {"Authorization": "Bearer pc_bad.token"}))
    assert any(r.status in FAILED for r in results)
