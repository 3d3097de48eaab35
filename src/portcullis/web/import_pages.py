"""CSV import with a dry-run report, and export, of the inventory registers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import FormData, UploadFile

from portcullis.core.errors import PermissionDenied, ValidationFailed
from portcullis.core.permissions import Permission
from portcullis.inventory import csvio
from portcullis.web.pages import PageRoute, form_data, text
from portcullis.web.render import field_errors, page
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
Form = Annotated[FormData, Depends(form_data)]
SignedIn = Annotated[WebUser, Depends(signed_in)]
MAX_UPLOAD = 20 * 1024 * 1024


def _page(request: Request, who: WebUser, status: int = 200, **extra: Any) -> Response:
    if not who.principal.can(Permission.INVENTORY_READ):
        raise PermissionDenied(f"{who.principal.name} ({who.principal.role.value}) may not inventory.read")
    context: dict[str, Any] = {
        "kinds": [(k, csvio.columns(k), csvio.required_columns(k)) for k in csvio.KINDS],
        "kind": "people",
        "report": None,
        "errors": {},
    }
    context.update(extra)
    return page(request, "import.html", status=status, section="import", **context)


@router.get("/import")
def import_form(request: Request, who: SignedIn, kind: str = "people") -> Response:
    return _page(request, who, kind=kind)


@router.post("/import")
def run_import(request: Request, who: SignedIn, form: Form) -> Response:
    kind = text(form, "kind")
    dry_run = text(form, "action") != "commit"
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _page(request, who, 400, kind=kind, errors={"file": ["choose a CSV file to upload"]})
    data = upload.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return _page(request, who, 413, kind=kind, errors={"file": [f"is larger than {MAX_UPLOAD // 2**20} MB"]})
    try:
        with runtime_of(request).work(who.principal) as ctx:
            report = csvio.run_import(ctx, kind, data, dry_run=dry_run)
    except ValidationFailed as exc:
        return _page(request, who, 400, kind=kind, errors=field_errors(exc.errors))
    status = 200 if report.ok else 422
    return _page(request, who, status, kind=kind, report=report, filename=upload.filename)


@router.get("/import/export/{kind}")
def export(request: Request, kind: str, who: SignedIn) -> Response:
    with runtime_of(request).work(who.principal) as ctx:
        body = csvio.export_csv(ctx, kind)
    stamp = runtime_of(request).clock.now().strftime("%Y%m%d")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="portcullis-{kind}-{stamp}.csv"'},
    )
