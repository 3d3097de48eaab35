"""Access governance pages: my access and requests, the approvals inbox, grants, findings, the catalogue.

Presentation only: every rule (who may ask, approve, revoke; the policy checks) is
in the access services, which these pages call and whose refusals they show.
"""

from fastapi import APIRouter

from portcullis.web import access_approvals, access_catalogue, access_review, access_self

router = APIRouter(include_in_schema=False)
for module in (access_self, access_approvals, access_review, access_catalogue):
    router.include_router(module.router)
