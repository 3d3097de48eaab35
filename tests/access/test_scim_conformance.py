"""The SCIM endpoint passes scim2-tester's conformance checks, every one, on both databases.

scim2-tester drives the server through a scim2-client synchronous client; the
one here sends its requests through the FastAPI TestClient (an httpx client
bound to the ASGI app), so the whole application runs, token check included.
No check is excluded: any check that errs fails the test.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from scim2_client import BaseSyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from portcullis.core.runtime import Runtime
from tests.access.scim_helpers import BASE, auth, idp_token, scim_client

FAILED = {Status.ERROR, Status.CRITICAL}


class TestClientSCIM(BaseSyncSCIMClient):
    """scim2-client over Starlette's TestClient: requests go to the app in-process."""

    __test__ = False

    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        super().__init__()
        self.http = client
        self.headers = headers

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if not url.startswith("http"):
            url = BASE + url
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)


def _run(rt: Runtime) -> list[CheckResult]:
    token = idp_token(rt)
    with scim_client(rt) as c:
        client = TestClientSCIM(c, auth(token))
        return check_server(client)


def test_scim2_tester_passes_every_check(rt: Runtime) -> None:
    results = _run(rt)
    failed = [f"{r.resource_type or ''} {r.title}: {r.reason}" for r in results if r.status in FAILED]
    assert failed == []
    ran = [r for r in results if r.status not in (Status.SKIPPED,)]
    # Discovery, CRUD and PATCH checks all ran (not skipped for want of a description).
    titles = {r.title for r in ran}
    for expected in (
        "object_creation",
        "object_query",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    ):
        assert expected in titles, f"{expected} did not run"
    assert len(ran) > 30


def test_the_conformance_run_can_fail(rt: Runtime) -> None:
    """A server without a valid token answers nothing well: the run reports errors, so the test above can fail."""
    idp_token(rt)
    with scim_client(rt) as c:
        results = check_server(TestClientSCIM(c, {"Authorization": "Bearer pc_bad.token"}))
    assert any(r.status in FAILED for r in results)
