"""The SCIM 2.0 service provider at /scim/v2 (mounted without the /api/v1 prefix).

Authentication is a Portcullis API token whose user may provision identities
(Permission.IDENTITY_PROVISION); every route checks it through `provisioner`.
Errors, including authentication and routing errors, are answered in SCIM's
error schema as application/scim+json, never as problem details: IdPs parse them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from portcullis.access import scim, scim_groups
from portcullis.access.scim import ScimError, invalid
from portcullis.accounts.deps import bearer_principal, get_runtime
from portcullis.core.context import Context, Principal
from portcullis.core.errors import PortcullisError
from portcullis.core.runtime import Runtime


def scim_response(body: dict[str, Any] | None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None else json.dumps(body, default=str).encode()
    return Response(content, status_code=status, media_type=None if body is None else scim.MEDIA_TYPE, headers=headers)


def error_response(exc: ScimError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
    return scim_response(exc.body(), exc.status, headers)


class ScimRoute(APIRoute):
    """Turns every failure inside a SCIM route into a SCIM error response."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ScimError as exc:
                return error_response(exc)
            except PortcullisError as exc:
                return error_response(scim.from_domain(exc))
            except RequestValidationError as exc:
                detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                return error_response(invalid(detail, "invalidValue"))
            except HTTPException as exc:
                return error_response(ScimError(exc.status_code, str(exc.detail)))

        return route


router = APIRouter(prefix="/scim/v2", tags=["scim"], route_class=ScimRoute)


class Provisioner:
    """The IdP's authenticated principal, and the units of work it acts in."""

    def __init__(self, principal: Principal, runtime: Runtime, base: str) -> None:
        self.principal = principal
        self.runtime = runtime
        self.base = base
        self.entra = runtime.settings.scim_entra_compat

    async def run(self, fn: Callable[[Context], Any]) -> Any:
        def work() -> Any:
            with self.runtime.work(self.principal) as ctx:
                return fn(ctx)

        return await run_in_threadpool(work)


def provisioner(request: Request) -> Provisioner:
    """Every SCIM route's gate: a valid token whose user holds identity.provision."""
    runtime = get_runtime(request)
    try:
        principal = bearer_principal(runtime, request)
    except PortcullisError as exc:
        raise ScimError(401, exc.detail) from exc
    base = str(request.base_url).rstrip("/") + router.prefix
    return Provisioner(scim.provisioning_principal(principal), runtime, base)



async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise invalid("The request has no body", "invalidSyntax")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"The body is not JSON: {exc}", "invalidSyntax") from exc


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise invalid(f"{name} must be an integer, not {raw!r}") from exc


# --- discovery (RFC 7644 §4) ---------------------------------------------------------------

_GROUPS = True  # Groups are access roles; membership is backed by standing grants (scim_groups).


@router.get("/ServiceProviderConfig")
def service_provider_config(request: Request) -> Response:
    p = provisioner(request)
    return scim_response(scim.service_provider_config(p.base))


@router.get("/Schemas")
def list_schemas(request: Request) -> Response:
    p = provisioner(request)
    found = scim.schemas(p.base, _GROUPS)
    return scim_response(scim.list_response(found, len(found), 1))


@router.get("/Schemas/{schema_id}")
def get_schema(request: Request, schema_id: str) -> Response:
    p = provisioner(request)
    for s in scim.schemas(p.base, _GROUPS):
        if s["id"] == schema_id:
            return scim_response(s)
    raise ScimError(404, f"No schema {schema_id!r}")


@router.get("/ResourceTypes")
def list_resource_types(request: Request) -> Response:
    p = provisioner(request)
    found = scim.resource_types(p.base, _GROUPS)
    return scim_response(scim.list_response(found, len(found), 1))


@router.get("/ResourceTypes/{type_id}")
def get_resource_type(request: Request, type_id: str) -> Response:
    p = provisioner(request)
    for rt in scim.resource_types(p.base, _GROUPS):
        if rt["id"] == type_id:
            return scim_response(rt)
    raise ScimError(404, f"No resource type {type_id!r}")


# --- users -------------------------------------------------------------------------------------


@router.get("/Users")
async def list_users(request: Request) -> Response:
    p = provisioner(request)
    start, count = scim.paging(_int(request, "startIndex"), _int(request, "count"))
    params = scim.response_parameters(
        request.query_params.get("attributes"), request.query_params.get("excludedAttributes")
    )
    flt = request.query_params.get("filter")

    def fn(ctx: Context) -> dict[str, Any]:
        people, total = scim.list_users(ctx, flt, start, count)
        return scim.list_response([scim.user_resource(x, p.base, params) for x in people], total, start)

    return scim_response(await p.run(fn))


