"""The certificate register pages (§29-30): register, one certificate, devices, expiry calendar, findings."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from portcullis.access.models import Finding, FindingStatus
from portcullis.certs import checks, policy
from portcullis.certs.devices import device_view, list_devices
from portcullis.certs.models import CertDevice, CertNotice, CertStatus, RenewalMethod
from portcullis.certs.register import (
    CertIn,
    assets_of,
    cert_view,
    chain_of,
    deployments_of,
    get_certificate,
    page_certificates,
    register_certificate,
    renewals_of,
    retire_certificate,
)
from portcullis.core.errors import PortcullisError, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory.models import Person
from portcullis.web.access_common import Form
from portcullis.web.pages import PageRoute, text
from portcullis.web.render import page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
SignedIn = Annotated[WebUser, Depends(signed_in)]
STATUSES = [s.value for s in CertStatus]


def _open_cert_findings(session: Any, limit: int = 200) -> list[Finding]:
    stmt = (
        select(Finding)
        .where(Finding.status == FindingStatus.OPEN.value, Finding.kind.startswith("cert_"))
        .order_by(Finding.severity, Finding.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


@router.get("/certs")
def certs_page(
    request: Request,
    who: SignedIn,
    status: str = "",
    q: str = "",
    expiring: int | None = None,
    after: int | None = None,
) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        ctx.require(Permission.CERTS_READ)
        now = ctx.now()
        before = now + timedelta(days=expiring) if expiring is not None else None
        rows, total, nxt = page_certificates(
            ctx, status=status or None, expiring_before=before, search=q or None, after=after, limit=50
        )
        certs = [cert_view(c) for c in rows]
        findings = _open_cert_findings(ctx.session)
    kept = {k: v for k, v in {"status": status, "q": q, "expiring": expiring}.items() if v not in ("", None)}
    return page(
        request,
        "certs.html",
        section="certs",
        certs=certs,
        total=total,
        next_url=f"/certs?{urlencode({**kept, 'after': nxt})}" if nxt else None,
        now=now,
        days_left={c["id"]: policy.days_left(c["not_after"], now) for c in certs},
        statuses=STATUSES,
        status_filter=status,
        q=q,
        expiring=expiring,
        findings=findings,
    )


@router.get("/certs/devices")
def devices_page(request: Request, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        devices = [device_view(d) for d in list_devices(ctx)]
    return page(request, "certs_devices.html", section="certs", devices=devices)


@router.get("/certs/calendar")
def calendar_page(request: Request, who: SignedIn, months: int = 12) -> Response:
    """Expiry and renewal dates over the coming months, so the work can be planned before anything lapses."""
    months = max(1, min(months, 36))
    with runtime_of(request).work(who.principal) as ctx:
        ctx.require(Permission.CERTS_READ)
        now = ctx.now()
        by_month: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for c, due in checks.expiring(ctx, months * 31):
            by_month[f"{c.not_after:%Y-%m}"].append(
                {
                    **cert_view(c),
                    "renewal_due": due,
                    "days_left": policy.days_left(c.not_after, now),
                    "notice": policy.notice_due(c.not_after, now, c.is_ca),
                }
            )
    return page(request, "certs_calendar.html", section="certs", by_month=sorted(by_month.items()), months=months)


DONE = {"registered": "The certificate is in the register.", "retired": "The certificate is retired."}


def _back(request: Request, cert_id: int, *, done: str = "", failed: str = "") -> Response:
    query = urlencode({k: v for k, v in {"done": done, "failed": failed[:300]}.items() if v})
    return redirect(request, f"/certs/{cert_id}" + (f"?{query}" if query else ""))


def _problem(exc: PortcullisError) -> str:
    if isinstance(exc, ValidationFailed) and exc.errors:
        return "; ".join(f"{e.field}: {e.message}" for e in exc.errors)
    return exc.detail


@router.post("/certs/{cert_id:int}/register")
def register_from_page(request: Request, cert_id: int, who: SignedIn, form: Form) -> Response:
    """Take a discovered certificate into the register, or change its owner and assets; renewal settings stay."""
    assets = [a.strip() for a in text(form, "assets").replace(";", ",").split(",") if a.strip()]
    try:
        with runtime_of(request).work(who.principal) as ctx:
            c = get_certificate(ctx, cert_id)
            data = CertIn(
                owner_email=text(form, "owner_email") or None,
                asset_external_ids=assets,
                renewal_method=RenewalMethod(c.renewal_method),
                renewal=dict(c.renewal),
                renew_at_fraction=c.renew_at_fraction,
                notes=text(form, "notes"),
            )
            register_certificate(ctx, cert_id, data)
    except PortcullisError as exc:
        return _back(request, cert_id, failed=_problem(exc))
    return _back(request, cert_id, done="registered")


@router.post("/certs/{cert_id:int}/retire")
def retire_from_page(request: Request, cert_id: int, who: SignedIn, form: Form) -> Response:
    try:
        with runtime_of(request).work(who.principal) as ctx:
            retire_certificate(ctx, cert_id, text(form, "reason"))
    except PortcullisError as exc:
        return _back(request, cert_id, failed=_problem(exc))
    return _back(request, cert_id, done="retired")


@router.get("/certs/{cert_id:int}")
def cert_page(request: Request, cert_id: int, who: SignedIn, done: str = "", failed: str = "") -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        c = get_certificate(ctx, cert_id)
        view = cert_view(c)
        s = ctx.session
        owner = s.get(Person, c.owner_id) if c.owner_id else None
        deps = deployments_of(ctx, c)
        device_names = {
            d.id: d.name
            for d in s.scalars(select(CertDevice).where(CertDevice.id.in_({x.device_id for x in deps if x.device_id})))
        }
        chain = [cert_view(x) for x in chain_of(ctx, c)[1:]]
        notices = list(s.scalars(select(CertNotice).where(CertNotice.cert_id == c.id).order_by(CertNotice.id)))
        findings = [f for f in _open_cert_findings(s, 1000) if f.key.endswith(f":cert:{c.id}")]
        facts = checks.renewal_facts(ctx)
        due = checks.renewal_due_at(c, facts)
        now = ctx.now()
        page_ = page(
            request,
            "cert_detail.html",
            section="certs",
            c=view,
            owner=owner.email if owner else None,
            assets=assets_of(ctx, c),
            deployments=deps,
            device_names=device_names,
            chain=chain,
            renewals=renewals_of(ctx, c),
            notices=notices,
            findings=findings,
            renewal_due=due,
            days_left=policy.days_left(c.not_after, now),
            asset_ids=", ".join(a.external_id for a in assets_of(ctx, c)),
            done=DONE.get(done),
            failed=failed[:300],
        )
    return page_
