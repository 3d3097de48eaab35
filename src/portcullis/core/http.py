"""HTTP plumbing shared by every router: problem details (RFC 9457), pages of results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from starlette.exceptions import HTTPException

from portcullis.core.errors import PortcullisError

PROBLEM_TYPE = "urn:portcullis:problem:"
MAX_PAGE = 500

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    # Pass as ?after= to get the next page; null on the last page.
    next_after: int | None


def paginate(
    session: Session, stmt: Select[Any], id_col: InstrumentedAttribute[int], after: int | None, limit: int
) -> tuple[list[Any], int, int | None]:
    """Keyset pagination on the id: constant cost per page whatever the table size."""
    limit = max(1, min(limit, MAX_PAGE))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    if after is not None:
        stmt = stmt.where(id_col > after)
    rows = list(session.scalars(stmt.order_by(id_col).limit(limit + 1)))
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        nxt = int(getattr(rows[-1], id_col.key))
    return rows, total, nxt


def problem(status: int, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    slug = title.lower().replace(" ", "-")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body",)) or "body"


def install_problem_handlers(app: FastAPI) -> None:
    async def domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PortcullisError)
        return problem(exc.status, exc.title, exc.detail, request, errors=[e.as_dict() for e in exc.errors])

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": _field_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        return problem(422, "Invalid input", "The request does not match the schema", request, errors=errors)

    async def http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return problem(exc.status_code, _title(exc.status_code), str(exc.detail), request)

    app.add_exception_handler(PortcullisError, domain)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# Query parameters every paginated list route takes.
After = Annotated[int | None, Query(description="next_after of the previous page")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]

OutT = TypeVar("OutT", bound=BaseModel)


def page_of(
    out: type[OutT], view: Callable[[Any], dict[str, Any]], result: tuple[list[Any], int, int | None]
) -> Page[OutT]:
    """A service's (rows, total, next_after) as a typed page of `out`."""
    rows, total, nxt = result
    return Page[out](items=[out.model_validate(view(r)) for r in rows], total=total, next_after=nxt)  # type: ignore[valid-type]
