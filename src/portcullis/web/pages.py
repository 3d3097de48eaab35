"""The route class every page uses: CSRF on every POST, domain errors as pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.datastructures import FormData

from portcullis.core.errors import PortcullisError
from portcullis.web import csrf
from portcullis.web.render import error_page, problem_page
from portcullis.web.session import Redirect

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    def get_route_handler(self) -> Handler:
        inner = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                if request.method == "POST":
                    form = await request.form()
                    if not csrf.verify(request, form):
                        return error_page(
                            request,
                            403,
                            "Form expired or forged",
                            "The form's security token is missing or wrong. Go back, reload the page and try again.",
                        )
                return await inner(request)
            except Redirect as r:
                return RedirectResponse(r.url, status_code=303)
            except PortcullisError as exc:
                return problem_page(request, exc)

        return handle


async def form_data(request: Request) -> FormData:
    """A dependency: the parsed form (python-multipart), cached on the request."""
    return await request.form()


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
