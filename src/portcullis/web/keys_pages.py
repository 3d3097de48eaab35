"""The key register (§26-29): keys and their states, versions and uses, dual-control operations, replacements,
ceremonies. Pages show metadata and protection attributes, never material."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from portcullis.core.errors import Conflict, PermissionDenied
from portcullis.inventory.models import Asset, Person
from portcullis.keys import dual
from portcullis.keys.models import Ceremony, KeyAsset, KeyCustodian, KeyOperation, KeyTransition, OperationStatus
from portcullis.keys.register import get_key, key_view, list_keys, versions_of
from portcullis.keys.replace import list_replacements, replacement_view
from portcullis.web.access_common import Form
from portcullis.web.pages import PageRoute
from portcullis.web.render import page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
SignedIn = Annotated[WebUser, Depends(signed_in)]
DONE = {"approved": "Your approval is recorded."}


def _names(session: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {i: e for i, e in session.execute(select(Person.id, Person.email).where(Person.id.in_(sorted(ids))))}


@router.get("/keys")
def keys_page(request: Request, who: SignedIn, done: str = "", failed: str = "") -> Response:
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        now = ctx.now()
        keys = [key_view(k) for k in list_keys(ctx)]
        names = {k["id"]: k["key"] for k in keys}
        pending = [
            dual.operation_view(op)
            for op in ctx.session.scalars(
                select(KeyOperation)
                .where(KeyOperation.status.in_([OperationStatus.PENDING.value, OperationStatus.APPROVED.value]))
                .order_by(KeyOperation.id)
            )
        ]
        replacements = [replacement_view(ctx, r) for r in list_replacements(ctx)]
        ceremonies = list(ctx.session.scalars(select(Ceremony).order_by(Ceremony.id.desc()).limit(20)))
        people = _names(
            ctx.session,
            {p for c in ceremonies for p in (*c.present, *c.approvers)}
            | {p for op in pending for p in (op["requested_by"], *op["approvals"])},
        )
    from portcullis.keys.service import keyring

    return page(
        request,
        "keys.html",
        section="keys",
        keys=keys,
        overdue={k["key"] for k in keys if k["rotate_by"] and k["rotate_by"] < now and k["state"] == "active"},
        pending=pending,
        key_names=names,
        replacements=replacements,
        ceremonies=ceremonies,
        people=people,
        sealed=keyring(rt).sealed if rt.settings.master_key_source == "shares" else False,
        done=DONE.get(done),
        failed=failed[:300],
    )


@router.get("/keys/{name}")
def key_page(request: Request, name: str, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        k = get_key(ctx, name)
        view = key_view(k, versions_of(ctx, k))
        s = ctx.session
        transitions = list(
            s.scalars(select(KeyTransition).where(KeyTransition.key_id == k.id).order_by(KeyTransition.id))
        )
        custodians = _names(s, set(s.scalars(select(KeyCustodian.person_id).where(KeyCustodian.key_id == k.id))))
        assets = list(
            s.scalars(select(Asset).join(KeyAsset, KeyAsset.asset_id == Asset.id).where(KeyAsset.key_id == k.id))
        )
        owner = _names(s, {k.owner_id} if k.owner_id else set())
    return page(
        request,
        "key_detail.html",
        section="keys",
        k=view,
        transitions=transitions,
        custodians=sorted(custodians.values()),
        assets=assets,
        owner=owner.get(k.owner_id or 0),
    )


@router.post("/keys/operations/{op_id:int}/approve")
def approve(request: Request, op_id: int, who: SignedIn, form: Form) -> Response:
    try:
        with runtime_of(request).work(who.principal) as ctx:
            dual.approve(ctx, op_id)
    except (Conflict, PermissionDenied) as exc:
        from urllib.parse import quote

        return redirect(request, "/keys?failed=" + quote(exc.detail))
    return redirect(request, "/keys?done=approved")
