"""REST routes for reconciliation: run it from an LDAP directory or a CSV export, list target accounts (§21, §25)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool

from portcullis.access.ldap_source import DEFAULT_GROUP_FILTER, DEFAULT_USER_FILTER, LdapQuery
from portcullis.access.reconcile import (
    MAX_SYSTEM,
    ReconcileReport,
    account_views,
    list_accounts,
    reconcile_csv,
    reconcile_ldap,
)
from portcullis.accounts.deps import Actor, require
from portcullis.core.http import MAX_PAGE, Page, problem
from portcullis.core.permissions import Permission

# The upload plumbing (size cap, raw body or multipart "file") is the inventory import's.
from portcullis.inventory.csv_api import CSV_BODY, read_upload

router = APIRouter(tags=["reconciliation"])

Admin = Annotated[Actor, Depends(require(Permission.ACCESS_ADMIN))]
Reader = Annotated[Actor, Depends(require(Permission.ACCESS_READ))]
System = Annotated[str, Query(min_length=1, max_length=MAX_SYSTEM, description="The target system's name")]


class LdapReconcileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1, max_length=MAX_SYSTEM, description="Name of the system, as group mappings use")
    url: str = Field(min_length=1, max_length=500, description="ldap://host[:port] or ldaps://host[:port]")
    bind_dn: str = Field(default="", max_length=1000, description="Empty for an anonymous bind")
    # SecretStr: kept out of repr, logs and model dumps; read once for the bind.
    password: SecretStr = Field(default=SecretStr(""), description="Used for the bind only; never stored or logged")
    base: str = Field(min_length=1, max_length=1000, description="Where to search for accounts")
    user_filter: str = Field(default=DEFAULT_USER_FILTER, max_length=2000)
    group_base: str | None = Field(default=None, max_length=1000, description="Where to search for groups")
    group_filter: str = Field(default=DEFAULT_GROUP_FILTER, max_length=2000)
    start_tls: bool = False
    account_attribute: str = Field(default="uid", min_length=1, max_length=100)
    email_attribute: str = Field(default="mail", min_length=1, max_length=100)
    employee_id_attribute: str = Field(default="employeeNumber", min_length=1, max_length=100)
    idp_id_attribute: str | None = Field(default=None, max_length=100)
    disabled_attribute: str | None = Field(default=None, max_length=100)
    timeout: int = Field(default=10, ge=1, le=120, description="Seconds")

    def query(self) -> LdapQuery:
        return LdapQuery(
            url=self.url,
            base=self.base,
            bind_dn=self.bind_dn,
            password=self.password.get_secret_value(),
            user_filter=self.user_filter,
            group_base=self.group_base,
            group_filter=self.group_filter,
            start_tls=self.start_tls,
            account_attribute=self.account_attribute,
            email_attribute=self.email_attribute,
            employee_id_attribute=self.employee_id_attribute,
            idp_id_attribute=self.idp_id_attribute,
            disabled_attribute=self.disabled_attribute,
            timeout=self.timeout,
        )


class ErrorOut(BaseModel):
    field: str
    message: str
    line: int | None = None


class ReconcileOut(BaseModel):
    system: str
    source: dict[str, Any]
    ok: bool
    committed: bool
    accounts: int
    created: int
    updated: int
    unchanged: int
    deactivated: int
    matched: int
    orphans: int
    grants_provisioned: int
    findings_opened: int
    findings_resolved: int
    open_findings: dict[str, int]
    skipped: list[str]
    errors: list[ErrorOut]


class TargetAccountOut(BaseModel):
    id: int
    system: str
    account_name: str
    person_id: int | None
    person_email: str | None
    active: bool
    groups: list[str]
    attributes: dict[str, str]
    first_seen_at: datetime
    last_seen_at: datetime


def _csv(actor: Actor, data: bytes, system: str) -> ReconcileReport:
    with actor.work() as ctx:
        return reconcile_csv(ctx, data, system)


@router.post(
    "/reconciliation/csv",
    summary="Reconcile a system's accounts from a CSV export",
    openapi_extra=CSV_BODY,
    response_model=ReconcileOut,
    responses={422: {"description": "The file has errors; nothing was written"}},
)
async def reconcile_from_csv(request: Request, actor: Admin, system: System) -> JSONResponse:
    """Columns: system, account, email, employee_id, active, groups (separated by ;), optionally idp_id.

    Every bad row is reported by line and column, and a file with any error changes nothing.
    """
    data = await read_upload(request)
    report = await run_in_threadpool(_csv, actor, data, system)
    body = ReconcileOut.model_validate(report.as_dict()).model_dump(mode="json")
    if not report.ok:
        n = len(report.errors)
        return problem(
            422,
            "Invalid input",
            f"The export has {n} error{'s' if n != 1 else ''}; nothing was reconciled",
            request,
            errors=body["errors"],
            report=body,
        )
    return JSONResponse(body)


@router.post("/reconciliation/ldap", response_model=ReconcileOut, summary="Reconcile a system's accounts from LDAP")
def reconcile_from_ldap(body: LdapReconcileIn, actor: Admin) -> ReconcileOut:
    """Reads the directory (read-only) and reconciles it; the password is used for the bind and nothing else."""
    with actor.work() as ctx:
        report = reconcile_ldap(ctx, body.query(), body.system)
        return ReconcileOut.model_validate(report.as_dict())


@router.get("/target-accounts", response_model=Page[TargetAccountOut])
def target_accounts(
    actor: Reader,
    system: str | None = None,
    person_id: int | None = None,
    orphan: Annotated[bool | None, Query(description="true: accounts of nobody in the register")] = None,
    active: bool | None = None,
    q: Annotated[str | None, Query(description="Part of the account name")] = None,
    after: Annotated[int | None, Query(description="next_after of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Page[TargetAccountOut]:
    with actor.work() as ctx:
        rows, total, nxt = list_accounts(
            ctx, system=system, person_id=person_id, orphan=orphan, active=active, q=q, after=after, limit=limit
        )
        items = [TargetAccountOut.model_validate(v) for v in account_views(ctx, rows)]
    return Page[TargetAccountOut](items=items, total=total, next_after=nxt)
