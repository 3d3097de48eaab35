"""The approvals inbox: pending requests the acting person may decide, each with approve and reject."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from portcullis.access import requests
from portcullis.access.schemas import DecisionIn
from portcullis.core.errors import Conflict, FieldError, ValidationFailed
from portcullis.web.access_common import Form, SignedIn, describe_requests, frame
from portcullis.web.pages import PageRoute, text
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of

router = APIRouter(route_class=PageRoute)
DECISIONS = {"approve": True, "reject": False}


def _inbox(
    request: Request,
    who: WebUser,
    status: int = 200,
    failed_id: int | None = None,
    comment: str = "",
    errors: dict[str, list[str]] | None = None,
) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        pending = describe_requests(ctx, [requests.request_view(r) for r in requests.approvals_inbox(ctx)])
    return page(
        request,
        "access_approvals.html",
        status=status,
        **frame(
            request,
            who,
            "access",
            pending=pending,
            failed_id=failed_id,
            comment=comment,
            errors=errors or {},
        ),
    )


@router.get("/access/approvals")
def inbox(request: Request, who: SignedIn) -> Response:
    return _inbox(request, who)


@router.post("/access/requests/{request_id:int}/decide")
def decide(request: Request, request_id: int, who: SignedIn, form: Form) -> Response:
    comment = text(form, "comment")
    choice = text(form, "decision")
    try:
        if choice not in DECISIONS:
            raise ValidationFailed("Choose approve or reject", [FieldError("decision", "choose approve or reject")])
        try:
            data = DecisionIn(approve=DECISIONS[choice], comment=comment)
        except ValidationError:
            raise ValidationFailed(
                "The comment is too long", [FieldError("comment", "is too long: at most 4000 characters")]
            ) from None
        with runtime_of(request).work(who.principal) as ctx:
            requests.decide(ctx, request_id, data)
    except ValidationFailed as exc:
        errors = field_errors(exc.errors) or {"comment": [exc.detail]}
        return _inbox(request, who, 400, request_id, comment, errors)
    except Conflict as exc:
        errors = field_errors(exc.errors) or {"decision": [exc.detail]}
        return _inbox(request, who, 409, request_id, comment, errors)
    return redirect(request, "/access/approvals?done=" + ("approved" if DECISIONS[choice] else "rejected"))
