"""REST routes for CSV import (with dry run) and export of the inventory registers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from portcullis.accounts.deps import Actor, require
from portcullis.core.errors import FieldError, ValidationFailed
from portcullis.core.http import problem
from portcullis.core.permissions import Permission
from portcullis.inventory.csv_read import MAX_BYTES
from portcullis.inventory.csvio import KINDS, ImportReport, export_csv, run_import

router = APIRouter(tags=["inventory"])

KindPath = Annotated[str, Path(description="The register: " + ", ".join(KINDS))]
CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


class ContentTooLarge(ValidationFailed):
    status = 413
    title = "Content too large"


def _too_large() -> ValidationFailed:
    return ContentTooLarge(
        "The file is too large",
        [FieldError("file", f"the limit is {MAX_BYTES:,} bytes (20 MB): split the file")],
    )


async def read_upload(request: Request) -> bytes:
    """The CSV bytes, sent raw or as the multipart field "file", refusing anything over the cap."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES + 64 * 1024:  # room for multipart framing
        raise _too_large()
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed("No file", [FieldError("file", "send the CSV as the multipart field 'file'")])
        data = await upload.read(MAX_BYTES + 1)
        await form.close()
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BYTES:
                raise _too_large()
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > MAX_BYTES:
        raise _too_large()
    return data


def _import(actor: Actor, kind: str, data: bytes, dry_run: bool) -> ImportReport:
    # One transaction: the rows, their audit records and the import's own record commit together.
    with actor.work() as ctx:
        return run_import(ctx, kind, data, dry_run=dry_run)


@router.post(
    "/imports/{kind}",
    summary="Import a CSV file into a register (dry run with ?dry_run=true)",
    openapi_extra=CSV_BODY,
    responses={422: {"description": "The file has errors; nothing was imported"}},
)
async def import_csv(
    kind: KindPath,
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.INVENTORY_WRITE))],
    dry_run: Annotated[bool, Query(description="Check and report only; write nothing")] = False,
) -> JSONResponse:
    """Every bad row is reported by line and column; with any error nothing is written."""
    data = await read_upload(request)
    report = await run_in_threadpool(_import, actor, kind, data, dry_run)
    body = report.as_dict()
    if not report.ok and not dry_run:
        n = len(report.errors)
        return problem(
            422,
            "Invalid input",
            f"The {kind} file has {n} error{'s' if n != 1 else ''}; nothing was imported",
            request,
            errors=body["errors"],
            report=body,
        )
    return JSONResponse(body)


@router.get(
    "/exports/{kind}",
    summary="Export a register as CSV (the import's columns)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
def export_register(kind: KindPath, actor: Annotated[Actor, Depends(require(Permission.INVENTORY_READ))]) -> Response:
    with actor.work() as ctx:
        text = export_csv(ctx, kind)
        day = ctx.now().date().isoformat()
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="portcullis-{kind}-{day}.csv"'},
    )
