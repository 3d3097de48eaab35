"""The ledger's streams, their signed checkpoints, verification and inclusion proofs."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from portcullis.core.context import Context
from portcullis.core.errors import NotFound
from portcullis.core.permissions import Permission
from portcullis.ledger import queries
from portcullis.ledger.operations import run_verification, sign_checkpoints, stream_overview
from portcullis.ledger.store import get_stream
from portcullis.web.pages import PageRoute
from portcullis.web.render import page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
SignedIn = Annotated[WebUser, Depends(signed_in)]
CHECKPOINTS_SHOWN = 20
# The outcome of a POST travels back as a code, so a crafted link cannot put words on the page.
DONE = {
    "verified": "Verification finished: the result for each stream is in the table.",
    "signed": "Checkpoints signed for every stream that had grown.",
    "unchanged": "Nothing to sign: every stream's latest checkpoint is current.",
}


@router.get("/ledger")
def ledger(request: Request, who: SignedIn, done: str = "") -> Response:
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        streams = stream_overview(ctx)
    return page(
        request,
        "ledger.html",
        section="ledger",
        streams=streams,
        verifier_key=str(rt.signer.verifier),
        done=DONE.get(done),
    )


@router.post("/ledger/verify")
def verify(request: Request, who: SignedIn) -> Response:
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        run_verification(ctx, rt.signer.verifier)
    return redirect(request, "/ledger?done=verified")


@router.post("/ledger/checkpoints")
def checkpoint(request: Request, who: SignedIn) -> Response:
    rt = runtime_of(request)
    with rt.work(who.principal) as ctx:
        made = sign_checkpoints(ctx, rt.signer)
    return redirect(request, "/ledger?done=" + ("signed" if made else "unchanged"))


def _proof(ctx: Context, name: str, index: str) -> tuple[dict[str, Any] | None, str | None, int]:
    if not index.strip().isdigit():
        return None, "The record index is a whole number from 0.", 400
    try:
        proof = queries.inclusion(ctx.session, name, int(index))
    except NotFound as exc:
        return None, exc.detail, 404
    proof["payload_text"] = json.dumps(proof["payload"], indent=2, sort_keys=True, ensure_ascii=False)
    return proof, None, 200


@router.get("/ledger/{name:path}")
def stream(request: Request, name: str, who: SignedIn, index: str | None = None) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        ctx.require(Permission.AUDIT_READ)
        row = get_stream(ctx.session, name)
        head = {
            "name": row.name,
            "size": row.size,
            "purged_below": row.purged_below,
            "retention_days": row.retention_days,
        }
        checkpoints = queries.checkpoint_rows(ctx.session, name, CHECKPOINTS_SHOWN)
        proof, proof_error, status = _proof(ctx, name, index) if index is not None else (None, None, 200)
    return page(
        request,
        "ledger_stream.html",
        status=status,
        section="ledger",
        stream=head,
        checkpoints=checkpoints,
        index=index or "",
        proof=proof,
        proof_error=proof_error,
    )
