"""Authentication for the API and the permission gate every route declares.

The API takes bearer tokens only: browser cookies are for the pages, which have
CSRF protection; accepting cookies here would open the API to cross-site requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request

from portcullis.accounts import service
from portcullis.core.context import Context, Principal
from portcullis.core.errors import AuthenticationFailed, PermissionDenied
from portcullis.core.permissions import Permission
from portcullis.core.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@dataclass
class Actor:
    """An authenticated, authorised caller of one request."""

    principal: Principal
    runtime: Runtime

    @contextmanager
    def work(self) -> Iterator[Context]:
        with self.runtime.work(self.principal) as ctx:
            yield ctx


def bearer_principal(runtime: Runtime, request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("Send an API token as 'Authorization: Bearer pc_...'")
    with runtime.session() as s:
        return service.token_principal(s, runtime.clock, token.strip())


def require(permission: Permission, *alternatives: Permission) -> Callable[[Request], Actor]:
    """A route dependency: any one of the permissions lets the caller in.

    The route-walking test reads `.permissions` off it. Alternatives serve reads
    that two kinds of reader need (staff see the catalogue they ask from,
    auditors see it to audit).
    """
    accepted = (permission, *alternatives)

    def dependency(request: Request) -> Actor:
        runtime = get_runtime(request)
        principal = bearer_principal(runtime, request)
        if not any(principal.can(p) for p in accepted):
            wanted = " or ".join(p.value for p in accepted)
            raise PermissionDenied(
                f"{principal.name} ({principal.role.value}) may not {wanted}"
                + ("" if principal.mfa or permission is Permission.SELF else " (token made without MFA?)")
            )
        return Actor(principal, runtime)

    dependency.permissions = accepted  # type: ignore[attr-defined]
    return dependency
