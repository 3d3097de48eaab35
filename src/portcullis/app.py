"""Builds the web application from the domains' routers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from portcullis import __version__
from portcullis.access.api_catalogue import router as access_catalogue_router
from portcullis.access.api_reconcile import router as reconcile_router
from portcullis.access.api_workflow import router as access_workflow_router
from portcullis.access.scim_api import router as scim_router
from portcullis.accounts.api import router as accounts_router
from portcullis.certs.api import public as pki_router
from portcullis.certs.api import router as certs_router
from portcullis.core.http import install_problem_handlers
from portcullis.core.migrate import ensure_current
from portcullis.core.runtime import Runtime
from portcullis.events.api import intake as events_intake
from portcullis.events.api import router as events_router
from portcullis.inventory.api import router as inventory_router
from portcullis.inventory.csv_api import router as csv_router
from portcullis.keys.api import router as keys_router
from portcullis.ledger.api import router as ledger_router
from portcullis.web.routes import router as web_router

API_PREFIX = "/api/v1"

SECURITY_HEADERS = {
    # No inline script or style anywhere: everything comes from /static.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}


def create_app(runtime: Runtime | None = None, check_schema: bool = True) -> FastAPI:
    rt = runtime or Runtime.build()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if check_schema:
            ensure_current(rt.engine)  # refuse to start rather than serve errors
        yield

    app = FastAPI(
        title="Portcullis",
        version=__version__,
        summary="Systems and security access protocols under MiCA Art. 14(1)(d)",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    install_problem_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        if rt.settings.cookie_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        return response

    @app.get(f"{API_PREFIX}/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(accounts_router, prefix=API_PREFIX)
    app.include_router(inventory_router, prefix=API_PREFIX)
    app.include_router(csv_router, prefix=API_PREFIX)
    app.include_router(access_catalogue_router, prefix=API_PREFIX)
    app.include_router(access_workflow_router, prefix=API_PREFIX)
    app.include_router(reconcile_router, prefix=API_PREFIX)
    # SCIM has its own path and error format (RFC 7644), not /api/v1's problem details.
    app.include_router(scim_router)
    app.include_router(ledger_router, prefix=API_PREFIX)
    app.include_router(events_router, prefix=API_PREFIX)
    app.include_router(keys_router, prefix=API_PREFIX)
    app.include_router(certs_router, prefix=API_PREFIX)
    app.include_router(pki_router)
    app.include_router(events_intake)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static")
    return app
