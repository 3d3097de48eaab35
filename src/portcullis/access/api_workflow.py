"""REST routes for requests, approvals, grants, findings and the daily policy pass (§19, §21, §22, §25)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from portcullis.access import findings, grants, policy, requests
from portcullis.access.models import FindingStatus, GrantStatus, RequestStatus
from portcullis.access.schemas import DecisionIn, RequestIn
from portcullis.accounts.deps import Actor, require
from portcullis.core.http import After, Limit, Page
from portcullis.core.permissions import Permission

router = APIRouter(tags=["access"])

# Staff see their own requests with ACCESS_REQUEST; readers (auditors included) see all.
RequestReader = Annotated[Actor, Depends(require(Permission.ACCESS_REQUEST, Permission.ACCESS_READ))]
Requester = Annotated[Actor, Depends(require(Permission.ACCESS_REQUEST))]
Approver = Annotated[Actor, Depends(require(Permission.ACCESS_APPROVE))]
Reader = Annotated[Actor, Depends(require(Permission.ACCESS_READ))]
Admin = Annotated[Actor, Depends(require(Permission.ACCESS_ADMIN))]


class DecisionOut(BaseModel):
    approver_id: int
    approver_email: str | None
    acting_as: str
    approve: bool
    comment: str
    at: datetime


class RequestOut(BaseModel):
    id: int
    requester_id: int
    requester_email: str | None
    subject_id: int
    subject_email: str | None
    entitlement_id: int | None
    entitlement_key: str | None
    role_id: int | None
    role_key: str | None
    justification: str
    duration_days: int | None
    status: str
    required_approvals: int
    approver_kinds: list[str]
    approvals: int
    decisions: list[DecisionOut]
    created_at: datetime
    decide_by: datetime
    decided_at: datetime | None
    version: int


class GrantOut(BaseModel):
    id: int
    person_id: int
    person_email: str | None
    entitlement_id: int
    entitlement_key: str
    entitlement_name: str
    asset_id: int | None
    zone_id: int | None
    privileged: bool
    remote_admin: bool
    kind: str
    request_id: int | None
    role_id: int | None
    status: str
    starts_at: datetime
    expires_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    provisioned_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class FindingOut(BaseModel):
    id: int
    key: str
    kind: str
    severity: str
    detail: str
    person_id: int | None
    person_email: str | None
    grant_id: int | None
    account_id: int | None
    owner_id: int | None
    owner_email: str | None
    due_on: datetime
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RevokeIn(_Body):
    reason: str = Field(min_length=1, max_length=4000, description="why the access is withdrawn")


class RoleGrantIn(_Body):
    role_id: int
    reason: str = Field(min_length=1, max_length=4000)


class ResolveIn(_Body):
    resolution: str = Field(min_length=1, max_length=4000, description="what was done about it")


class DailyPassOut(BaseModel):
    at: datetime
    grants: int
    people: int
    findings: int
    opened: int
    resolved: int
    by_code: dict[str, int]


def _request(r: Any) -> RequestOut:
    return RequestOut.model_validate(requests.request_view(r))


def _grant(g: Any) -> GrantOut:
    return GrantOut.model_validate(grants.grant_view(g))


def _finding(f: Any) -> FindingOut:
    return FindingOut.model_validate(findings.finding_view(f))


# --- requests and decisions -------------------------------------------------------------


@router.post("/access-requests", response_model=RequestOut, status_code=201)
def create_request(body: RequestIn, actor: Requester) -> RequestOut:
    with actor.work() as ctx:
        return _request(requests.request_access(ctx, body))


@router.get("/access-requests", response_model=Page[RequestOut])
def list_requests(
    actor: RequestReader,
    status: RequestStatus | None = None,
    subject_id: int | None = None,
    requester_id: int | None = None,
    entitlement_id: int | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[RequestOut]:
    with actor.work() as ctx:
        rows, total, nxt = requests.list_requests(
            ctx,
            status=status.value if status else None,
            subject_id=subject_id,
            requester_id=requester_id,
            entitlement_id=entitlement_id,
            after=after,
            limit=limit,
        )
        return Page(items=[_request(r) for r in rows], total=total, next_after=nxt)


@router.get("/access-requests/{request_id}", response_model=RequestOut)
def get_request(request_id: int, actor: RequestReader) -> RequestOut:
    with actor.work() as ctx:
        return _request(requests.get_request(ctx, request_id))


@router.post("/access-requests/{request_id}/decisions", response_model=RequestOut)
def decide(request_id: int, body: DecisionIn, actor: Approver) -> RequestOut:
    with actor.work() as ctx:
        return _request(requests.decide(ctx, request_id, body))


@router.post("/access-requests/{request_id}/cancel", response_model=RequestOut)
def cancel(request_id: int, actor: Requester) -> RequestOut:
    with actor.work() as ctx:
        return _request(requests.cancel_request(ctx, request_id))


@router.get("/approvals/inbox", response_model=list[RequestOut])
def inbox(actor: Approver) -> list[RequestOut]:
    with actor.work() as ctx:
        return [_request(r) for r in requests.approvals_inbox(ctx)]


# --- grants ---------------------------------------------------------------------------------


@router.get("/grants", response_model=Page[GrantOut])
def list_grants(
    actor: Reader,
    person_id: int | None = None,
    entitlement_id: int | None = None,
    asset_id: int | None = None,
    zone_id: int | None = None,
    status: GrantStatus | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[GrantOut]:
    with actor.work() as ctx:
        rows, total, nxt = grants.list_grants(
            ctx,
            person_id=person_id,
            entitlement_id=entitlement_id,
            asset_id=asset_id,
            zone_id=zone_id,
            status=status.value if status else None,
            after=after,
            limit=limit,
        )
        return Page(items=[_grant(g) for g in rows], total=total, next_after=nxt)


@router.get("/me/access", response_model=list[GrantOut])
def my_access(actor: Requester) -> list[GrantOut]:
    with actor.work() as ctx:
        return [_grant(g) for g in grants.my_access(ctx)]


@router.post("/grants/{grant_id}/revoke", response_model=GrantOut)
def revoke(grant_id: int, body: RevokeIn, actor: Admin) -> GrantOut:
    with actor.work() as ctx:
        return _grant(grants.revoke_grant(ctx, grant_id, body.reason))


@router.post("/people/{person_id}/roles", response_model=list[GrantOut], status_code=201)
def grant_role(person_id: int, body: RoleGrantIn, actor: Admin) -> list[GrantOut]:
    with actor.work() as ctx:
        return [_grant(g) for g in grants.grant_role(ctx, person_id, body.role_id, body.reason)]


# --- findings and the daily pass ---------------------------------------------------------


@router.get("/findings", response_model=Page[FindingOut])
def list_findings(
    actor: Reader,
    kind: str | None = None,
    status: Annotated[FindingStatus | None, Query(description="open by default")] = FindingStatus.OPEN,
    owner_id: int | None = None,
    person_id: int | None = None,
    grant_id: int | None = None,
    after: After = None,
    limit: Limit = 50,
) -> Page[FindingOut]:
    with actor.work() as ctx:
        rows, total, nxt = findings.list_findings(
            ctx,
            kind=kind,
            status=status.value if status else None,
            owner_id=owner_id,
            person_id=person_id,
            grant_id=grant_id,
            after=after,
            limit=limit,
        )
        return Page(items=[_finding(f) for f in rows], total=total, next_after=nxt)


@router.post("/findings/{finding_id}/resolve", response_model=FindingOut)
def resolve(finding_id: int, body: ResolveIn, actor: Admin) -> FindingOut:
    with actor.work() as ctx:
        return _finding(findings.resolve_finding(ctx, finding_id, body.resolution))


@router.post("/access/daily-pass", response_model=DailyPassOut)
def daily_pass(actor: Admin) -> DailyPassOut:
    with actor.work() as ctx:
        return DailyPassOut.model_validate(policy.daily_pass(ctx))
