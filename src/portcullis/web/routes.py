"""Web pages: one router assembled from the page modules."""

from fastapi import APIRouter

from portcullis.web import (
    access_pages,
    account_pages,
    admin_pages,
    auth_pages,
    certs_pages,
    dashboard,
    events_pages,
    import_pages,
    keys_pages,
    ledger_pages,
    org_pages,
    register_pages,
)

router = APIRouter(include_in_schema=False)
for module in (auth_pages, account_pages, admin_pages, dashboard, org_pages, import_pages, register_pages):
    router.include_router(module.router)
router.include_router(ledger_pages.router)
router.include_router(access_pages.router)
router.include_router(events_pages.router)
router.include_router(keys_pages.router)
router.include_router(certs_pages.router)