@router.post("/Users")
async def create_user(request: Request) -> Response:
    p = provisioner(request)
    body = await _body(request)

    def fn(ctx: Context) -> dict[str, Any]:
        return scim.user_resource(scim.create_user(ctx, body, p.entra), p.base)

    out = await p.run(fn)
    return scim_response(out, 201, {"Location": out["meta"]["location"]})


@router.get("/Users/{user_id}")
async def get_user(request: Request, user_id: str) -> Response:
    p = provisioner(request)
    params = scim.response_parameters(
        request.query_params.get("attributes"), request.query_params.get("excludedAttributes")
    )
    return scim_response(await p.run(lambda ctx: scim.user_resource(scim.load_user(ctx, user_id), p.base, params)))


@router.put("/Users/{user_id}")
async def replace_user(request: Request, user_id: str) -> Response:
    p = provisioner(request)
    body = await _body(request)
    return scim_response(
        await p.run(lambda ctx: scim.user_resource(scim.replace_user(ctx, user_id, body, p.entra), p.base))
    )


@router.patch("/Users/{user_id}")
async def patch_user(request: Request, user_id: str) -> Response:
    p = provisioner(request)
    body = await _body(request)
    return scim_response(
        await p.run(lambda ctx: scim.user_resource(scim.patch_user(ctx, user_id, body, p.entra), p.base))
    )


@router.delete("/Users/{user_id}")
async def delete_user(request: Request, user_id: str) -> Response:
    p = provisioner(request)
    await p.run(lambda ctx: scim.delete_user(ctx, user_id))
    return scim_response(None, 204)


# --- groups ------------------------------------------------------------------------------------


def _params(request: Request) -> Any:
    return scim.response_parameters(
        request.query_params.get("attributes"), request.query_params.get("excludedAttributes")
    )


@router.get("/Groups")
async def list_groups(request: Request) -> Response:
    p = provisioner(request)
    start, count = scim.paging(_int(request, "startIndex"), _int(request, "count"))
    params = _params(request)
    flt = request.query_params.get("filter")

    def fn(ctx: Context) -> dict[str, Any]:
        roles, total = scim_groups.list_groups(ctx, flt, start, count)
        return scim.list_response([scim_groups.group_resource(ctx, r, p.base, params) for r in roles], total, start)

    return scim_response(await p.run(fn))


@router.post("/Groups")
async def create_group(request: Request) -> Response:
    p = provisioner(request)
    body = await _body(request)

    def fn(ctx: Context) -> dict[str, Any]:
        return scim_groups.group_resource(ctx, scim_groups.create_group(ctx, body, p.entra), p.base)

    out = await p.run(fn)
    return scim_response(out, 201, {"Location": out["meta"]["location"]})


@router.get("/Groups/{group_id}")
async def get_group(request: Request, group_id: str) -> Response:
    p = provisioner(request)
    params = _params(request)
    return scim_response(
        await p.run(lambda ctx: scim_groups.group_resource(ctx, scim_groups.load_group(ctx, group_id), p.base, params))
    )


@router.put("/Groups/{group_id}")
async def replace_group(request: Request, group_id: str) -> Response:
    p = provisioner(request)
    body = await _body(request)

    def fn(ctx: Context) -> dict[str, Any]:
        return scim_groups.group_resource(ctx, scim_groups.replace_group(ctx, group_id, body, p.entra), p.base)

    return scim_response(await p.run(fn))


@router.patch("/Groups/{group_id}")
async def patch_group(request: Request, group_id: str) -> Response:
    p = provisioner(request)
    body = await _body(request)

    def fn(ctx: Context) -> dict[str, Any]:
        return scim_groups.group_resource(ctx, scim_groups.patch_group(ctx, group_id, body, p.entra), p.base)

    return scim_response(await p.run(fn))


@router.delete("/Groups/{group_id}")
async def delete_group(request: Request, group_id: str) -> Response:
    p = provisioner(request)
    await p.run(lambda ctx: scim_groups.delete_group(ctx, group_id))
    return scim_response(None, 204)


# --- everything else ---------------------------------------------------------------------------

_KNOWN = re.compile(r"^/(ServiceProviderConfig|Schemas|ResourceTypes|Users|Groups)(/[^/]+)?$")


@router.post("/.search")
def search_everything(request: Request) -> Response:
    provisioner(request)
    raise ScimError(501, "Searching several resource types at once is not supported; search /Users or /Groups")


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
def not_here(request: Request, rest: str) -> Response:
    provisioner(request)
    if _KNOWN.match("/" + rest):
        raise ScimError(405, f"{request.method} is not supported on /{rest}")
    raise ScimError(404, f"There is no SCIM endpoint /{rest}")
