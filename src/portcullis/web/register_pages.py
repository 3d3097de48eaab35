"""List, detail, create and edit pages for every inventory register."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response
from pydantic_core import PydanticUndefined
from starlette.datastructures import FormData

from portcullis.core.context import Context
from portcullis.core.errors import Conflict, PermissionDenied, ValidationFailed
from portcullis.core.http import MAX_PAGE
from portcullis.core.permissions import Permission
from portcullis.inventory import service as inventory
from portcullis.inventory.related import related
from portcullis.web.forms import stored, stray, submitted, to_input
from portcullis.web.pages import PageRoute, form_data
from portcullis.web.registers import REGISTERS, Register
from portcullis.web.render import field_errors, page, redirect
from portcullis.web.session import WebUser, runtime_of, signed_in

router = APIRouter(route_class=PageRoute)
Form = Annotated[FormData, Depends(form_data)]
SignedIn = Annotated[WebUser, Depends(signed_in)]
PAGE_SIZE = 50
# A drop-down beyond this many choices is no longer usable; past it the list is cut.
MAX_OPTIONS = MAX_PAGE


def _svc(name: str) -> Callable[..., Any]:
    fn: Callable[..., Any] = getattr(inventory, name)
    return fn


def _view(reg: Register, obj: Any) -> dict[str, Any]:
    view: dict[str, Any] = _svc(f"{reg.noun}_view")(obj)
    return view


def ref_options(ctx: Context, reg: Register, fields: tuple[Any, ...]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for f in fields:
        if f.ref and f.ref not in out:
            target = REGISTERS[f.ref]
            rows, _, _ = _svc(f"list_{target.plural}")(ctx, limit=MAX_OPTIONS)
            out[f.ref] = [(str(r.id), target.label_of(r)) for r in rows]
    return out


def _int(value: str | None, default: int | None) -> int | None:
    return int(value) if value and value.isdigit() else default


def _list_page(reg: Register) -> Callable[..., Response]:
    def endpoint(request: Request, who: SignedIn) -> Response:
        params = request.query_params
        lister = _svc(f"list_{reg.plural}")
        accepted = inspect.signature(lister).parameters
        filters = {f.name: params.get(f.name, "").strip() for f in reg.filters}
        kwargs: dict[str, Any] = {}
        for f in reg.filters:
            v = filters[f.name]
            if v and f.name in accepted:
                if f.kind == "ref":
                    if v.isdigit():
                        kwargs[f.name] = int(v)
                else:
                    kwargs[f.name] = v
        limit = _int(params.get("limit"), PAGE_SIZE) or PAGE_SIZE
        with runtime_of(request).work(who.principal) as ctx:
            rows, total, nxt = lister(ctx, **kwargs, after=_int(params.get("after"), None), limit=limit)
            views = [_view(reg, r) for r in rows]
            options = ref_options(ctx, reg, reg.filters)
        kept = {k: v for k, v in filters.items() if v}
        next_url = f"/{reg.slug}?" + urlencode({**kept, "after": nxt, "limit": limit}) if nxt else None
        return page(
            request,
            "register_list.html",
            section=reg.section,
            reg=reg,
            rows=views,
            total=total,
            next_url=next_url,
            filters=filters,
            options=options,
            filtered=bool(kept) or "after" in params,
        )

    return endpoint


def _detail_rows(reg: Register, view: dict[str, Any]) -> list[tuple[str, Any, str | None]]:
    linked = {c.key: c.ref for c in reg.columns if c.ref}
    hidden = {"id"} | {ref[1] for ref in linked.values() if ref}
    rows: list[tuple[str, Any, str | None]] = []
    for key, value in view.items():
        if key in hidden:
            continue
        href = None
        ref = linked.get(key)
        if ref and view.get(ref[1]) is not None:
            href = f"/{ref[0]}/{view[ref[1]]}"
        rows.append((key, value, href))
    return rows


def _detail_page(reg: Register) -> Callable[..., Response]:
    def endpoint(request: Request, item_id: int, who: SignedIn) -> Response:
        with runtime_of(request).work(who.principal) as ctx:
            view = _view(reg, _svc(f"get_{reg.noun}")(ctx, item_id))
            links = related(ctx, reg.slug, item_id)
        return page(
            request,
            "register_detail.html",
            section=reg.section,
            reg=reg,
            item=view,
            rows=_detail_rows(reg, view),
            related=links,
            title=str(view.get("name") or view.get("full_name") or view.get("external_id")),
        )

    return endpoint


def _defaults(reg: Register) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in reg.fields:
        d = reg.schema.model_fields[f.name].default
        if f.kind == "bool":
            values[f.name] = bool(d) if d is not PydanticUndefined else False
        elif f.kind == "refs":
            values[f.name] = []
        elif d is PydanticUndefined or d is None or isinstance(d, list):
            values[f.name] = ""
        else:
            values[f.name] = str(d)
    return values


def _form(
    request: Request,
    who: WebUser,
    reg: Register,
    values: dict[str, Any],
    item_id: int | None,
    status: int = 200,
    errors: dict[str, list[str]] | None = None,
    conflict: str | None = None,
) -> Response:
    if not who.principal.can(Permission.INVENTORY_WRITE):
        raise PermissionDenied(f"{who.principal.name} ({who.principal.role.value}) may not inventory.write")
    with runtime_of(request).work(who.principal) as ctx:
        options = ref_options(ctx, reg, reg.fields)
    if item_id is not None:
        options = {k: [o for o in v if not (k == reg.slug and o[0] == str(item_id))] for k, v in options.items()}
    return page(
        request,
        "register_form.html",
        status=status,
        section=reg.section,
        reg=reg,
        values=values,
        item_id=item_id,
        options=options,
        errors=errors or {},
        form_errors=stray(reg, errors or {}),
        conflict=conflict,
    )


def _save(request: Request, who: WebUser, reg: Register, form: FormData, item_id: int | None) -> Response:
    values = submitted(reg, form)
    try:
        data = to_input(reg, values)
        with runtime_of(request).work(who.principal) as ctx:
            if item_id is None:
                obj = _svc(f"create_{reg.noun}")(ctx, data)
            else:
                obj = _svc(f"update_{reg.noun}")(ctx, item_id, data)
            saved_id = obj.id
    except ValidationFailed as exc:
        return _form(request, who, reg, values, item_id, 400, errors=field_errors(exc.errors))
    except Conflict as exc:
        return _form(request, who, reg, values, item_id, 409, conflict=exc.detail)
    return redirect(request, f"/{reg.slug}/{saved_id}", flash="created" if item_id is None else "saved")


def _new_page(reg: Register) -> Callable[..., Response]:
    def endpoint(request: Request, who: SignedIn) -> Response:
        return _form(request, who, reg, _defaults(reg), None)

    return endpoint


def _create(reg: Register) -> Callable[..., Response]:
    def endpoint(request: Request, who: SignedIn, form: Form) -> Response:
        return _save(request, who, reg, form, None)

    return endpoint


def _edit_page(reg: Register) -> Callable[..., Response]:
    def endpoint(request: Request, item_id: int, who: SignedIn) -> Response:
        with runtime_of(request).work(who.principal) as ctx:
            view = _view(reg, _svc(f"get_{reg.noun}")(ctx, item_id))
        return _form(request, who, reg, stored(reg, view), item_id)

    return endpoint


def _update(reg: Register) -> Callable[..., Response]:
    def endpoint(request: Request, item_id: int, who: SignedIn, form: Form) -> Response:
        return _save(request, who, reg, form, item_id)

    return endpoint


for _reg in REGISTERS.values():
    base = f"/{_reg.slug}"
    router.add_api_route(base, _list_page(_reg), methods=["GET"], name=f"{_reg.slug}_list")
    router.add_api_route(f"{base}/new", _new_page(_reg), methods=["GET"], name=f"{_reg.slug}_new")
    router.add_api_route(base, _create(_reg), methods=["POST"], name=f"{_reg.slug}_create")
    router.add_api_route(f"{base}/{{item_id:int}}", _detail_page(_reg), methods=["GET"], name=f"{_reg.slug}_detail")
    router.add_api_route(f"{base}/{{item_id:int}}/edit", _edit_page(_reg), methods=["GET"], name=f"{_reg.slug}_edit")
    router.add_api_route(f"{base}/{{item_id:int}}", _update(_reg), methods=["POST"], name=f"{_reg.slug}_update")
